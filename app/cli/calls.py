"""`ivrdesk calls show|stuck`: look at calls."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click
from flask.cli import with_appcontext

from app import app_state
from app.cli.tables import LIMIT, field_lines, format_table, named, time_cell
from app.db import utcnow
from app.launch.campaigns import NotFound
from app.lookups.resources import get_call_detail
from app.lookups.stuck import find_stuck_calls


@click.group("calls")
def calls_group() -> None:
    """Look at calls."""


def _collected(collected: dict[str, Any] | None) -> str | None:
    """Show what the IVR collected, leaving out the kinds it did not collect."""
    shown = {k: v for k, v in (collected or {}).items() if v is not None}
    return json.dumps(shown, ensure_ascii=False) if shown else None


def _show_call(call: dict[str, Any]) -> str:
    """Render a call resource with its history table."""
    price = call["price"] or {}
    cost = (
        f"{call['cost']:g} {price.get('currency') or ''}".strip()
        if call["cost"] is not None
        else None
    )
    charged = call["chargedDuration"]
    duration = None
    if call["duration"] is not None or charged is not None:
        duration = f"{call['duration'] if call['duration'] is not None else '-'} s"
        duration += f" (charged {charged} s)" if charged is not None else ""
    summary = field_lines(
        [
            ("messageId", call["messageId"]),
            ("campaign", f"{call['bulkId']} ({call['campaignId']})"),
            ("to", call["to"]),
            ("callbackData", call["callbackData"]),
            ("submit state", call["submitState"]),
            ("status", named(call["status"])),
            ("error", named(call["error"])),
            ("outcome", call["outcome"]),
            ("duration", duration),
            ("cost", cost),
            ("answered by", call["answeredBy"]),
            ("dtmf", call["dtmf"]),
            ("collected", _collected(call["collected"])),
            ("updated", time_cell(call["updatedAt"])),
        ]
    )
    history = format_table(
        ["RECEIVED", "OCCURRED", "SOURCE", "SUBMIT", "STATUS", "ERROR", "OUTCOME", "APPLIED"],
        [
            [
                time_cell(e["receivedAt"]),
                time_cell(e["occurredAt"]),
                e["source"],
                e["submitState"],
                named(e["status"]),
                named(e["error"]),
                e["outcome"],
                "yes" if e["applied"] else f"no: {e['reason']}",
            ]
            for e in call["history"]
        ],
    )
    return f"{summary}\n\nhistory (times in UTC, oldest first)\n{history}"


@calls_group.command("show")
@click.argument("message_id")
@with_appcontext
def calls_show(message_id: str) -> None:
    """Show a call and its status history."""
    with app_state().sessions() as session:
        try:
            call = get_call_detail(session, message_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(_show_call(call))


@calls_group.command("stuck")
@click.option(
    "--older-than",
    type=click.IntRange(min=1),
    metavar="MINUTES",
    help="list calls waiting longer than this instead of past their validityPeriod",
)
@click.option("--limit", type=LIMIT, default=100, show_default=True)
@with_appcontext
def calls_stuck(older_than: int | None, limit: int) -> None:
    """List calls with no final status past their validity window (default 2880 minutes)."""
    window = timedelta(minutes=older_than) if older_than else None
    with app_state().sessions() as session:
        stuck = find_stuck_calls(session, now=utcnow(), older_than=window, limit=limit)
        rows = [
            [
                s.call.message_id,
                s.bulk_id,
                s.call.to_number,
                s.call.submit_state,
                s.call.status_name,
                s.call.created_at,
                s.due_at,
            ]
            for s in stuck
        ]
    past = f"after {older_than} minute(s)" if older_than else "past their validity window"
    if not rows:
        click.echo(f"no call is still without a final status {past}")
        return
    headers = ["MESSAGE ID", "BULK ID", "TO", "SUBMIT", "STATUS", "CREATED", "FINAL DUE"]
    click.echo(format_table(headers, rows))
    more = " (the oldest; raise --limit for more)" if len(rows) == limit else ""
    click.echo(f"{len(rows)} call(s) without a final status {past}{more}")
