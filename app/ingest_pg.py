"""The common case on PostgreSQL: one report in one POST, recorded in one statement.

Storing the raw body, moving the call's status and appending the event are one
statement of data-modifying CTEs, so the POST costs one round trip and one durable
commit, like the plainest app that does one INSERT and one UPDATE. The rules are those
of app/calls.py: the UPDATE's condition is the precedence of DESIGN.md step 4, checked
under the row lock (a compare-and-set), and the unique key skips a repeated report.
Only when the status did not move does a second query find out why. Never commits.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, exists, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.calls import (
    APPLIED,
    DUPLICATE,
    NOT_APPLIED,
    UNMATCHED,
    ItemResult,
    change_from_report,
    event_values,
    unstorable_value,
)
from app.models import Call, CallEvent, EventSource, InboundReport
from app.notify import DeliveryReport
from app.status import supersedes

_CALLS = cast(Table, Call.__table__)
_EVENTS = cast(Table, CallEvent.__table__)
_INBOUND = cast(Table, InboundReport.__table__)
# Bound once each (psycopg caches the statement only below 50 parameters): the event's
# columns, of which the call takes the shared ones, plus the call's own two. Parameter
# names carry a prefix: Core would add a key named like a column to the SET clause.
_EVENT_COLUMNS = [
    c for c in _EVENTS.columns
    if c.name not in ("id", "call_id", "applied", "inbound_report_id", "submit_state",
                      "reason", "duplicates")
]  # fmt: skip
_SHARED_COLUMNS = [
    "status_group_id", "status_group_name", "status_id", "status_name", "status_description",
    "error_group_id", "error_group_name", "error_id", "error_name", "error_description",
    "error_permanent", "duration", "charged_duration", "price_per_second", "currency",
    "answered_by", "dtmf", "collected", "outcome", "sent_at", "answered_at", "ended_at",
]  # fmt: skip


def _precedence(final: bool, timed: bool) -> Any:
    """DESIGN.md step 4 as a condition on the call's row (the new status is final/timed)."""
    later = and_(
        bindparam("p_occurred_at", type_=_CALLS.c.status_occurred_at.type).is_not(None),
        or_(
            _CALLS.c.status_occurred_at.is_(None),
            _CALLS.c.status_occurred_at < bindparam("p_occurred_at"),
        ),
    ) if timed else false()  # fmt: skip
    if final:
        return or_(_CALLS.c.status_final.is_(False), later)
    return and_(_CALLS.c.status_final.is_(False), later)


@cache
def _statement(final: bool, timed: bool) -> Select[Any]:
    inbound = (
        insert(_INBOUND)
        .values(
            received_at=bindparam("p_received_at"),
            content_type=bindparam("i_content_type"),
            peer=bindparam("i_peer"),
            body=bindparam("i_body"),
            size=bindparam("i_size"),
            items=1,
        )
        .returning(_INBOUND.c.id)
        .cte("inbound")
    )
    moved = (
        update(_CALLS)
        .where(_CALLS.c.message_id == bindparam("p_message_id"), _precedence(final, timed))
        .values(
            {
                **{name: bindparam(f"p_{name}") for name in _SHARED_COLUMNS},
                "status_final": bindparam("p_status_final"),
                "status_occurred_at": bindparam("p_occurred_at"),
                "updated_at": bindparam("p_received_at"),
            }
        )
        .returning(_CALLS.c.id)
        .cte("moved")
    )
    values = select(
        *(bindparam(f"p_{c.name}", type_=c.type) for c in _EVENT_COLUMNS),
        select(moved.c.id).scalar_subquery(),
        exists(select(moved.c.id)),
        select(inbound.c.id).scalar_subquery(),
    )
    names = [c.name for c in _EVENT_COLUMNS] + ["call_id", "applied", "inbound_report_id"]
    event = (
        insert(_EVENTS)
        .from_select(names, values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_EVENTS.c.id)
        .cte("event")
    )
    return select(
        select(inbound.c.id).scalar_subquery(),
        select(moved.c.id).scalar_subquery(),
        select(event.c.id).scalar_subquery(),
    )


def record_single(
    session: Session,
    report: DeliveryReport,
    *,
    body: bytes,
    content_type: str,
    peer: str | None,
    received_at: datetime,
) -> ItemResult | None:
    """Store the body and record its one report; None when it must take the general path."""
    change = change_from_report(report)
    values = event_values(report, change, received_at, None, EventSource.REPORT)
    if unstorable_value(values) is not None:
        return None  # the general path stores the body and explains the refusal
    params: dict[str, Any] = {f"p_{c.name}": values.get(c.name) for c in _EVENT_COLUMNS}
    params.update(p_status_final=change.final, i_content_type=content_type[:200], i_peer=peer,
                  i_body=body, i_size=len(body))  # fmt: skip
    statement = _statement(change.final, change.occurred_at is not None)
    _, moved_id, event_id = session.execute(statement, params).one()
    if event_id is None:
        session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.dedupe_key == values["dedupe_key"])
            .values(duplicates=_EVENTS.c.duplicates + 1)
        )
        return ItemResult(report.index, report.message_id, DUPLICATE)
    if moved_id is not None:
        return ItemResult(report.index, report.message_id, APPLIED)
    return _explain(session, report, change.final, change.occurred_at, event_id)


def _explain(
    session: Session,
    report: DeliveryReport,
    final: bool,
    occurred_at: datetime | None,
    event_id: int,
) -> ItemResult:
    """Say why the status did not move (unmatched, late, after_final), on the event too."""
    row = session.execute(
        select(_CALLS.c.id, _CALLS.c.status_final, _CALLS.c.status_occurred_at).where(
            _CALLS.c.message_id == report.message_id
        )
    ).first()
    if row is None:
        reason, call_id = UNMATCHED, None
    else:
        reason = supersedes(final, occurred_at, row[1], row[2]) or "late"
        call_id = row[0]
    session.execute(
        update(_EVENTS).where(_EVENTS.c.id == event_id).values(call_id=call_id, reason=reason)
    )
    if reason == UNMATCHED:
        return ItemResult(report.index, report.message_id, UNMATCHED, "no call has this messageId")
    return ItemResult(report.index, report.message_id, NOT_APPLIED, reason)
