"""Record delivery reports: dedupe, precedence by compare-and-set, history; never commits.

DESIGN.md "Receiving delivery reports", steps 3-5.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, String, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.infobip.codes import Error, Status, derive_outcome, is_final, supersedes
from app.models import Call, CallEvent, EventSource
from app.reports.parse import DeliveryReport, InvalidItem, ParsedItem
from app.text import has_nul, has_surrogate, has_unstorable_character

log = logging.getLogger(__name__)

APPLIED = "applied"
NOT_APPLIED = "not_applied"
DUPLICATE = "duplicate"
UNMATCHED = "unmatched"
INVALID = "invalid"
_CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class ItemResult:
    """What happened to one result of a POST."""

    index: int
    message_id: str | None
    result: str
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Serialize for the notify answer."""
        return {
            "index": self.index,
            "messageId": self.message_id,
            "result": self.result,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Change:
    """What a call takes on when an event moves its status."""

    columns: dict[str, Any]
    final: bool
    occurred_at: datetime | None


@dataclass(frozen=True)
class _Current:
    id: int
    final: bool
    occurred_at: datetime | None


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
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")  # never fails: refused later
    return hashlib.sha256(joined).hexdigest()


def _status(report: DeliveryReport) -> Status | None:
    s = report.status
    return Status(s.group_id, s.id, s.name) if s else None


def _error(report: DeliveryReport) -> Error | None:
    e = report.error
    return Error(e.group_id, e.id, e.name) if e else None


def _status_columns(report: DeliveryReport) -> dict[str, Any]:
    s, e = report.status, report.error
    return {
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
    }


def _detail_columns(report: DeliveryReport) -> dict[str, Any]:
    return {
        "duration": report.duration,
        "charged_duration": report.charged_duration,
        "price_per_second": report.price_per_second,
        "currency": report.currency,
        "answered_by": report.answered_by,
        "dtmf": report.dtmf_codes,
        "collected": report.collected,
    }


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
    (app.text.json_may_hold_unstorable said so of the whole body); only lengths and
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


def _insert_ignoring_duplicates(session: Session, values: dict[str, Any]) -> int | None:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(CallEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(CallEvent.id)
    )
    event_id: int | None = session.scalar(statement)
    return event_id


def _current(session: Session, message_id: str) -> _Current | None:
    row = session.execute(
        select(Call.id, Call.status_final, Call.status_occurred_at).where(
            Call.message_id == message_id
        )
    ).first()
    return _Current(row[0], row[1], row[2]) if row else None


def change_from_report(report: DeliveryReport) -> Change:
    """Collect what the call takes on from a report."""
    status = _status(report)
    columns = {
        **_status_columns(report),
        **_detail_columns(report),
        "outcome": derive_outcome(status, _error(report), report.answered_by).value,
        "status_final": is_final(status),
        "status_occurred_at": report.occurred_at,
        "sent_at": report.sent_at,
        "answered_at": report.answer_time,
        "ended_at": report.end_time or report.done_at,
    }
    return Change(columns, columns["status_final"], report.occurred_at)


# What a call takes on from the event that sets its status, under the same names (the
# call also keeps whether it is final and when it occurred, as status_final and
# status_occurred_at).
STATUS_COLUMNS = (
    "status_group_id", "status_group_name", "status_id", "status_name", "status_description",
    "error_group_id", "error_group_name", "error_id", "error_name", "error_description",
    "error_permanent", "duration", "charged_duration", "price_per_second", "currency",
    "answered_by", "dtmf", "collected", "outcome", "sent_at", "answered_at", "ended_at",
)  # fmt: skip


def change_from_event(event: CallEvent) -> Change:
    """Collect what the call takes on from a stored (parked) event."""
    columns = {name: getattr(event, name) for name in STATUS_COLUMNS}
    final = is_final(Status(event.status_group_id, event.status_id, event.status_name))
    columns["status_final"] = final
    columns["status_occurred_at"] = event.occurred_at
    return Change(columns, final, event.occurred_at)


def _compare_and_set(session: Session, current: _Current, change: Change, now: datetime) -> bool:
    same_time = (
        Call.status_occurred_at.is_(None)
        if current.occurred_at is None
        else Call.status_occurred_at == current.occurred_at
    )
    result = session.execute(
        update(Call)
        .where(Call.id == current.id, Call.status_final == current.final, same_time)
        .values(**change.columns, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def apply_change(
    session: Session, message_id: str, change: Change, now: datetime
) -> tuple[int | None, str | None]:
    """Move the call's status if precedence allows; return (call id, reason not applied)."""
    for _ in range(_CAS_ATTEMPTS):
        current = _current(session, message_id)
        if current is None:
            return None, UNMATCHED
        reason = supersedes(change.final, change.occurred_at, current.final, current.occurred_at)
        if reason is not None:
            return current.id, reason
        if _compare_and_set(session, current, change, now):
            return current.id, None
    raise RuntimeError(f"the status of call {message_id!r} kept changing underneath")


def event_values(
    report: DeliveryReport,
    change: Change,
    received_at: datetime,
    inbound_report_id: int | None,
    source: EventSource,
) -> dict[str, Any]:
    """Build the call_events row of a report (not yet matched, not yet applied)."""
    values = {
        "call_id": None,
        "message_id": report.message_id,
        "inbound_report_id": inbound_report_id,
        "source": source.value,
        **change.columns,  # the status, error and detail columns the call takes on
        "occurred_at": report.occurred_at,
        "occurred_at_text": report.occurred_at_text,
        "received_at": received_at,
        "callback_data": report.callback_data,
        "raw": report.raw,
        "applied": False,
        "reason": None,
        "dedupe_key": dedupe_key(report),
        "duplicates": 0,
    }
    del values["status_final"], values["status_occurred_at"]  # the call's own columns
    return values


def record_report(
    session: Session,
    report: DeliveryReport,
    *,
    received_at: datetime,
    inbound_report_id: int | None,
    source: EventSource = EventSource.REPORT,
) -> ItemResult:
    """Record one report: dedupe, append the event, move the call's status by precedence."""
    change = change_from_report(report)
    values = event_values(report, change, received_at, inbound_report_id, source)
    too_long = unstorable_value(values)
    if too_long is not None:
        return ItemResult(report.index, report.message_id, INVALID, too_long)
    event_id = _insert_ignoring_duplicates(session, values)
    if event_id is None:
        session.execute(
            update(CallEvent)
            .where(CallEvent.dedupe_key == values["dedupe_key"])
            .values(duplicates=CallEvent.duplicates + 1)
            .execution_options(synchronize_session=False)
        )
        return ItemResult(report.index, report.message_id, DUPLICATE)
    call_id, reason = apply_change(session, report.message_id, change, received_at)
    session.execute(
        update(CallEvent)
        .where(CallEvent.id == event_id)
        .values(call_id=call_id, applied=reason is None, reason=reason)
        .execution_options(synchronize_session=False)
    )
    if reason == UNMATCHED:
        return ItemResult(report.index, report.message_id, UNMATCHED, "no call has this messageId")
    if reason is not None:
        return ItemResult(report.index, report.message_id, NOT_APPLIED, reason)
    return ItemResult(report.index, report.message_id, APPLIED)


_ITEM_ATTEMPTS = 3


def record_items(
    session: Session,
    items: Sequence[ParsedItem],
    *,
    received_at: datetime,
    inbound_report_id: int | None,
    source: EventSource = EventSource.REPORT,
) -> list[ItemResult]:
    """Record every parsed result in its own savepoint; one bad item never fails the rest.

    Results are recorded in (messageId, key) order so that concurrent POSTs take
    their row locks in the same order and cannot deadlock one another; a lock
    conflict is retried, and one that persists is raised (the POST then fails
    as a whole and is redelivered), never reported as an invalid item.
    """
    results = [_invalid(item) for item in items if isinstance(item, InvalidItem)]
    reports = [item for item in items if isinstance(item, DeliveryReport)]
    for report in sorted(reports, key=lambda r: (r.message_id, dedupe_key(r))):
        results.append(_record_one(session, report, received_at, inbound_report_id, source))
    return sorted(results, key=lambda result: result.index)


def _invalid(item: InvalidItem) -> ItemResult:
    raw_id = item.raw.get("messageId") if isinstance(item.raw, dict) else None
    return ItemResult(item.index, str(raw_id) if raw_id else None, INVALID, item.reason)


def _record_one(
    session: Session,
    report: DeliveryReport,
    received_at: datetime,
    inbound_report_id: int | None,
    source: EventSource,
) -> ItemResult:
    for attempt in range(1, _ITEM_ATTEMPTS + 1):
        try:
            with session.begin_nested():
                return record_report(
                    session,
                    report,
                    received_at=received_at,
                    inbound_report_id=inbound_report_id,
                    source=source,
                )
        except OperationalError as exc:  # lock conflict, deadlock, connection trouble
            if attempt == _ITEM_ATTEMPTS or exc.connection_invalidated:
                raise
            log.warning("report item %d: %s; retrying", report.index, type(exc.orig).__name__)
        except (SQLAlchemyError, RuntimeError) as exc:  # this item's data cannot be stored
            log.warning("report item %d not stored: %s", report.index, type(exc).__name__)
            reason = f"could not be stored: {type(exc).__name__}"
            return ItemResult(report.index, report.message_id, INVALID, reason)
    raise AssertionError("unreachable")


def summarise(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Build the notify answer: counts per result and one entry per item."""
    counts = {APPLIED: 0, NOT_APPLIED: 0, DUPLICATE: 0, UNMATCHED: 0, INVALID: 0}
    for item in results:
        counts[item.result] += 1
    return {
        "applied": counts[APPLIED],
        "notApplied": counts[NOT_APPLIED],
        "duplicates": counts[DUPLICATE],
        "unmatched": counts[UNMATCHED],
        "invalid": counts[INVALID],
        "items": [item.as_json() for item in results],
    }
