"""The recording path's vocabulary: candidate events, locked calls, decisions, call updates.

Every source of history builds its Candidate here or in its own module, and hands it to
app.reports.record; a Candidate's `event` is the call_events row it would insert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, String

from app.db import has_nul, has_surrogate, has_unstorable_character
from app.infobip.codes import Error, Status, derive_outcome, is_final
from app.models import STATUS_COLUMNS, CallEvent, EventSource
from app.reports.items import DeliveryReport

# What became of a candidate (the notify answer's `result`), and the reasons of the
# recording path itself; the precedence's own reasons are app.infobip.codes'.
APPLIED = "applied"
NOT_APPLIED = "not_applied"
DUPLICATE = "duplicate"
UNMATCHED = "unmatched"
INVALID = "invalid"
ALREADY_ACCEPTED = "already_accepted"  # a submit answer of status 23: Infobip had the call
# A reconciliation's settlement of a submission in doubt (app.reports.reconcile).
IN_INFOBIP_LOGS = "in_infobip_logs"  # Infobip's logs list the call: it was accepted
NOT_IN_INFOBIP_LOGS = "not_in_infobip_logs"  # not in the logs long after it was due: failed


@dataclass
class Candidate:
    """One event that may join a call's history and move its current status."""

    index: int
    message_id: str
    event: dict[str, Any]  # the call_events row, but its call_id, applied and reason
    final: bool
    occurred_at: datetime | None
    key: str | None  # the dedupe key; None: never a repeat (a submit answer)
    submit_state: str | None = None  # what the call's submit state becomes
    submit_error: str | None = None
    keeps_status: str | None = None  # why this event never moves the status, if it never does


@dataclass
class CallState:
    """A locked call, as the candidates decided so far leave it."""

    id: int
    final: bool
    occurred_at: datetime | None
    has_status: bool


@dataclass
class Decision:
    """What one candidate does: new or a repeat, and why it does not move the status."""

    candidate: Candidate
    call_id: int | None
    new: bool
    reason: str | None  # None: it moves the call's status (if new)


@dataclass
class CallUpdate:
    """What one call takes on: its winning event, its new submit state, a derived outcome."""

    call_id: int
    winner: Candidate | None = None
    submit: Candidate | None = None
    outcome: str | None = None


def dedupe_key(report: DeliveryReport) -> str:
    """Derive the key that makes a repeated report recognisable (messageId, status, error, time)."""
    status, error = report.status, report.error
    parts = [
        report.message_id,
        str(status.group_id if status else ""),
        str(status.id if status else ""),
        (status.name or "") if status else "",
        str(error.id if error else ""),
        report.occurred_at.isoformat() if report.occurred_at else "",
    ]
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")  # never fails: screened later
    return hashlib.sha256(joined).hexdigest()


def report_candidate(
    report: DeliveryReport,
    *,
    received_at: datetime,
    inbound_report_id: int | None = None,
    source: EventSource = EventSource.REPORT,
) -> Candidate:
    """Build the candidate event of one parsed report."""
    s, e = report.status, report.error
    status = Status(s.group_id, s.id, s.name) if s else None
    error = Error(e.group_id, e.id, e.name) if e else None
    event: dict[str, Any] = {
        "message_id": report.message_id,
        "inbound_report_id": inbound_report_id,
        "source": source.value,
        "submit_state": None,
        "status_group_id": s.group_id if s else None,
        "status_group_name": s.group_name if s else None,
        "status_id": s.id if s else None,
        "status_name": s.name if s else None,
        "status_description": s.description if s else None,
        "error_group_id": e.group_id if e else None,
        "error_group_name": e.group_name if e else None,
        "error_id": e.id if e else None,
        "error_name": e.name if e else None,
        "error_description": e.description if e else None,
        "error_permanent": e.permanent if e else None,
        "duration": report.duration,
        "charged_duration": report.charged_duration,
        "price_per_second": report.price_per_second,
        "currency": report.currency,
        "answered_by": report.answered_by,
        "dtmf": report.dtmf_codes,
        "collected": report.collected,
        "outcome": derive_outcome(status, error, report.answered_by).value,
        "sent_at": report.sent_at,
        "answered_at": report.answer_time,
        "ended_at": report.end_time or report.done_at,
        "occurred_at": report.occurred_at,
        "occurred_at_text": report.occurred_at_text,
        "received_at": received_at,
        "callback_data": report.callback_data,
        "raw": report.raw,
        "dedupe_key": dedupe_key(report),
        "duplicates": 0,
    }
    return Candidate(
        report.index,
        report.message_id,
        event,
        is_final(status),
        report.occurred_at,
        event["dedupe_key"],
    )


# The columns of an event row, but those the recording path fills in itself.
EVENT_COLUMNS = tuple(
    c.name
    for c in CallEvent.__table__.columns
    if c.name not in ("id", "call_id", "applied", "reason")
)
assert set(STATUS_COLUMNS) <= set(EVENT_COLUMNS)


def stored_candidate(row: dict[str, Any], index: int) -> Candidate:
    """Build the candidate of an event row stored before (a parked report, taken out of parking)."""
    event = {name: row[name] for name in EVENT_COLUMNS}
    status = Status(row["status_group_id"], row["status_id"], row["status_name"])
    return Candidate(
        index, row["message_id"], event, is_final(status), row["occurred_at"], row["dedupe_key"]
    )


def _column_limits() -> dict[str, tuple[str, Decimal]]:
    """Text columns: their length; number columns: the first magnitude they cannot hold."""
    limits: dict[str, tuple[str, Decimal]] = {}
    for column in CallEvent.__table__.columns:
        kind = column.type
        if isinstance(kind, String) and kind.length:
            limits[column.name] = ("text", Decimal(kind.length))
        elif isinstance(kind, Numeric) and kind.precision is not None and kind.scale is not None:
            limits[column.name] = ("number", Decimal(10) ** (kind.precision - kind.scale))
        elif type(kind) is Integer:
            limits[column.name] = ("number", Decimal(2**31))
    return limits


_LIMITS = _column_limits()


def unstorable_value(values: dict[str, Any], *, text_checked: bool = False) -> str | None:
    """Name a value its column cannot hold (SQLite would store it, PostgreSQL refuses).

    text_checked: the caller knows that no text holds a NUL or a lone surrogate
    (app.db.json_may_hold_unstorable said so of the whole body); only lengths and
    ranges are checked then.
    """
    if not text_checked and has_unstorable_character(
        "".join([value for value in values.values() if isinstance(value, str)])
    ):  # rare: find which value, and why
        for name, value in values.items():
            if isinstance(value, str) and has_nul(value):
                return f"{name} contains a NUL character"
            if isinstance(value, str) and has_surrogate(value):
                return f"{name} contains unpaired surrogates (not valid Unicode)"
    for name, (kind, limit) in _LIMITS.items():
        stored = values.get(name)
        if stored is None:
            continue
        if kind == "text" and isinstance(stored, str) and len(stored) > limit:
            return f"{name} is longer than {int(limit)} characters"
        if kind == "number" and isinstance(stored, int | Decimal) and abs(Decimal(stored)) >= limit:
            return f"{name} is out of range: {stored}"
    return None
