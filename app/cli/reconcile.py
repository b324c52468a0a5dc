"""`ivrdesk reconcile`: settle calls in doubt and fill lost reports from Infobip's logs."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import app_state
from app.db import utcnow
from app.infobip.client import ProviderError
from app.infobip.limits import LOGS_WINDOW_HOURS
from app.launch.campaigns import NotFound, get_campaign
from app.reports.reconcile import reconcile, rules_of


@click.command("reconcile")
@click.option("--bulk", "bulk_id", help="only the calls of this bulkId")
@click.option(
    "--since",
    "since_hours",
    type=click.FloatRange(min=0, min_open=True, max=LOGS_WINDOW_HOURS),
    help=f"only calls sent in the last HOURS (at most {LOGS_WINDOW_HOURS}, Infobip's logs)",
    metavar="HOURS",
)
@with_appcontext
def reconcile_command(bulk_id: str | None, since_hours: float | None) -> None:
    """Look open calls up in Infobip's logs (GET /tts/3/logs) and record what they say."""
    state = app_state()
    settings = state.settings
    if settings.infobip_missing:
        raise click.ClickException("reconciling needs " + " and ".join(settings.infobip_missing))
    if bulk_id is not None:
        with state.sessions() as session:
            try:
                get_campaign(session, bulk_id)
            except NotFound:
                raise click.ClickException(f"no campaign has bulkId {bulk_id}") from None
    rules = rules_of(settings, since_hours=since_hours)
    try:
        settled = reconcile(state.sessions, state.client(), rules, now=utcnow(), bulk_id=bulk_id)
    except ProviderError as exc:
        raise click.ClickException(
            f"Infobip's logs could not be read, nothing recorded: {exc}"
        ) from exc
    click.echo(settled.line())
