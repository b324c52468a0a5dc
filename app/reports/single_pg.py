"""The common case on PostgreSQL: one report in one POST, recorded in one statement.

Storing the raw body, moving the call's status and appending the event (or counting
a repeat of one) are one statement of data-modifying CTEs, so a report costs one
round trip, and no transaction of its own in autocommit mode. The rules are those of
app/calls.py: the call's row is locked first, the UPDATE's condition is the
precedence of DESIGN.md step 4 (a compare-and-set), the event records why the status
did not move (unmatched, late, after_final), and the unique key turns a repeated
report into a count. The statement is compiled once and run on the driver's own
connection (app.pg.PgStatement). Never commits.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    literal,
    null,
    or_,
    select,
    update,
)  # fmt: skip
from sqlalchemy.dialects.postgresql import insert

from app.models import Call, CallEvent, EventSource, InboundReport
from app.pg import PgStatement
from app.reports.parse import DeliveryReport
from app.reports.record import (
    APPLIED,
    DUPLICATE,
    NOT_APPLIED,
    STATUS_COLUMNS,
    UNMATCHED,
    ItemResult,
    change_from_report,
    event_values,
    unstorable_value,
)

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


_UNMATCHED_REASON = "no call has this messageId"


@cache
def _pg_statement(final: bool, timed: bool) -> PgStatement:
    return PgStatement(_statement(final, timed))


def _statement(final: bool, timed: bool) -> Select[Any]:
    locked = (
        select(_CALLS.c.id, _CALLS.c.status_final)
        .where(_CALLS.c.message_id == bindparam("p_message_id"))
        .with_for_update()
        .cte("locked")
    )
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
        .where(_CALLS.c.id == select(locked.c.id).scalar_subquery(), _precedence(final, timed))
        .values(
            {
                **{name: bindparam(f"p_{name}") for name in STATUS_COLUMNS},
                "status_final": bindparam("p_status_final"),
                "status_occurred_at": bindparam("p_occurred_at"),
                "updated_at": bindparam("p_received_at"),
            }
        )
        .returning(_CALLS.c.id)
        .cte("moved")
    )
    was_moved = exists(select(moved.c.id))
    # Why the status did not move, from the locked row as it was (supersedes()).
    whens: list[tuple[Any, Any]] = [(was_moved, null()), (~exists(select(locked.c.id)), UNMATCHED)]
    if not final:
        whens.append((select(locked.c.status_final).scalar_subquery(), "after_final"))
    values = select(
        *(bindparam(f"p_{c.name}", type_=c.type) for c in _EVENT_COLUMNS),
        select(locked.c.id).scalar_subquery(),
        was_moved,
        case(*whens, else_=literal("late")),
        select(inbound.c.id).scalar_subquery(),
        literal(0),
    )
    names = [c.name for c in _EVENT_COLUMNS] + [
        "call_id", "applied", "reason", "inbound_report_id", "duplicates"
    ]  # fmt: skip
    event = (
        insert(_EVENTS)
        .from_select(names, values, include_defaults=False)
        .on_conflict_do_update(
            index_elements=["dedupe_key"], set_={"duplicates": _EVENTS.c.duplicates + 1}
        )
        .returning(_EVENTS.c.duplicates, _EVENTS.c.reason)
        .cte("event")
    )
    return select(event.c.duplicates, event.c.reason)


def record_single(
    connection: Connection,
    report: DeliveryReport,
    *,
    body: bytes,
    content_type: str,
    peer: str | None,
    received_at: datetime,
) -> ItemResult | None:
    """Store the body and record its one report in one statement (no commit).

    None (and nothing stored) when a value cannot be stored: the general path stores
    the body and explains the refusal.
    """
    change = change_from_report(report)
    values = event_values(report, change, received_at, None, EventSource.REPORT)
    if unstorable_value(values) is not None:
        return None
    params: dict[str, Any] = {f"p_{c.name}": values.get(c.name) for c in _EVENT_COLUMNS}
    params.update(p_status_final=change.final, i_content_type=content_type[:200], i_peer=peer,
                  i_body=body, i_size=len(body))  # fmt: skip
    statement = _pg_statement(change.final, change.occurred_at is not None)
    ((duplicates, reason),) = statement.rows(connection, params)
    if duplicates:
        return ItemResult(report.index, report.message_id, DUPLICATE)
    if reason is None:
        return ItemResult(report.index, report.message_id, APPLIED)
    if reason == UNMATCHED:
        return ItemResult(report.index, report.message_id, UNMATCHED, _UNMATCHED_REASON)
    return ItemResult(report.index, report.message_id, NOT_APPLIED, reason)
