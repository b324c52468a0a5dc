"""The SQL reporting views (docs/REPORTING.md) and the queries behind summaries and exports.

The views are created by migrations/versions/0002_reporting_views.py; the table
clauses here give their columns types, so rows read through them are the same
Python values on SQLite and PostgreSQL. Never commits.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, Integer, Numeric, String, column, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import TableClause

from app.db import UTCDateTime
from app.lookups.resources import iso
from app.models import Call

REPORT_CALLS = "report_calls"
REPORT_CAMPAIGN_SUMMARY = "report_campaign_summary"
REPORT_CAMPAIGN_COSTS = "report_campaign_costs"
REPORT_DAILY_OUTCOMES = "report_daily_outcomes"
VIEWS = (REPORT_CALLS, REPORT_CAMPAIGN_SUMMARY, REPORT_CAMPAIGN_COSTS, REPORT_DAILY_OUTCOMES)

_MONEY = Numeric(18, 8)
_TEXT_COLUMNS = [
    "bulk_id",
    "campaign_id",
    "message_id",
    "to_number",
    "callback_data",
    "submit_state",
    "status_group_name",
    "status_name",
    "error_name",
    "outcome",
    "answered_by",
    "currency",
    "dtmf",
]
_INT_COLUMNS = [
    "call_id",
    "status_group_id",
    "status_id",
    "error_id",
    "duration_s",
    "charged_duration_s",
]
_TIME_COLUMNS = ["created_at", "sent_at", "answered_at", "ended_at", "updated_at"]

report_calls: TableClause = table(
    REPORT_CALLS,
    *[column(name, String) for name in _TEXT_COLUMNS],
    *[column(name, Integer) for name in _INT_COLUMNS],
    *[column(name, UTCDateTime) for name in _TIME_COLUMNS],
    column("price_per_second", _MONEY),
    column("cost", _MONEY),
    column("collected", JSON),
)

SUMMARY_COUNTS = (
    "total_calls",
    "pending",
    "delivered",
    "undeliverable",
    "expired",
    "rejected",
    "answered_human",
    "answered_machine",
    "busy",
    "no_answer",
    "declined",
    "failed",
    "not_sent",
    "unknown",
    "outcome_expired",
    "outcome_rejected",
    "outcome_pending",
    "total_duration_s",
    "total_charged_duration_s",
)
report_campaign_summary: TableClause = table(
    REPORT_CAMPAIGN_SUMMARY,
    column("bulk_id", String),
    column("campaign_id", String),
    column("name", String),
    column("created_at", UTCDateTime),
    *[column(name, Integer) for name in SUMMARY_COUNTS],
    column("total_cost", _MONEY),
    column("currency", String),
)
report_campaign_costs: TableClause = table(
    REPORT_CAMPAIGN_COSTS,
    column("bulk_id", String),
    column("currency", String),
    column("priced_calls", Integer),
    column("total_cost", _MONEY),
)
report_daily_outcomes: TableClause = table(
    REPORT_DAILY_OUTCOMES,
    column("day", Date),
    column("outcome", String),
    column("calls", Integer),
    column("duration_s", Integer),
    column("charged_duration_s", Integer),
)

# The columns of a campaign's CSV export, in order (a subset of report_calls).
CSV_COLUMNS = (
    "message_id",
    "to_number",
    "callback_data",
    "submit_state",
    "status_group_name",
    "status_name",
    "error_name",
    "outcome",
    "answered_by",
    "duration_s",
    "charged_duration_s",
    "cost",
    "currency",
    "dtmf",
    "sent_at",
    "answered_at",
    "ended_at",
    "updated_at",
)
CSV_CHUNK = 1000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_STARTS = "=+-@\t\r"
# A program whose list separator is `;` (or `,` or tab) splits an unquoted cell at it, and
# ignores quotes that do not open a field: a formula start after a separator or a line
# break inside a cell starts a cell there, so it is escaped as at the cell's start.
_SEPARATORS = ";,\t\r\n"
_FORMULA = re.compile(f"(?:^|(?<=[{re.escape(_SEPARATORS)}]))(?=[{re.escape(_FORMULA_STARTS)}])")


def campaign_summary(session: Session, bulk_id: str) -> dict[str, Any] | None:
    """Return a campaign's row of report_campaign_summary, or None."""
    row = session.execute(
        select(report_campaign_summary).where(report_campaign_summary.c.bulk_id == bulk_id)
    ).first()
    return dict(row._mapping) if row else None


def campaign_costs(session: Session, bulk_id: str) -> dict[str, Decimal]:
    """Return a campaign's total cost per currency."""
    view = report_campaign_costs
    rows = session.execute(
        select(view.c.currency, view.c.total_cost)
        .where(view.c.bulk_id == bulk_id)
        .order_by(view.c.currency)
    )
    return {currency: total for currency, total in rows}


def daily_outcomes(session: Session, since: date | None = None) -> list[dict[str, Any]]:
    """Return report_daily_outcomes rows, oldest day first (from `since` when given)."""
    view = report_daily_outcomes
    query = select(view).order_by(view.c.day, view.c.outcome)
    if since is not None:
        query = query.where(view.c.day >= since)
    return [dict(row._mapping) for row in session.execute(query)]


def campaign_export_chunk(
    session: Session, campaign_id: int, after_call_id: int, size: int = CSV_CHUNK
) -> list[tuple[int, tuple[Any, ...]]]:
    """Return the next export rows of a campaign after a call id, as (call id, CSV values).

    The chunk's calls are picked on calls (campaign_id, id), an index range whatever
    the table holds besides; the view gives their columns.
    """
    view = report_calls
    chunk = (
        select(Call.id)
        .where(Call.campaign_id == campaign_id, Call.id > after_call_id)
        .order_by(Call.id)
        .limit(size)
    )
    rows = session.execute(
        select(view.c.call_id, *[view.c[name] for name in CSV_COLUMNS])
        .where(view.c.call_id.in_(chunk))
        .order_by(view.c.call_id)
    )
    return [(row[0], tuple(row[1:])) for row in rows]


def spreadsheet_cell(value: Any) -> str:
    """Render a value for CSV; a formula start at the start or after a separator gets a `'`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value) or ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _FORMULA.sub("'", str(value))


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Render rows as CSV text (RFC 4180 quoting, CRLF line ends), spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return buffer.getvalue()


def iter_campaign_csv(
    sessions: Callable[[], Session], campaign_id: int, chunk: int = CSV_CHUNK
) -> Iterator[str]:
    """Yield a campaign's export as CSV text, chunk by chunk, in constant memory.

    Each chunk is read in its own short transaction from a session made by
    `sessions` (the web layer's reading sessions): no transaction stays open
    while a slow client downloads (on PostgreSQL it would pin a snapshot and a
    pooled connection; on SQLite a writing session's would hold the write lock).
    """
    yield csv_text([CSV_COLUMNS])
    after = 0
    while True:
        with sessions() as session:
            rows = campaign_export_chunk(session, campaign_id, after, chunk)
            session.commit()
        if not rows:
            return
        after = rows[-1][0]
        yield csv_text(values for _, values in rows)


def export_filename(bulk_id: str) -> str:
    """Name a campaign's CSV download; only safe characters of the bulkId are kept."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", bulk_id)[:100] + "-calls.csv"
