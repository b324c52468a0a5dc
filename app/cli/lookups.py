"""`ivrdesk calls show|stuck` and `ivrdesk campaigns list|show`: lookups as terminal tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import click
from flask.cli import with_appcontext

from app.cli.groups import calls_group, campaigns_group
from app.db import utcnow
from app.launch.campaigns import NotFound, get_campaign
from app.lookups.lists import find_campaigns
from app.lookups.paging import MAX_LIMIT
from app.lookups.resources import campaign_resource, get_call_detail
from app.lookups.stuck import find_stuck_calls
from app.services import app_state

_LIMIT = click.IntRange(1, MAX_LIMIT)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Lay rows out in fixed-width columns under a header and a rule; numbers align right."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        """Render one row padded to the column widths."""
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _is_number(value: Any) -> bool:
    """Say whether a cell holds a number (aligned right)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    """Render one table cell."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _time(text: str | None) -> str:
    """Shorten an API timestamp (2026-04-02T07:00:41.500Z) for a terminal."""
    if not text:
        return "-"
    return _cell(datetime.fromisoformat(text))


def _named(item: dict[str, Any] | None) -> str:
    """Show a status or error object as group/name (id)."""
    if item is None:
        return "-"
    return f"{item.get('groupName') or '?'}/{item.get('name') or '?'} ({item.get('id')})"


def _fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """Lay out label-value pairs in two columns."""
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {_cell(value)}" for label, value in pairs)


def _money(cost: dict[str, float]) -> str:
    """Show costs per currency."""
    return ", ".join(f"{total:g} {currency}" for currency, total in sorted(cost.items())) or "-"


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
    summary = _fields(
        [
            ("messageId", call["messageId"]),
            ("campaign", f"{call['bulkId']} ({call['campaignId']})"),
            ("to", call["to"]),
            ("callbackData", call["callbackData"]),
            ("submit state", call["submitState"]),
            ("status", _named(call["status"])),
            ("error", _named(call["error"])),
            ("outcome", call["outcome"]),
            ("duration", duration),
            ("cost", cost),
            ("answered by", call["answeredBy"]),
            ("dtmf", call["dtmf"]),
            ("collected", _collected(call["collected"])),
            ("updated", _time(call["updatedAt"])),
        ]
    )
    history = format_table(
        ["RECEIVED", "OCCURRED", "SOURCE", "SUBMIT", "STATUS", "ERROR", "OUTCOME", "APPLIED"],
        [
            [
                _time(e["receivedAt"]),
                _time(e["occurredAt"]),
                e["source"],
                e["submitState"],
                _named(e["status"]),
                _named(e["error"]),
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
@click.option("--limit", type=_LIMIT, default=100, show_default=True)
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


@campaigns_group.command("list")
@click.option("--limit", type=_LIMIT, default=50, show_default=True)
@with_appcontext
def campaigns_list(limit: int) -> None:
    """List campaigns, newest first, with their outcome counts."""
    with app_state().sessions() as session:
        page = find_campaigns(session, limit=limit)
    if not page.items:
        click.echo("no campaigns yet")
        return
    headers = ["CREATED", "BULK ID", "NAME", "CALLS", "PENDING", "HUMAN", "MACHINE"]
    headers += ["BUSY", "NO ANSWER", "OTHER", "COST"]
    rows = []
    for c in page.items:
        outcomes = c["outcomes"]
        named = [outcomes.get(k, 0) for k in ("pending", "answered_human", "answered_machine")]
        named += [outcomes.get(k, 0) for k in ("busy", "no_answer")]
        other = sum(outcomes.values()) - sum(named)
        first = [_time(c["createdAt"]), c["bulkId"], c["name"], c["totalCalls"]]
        rows.append([*first, *named, other, _money(c["cost"])])
    click.echo(format_table(headers, rows))
    if page.next:
        click.echo(f"(the newest {limit}; raise --limit for more)")


def _counts_table(title: str, counts: dict[str, int], total: int) -> str:
    """Render counts with their share of the calls, largest first."""
    rows = [
        [key, count, f"{100 * count / total:.1f}%" if total else "-"]
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return format_table([title, "CALLS", "SHARE"], rows or [["-", 0, "-"]])


@campaigns_group.command("show")
@click.argument("bulk_id")
@with_appcontext
def campaigns_show(bulk_id: str) -> None:
    """Show a campaign with its calls counted by submit state, status group and outcome."""
    with app_state().sessions() as session:
        try:
            campaign = campaign_resource(session, get_campaign(session, bulk_id))
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    total = campaign["totalCalls"]
    summary = _fields(
        [
            ("bulkId", campaign["bulkId"]),
            ("campaignId", campaign["campaignId"]),
            ("name", campaign["name"]),
            ("scenarioId", campaign["scenarioId"]),
            ("created", _time(campaign["createdAt"])),
            ("calls", total),
            ("duration", f"{campaign['totalDuration']} s"),
            ("charged", f"{campaign['totalChargedDuration']} s"),
            ("cost", _money(campaign["cost"])),
        ]
    )
    tables = [
        _counts_table("SUBMIT STATE", campaign["submitStates"], total),
        _counts_table("STATUS GROUP", campaign["statusGroups"], total),
        _counts_table("OUTCOME", campaign["outcomes"], total),
    ]
    click.echo("\n\n".join([summary, *tables]))
