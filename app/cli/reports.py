"""`ivrdesk reports replay|pull`: reprocess stored bodies, fetch reports Infobip kept."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from app import app_state
from app.infobip.client import ProviderError
from app.models import InboundReport
from app.reports.parse import ReportParseError
from app.reports.replay import replay_inbound, store_pulled

PULL_LIMIT = 1000
MAX_PULLS = 10_000  # a safety stop: 10 million reports in one run


@click.group("reports")
def reports_group() -> None:
    """Replay stored reports and pull missed ones from Infobip."""


def _line(summary: dict[str, Any]) -> str:
    keys = ("applied", "notApplied", "duplicates", "unmatched", "invalid")
    return ", ".join(f"{key} {summary[key]}" for key in keys)


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
    click.echo(f"report {inbound_id}: {_line(summary)}")


@reports_group.command("pull")
@click.option("--bulk", "bulk_id", help="only reports of this bulkId")
@with_appcontext
def pull_command(bulk_id: str | None) -> None:
    """Fetch reports Infobip could not deliver (GET /voice/1/reports) until none are left."""
    state = app_state()
    settings = state.settings
    if not settings.infobip_base_url or not (
        settings.infobip_api_key or (settings.infobip_username and settings.infobip_password)
    ):
        raise click.ClickException(
            "pulling needs IVR_INFOBIP_BASE_URL and IVR_INFOBIP_API_KEY "
            "(or IVR_INFOBIP_USERNAME/IVR_INFOBIP_PASSWORD)"
        )
    totals = {"applied": 0, "notApplied": 0, "duplicates": 0, "unmatched": 0, "invalid": 0}
    pulled = 0
    for _ in range(MAX_PULLS):
        try:
            results = state.client().pull_reports(bulk_id=bulk_id, limit=PULL_LIMIT)
        except ProviderError as exc:
            raise click.ClickException(f"pulling stopped after {pulled} report(s): {exc}") from exc
        if not results:
            break
        pulled += len(results)
        with state.sessions() as session:
            inbound = store_pulled(session, results)
            session.commit()  # kept before it is applied: Infobip will not send it again
            summary = replay_inbound(session, inbound)
            session.commit()
        for key in totals:
            totals[key] += summary[key]
    click.echo(f"pulled {pulled} report(s): {_line(totals)}")
