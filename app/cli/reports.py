"""`ivrdesk reports replay|pull`: reprocess stored bodies, fetch reports Infobip kept."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import app_state
from app.models import InboundReport
from app.reports.parse import ReportParseError
from app.reports.pull import PullError, pull_reports
from app.reports.record import describe_counts
from app.reports.replay import replay_inbound


@click.group("reports")
def reports_group() -> None:
    """Replay stored reports and pull those Infobip keeps (calls sent without a notifyUrl)."""


@reports_group.command("replay")
@click.argument("inbound_id", type=int)
@with_appcontext
def replay_command(inbound_id: int) -> None:
    """Reprocess a stored report body (INBOUND_ID from inbound_reports)."""
    with app_state().sessions() as session:
        inbound = session.get(InboundReport, inbound_id)
        if inbound is None:
            raise click.ClickException(f"no stored report has id {inbound_id}")
        try:
            summary = replay_inbound(session, inbound)
        except ReportParseError as exc:
            raise click.ClickException(f"report {inbound_id} cannot be parsed: {exc}") from exc
        session.commit()
    click.echo(f"report {inbound_id}: {describe_counts(summary)}")


@reports_group.command("pull")
@click.option("--bulk", "bulk_id", help="only reports of this bulkId")
@with_appcontext
def pull_command(bulk_id: str | None) -> None:
    """Fetch and record reports Infobip kept (GET /voice/1/reports) until none are left.

    Infobip keeps reports only of calls sent without a notifyUrl: those of pull mode
    (IVR_REPORTS_MODE=pull, where the dispatcher also pulls). In push mode this
    fetches only calls launched without a notifyUrl elsewhere.
    """
    state = app_state()
    if state.settings.infobip_missing:
        raise click.ClickException("pulling needs " + " and ".join(state.settings.infobip_missing))
    try:
        summary = pull_reports(state.sessions, state.client(), bulk_id=bulk_id)
    except PullError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(summary.line())
