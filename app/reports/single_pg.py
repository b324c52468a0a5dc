"""The common case on PostgreSQL: one report in one POST, recorded in one statement.

Storing the raw body, moving the call's status and appending the event (or counting a
repeat of one) are one statement of data-modifying CTEs: one round trip, and no
transaction of its own in autocommit mode (the notify lane). The call's row is locked
first; the UPDATE's condition and the reason the status did not move are generated
from app.infobip.codes.PRECEDENCE, the table supersedes() reads. The statement is
compiled once and run on the driver's own connection (app.db.PgStatement).
"""

from __future__ import annotations

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
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from app.db import PgStatement
from app.infobip.codes import LATE, LATER_WINS, PRECEDENCE
from app.models import STATUS_COLUMNS, Call, CallEvent, InboundReport
from app.reports.events import UNMATCHED, Candidate, Decision
from app.reports.inbound import Inbound

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
    """PRECEDENCE as a condition on the call's row, for a new status final or not, timed or not."""
    later = and_(
        bindparam("p_occurred_at", type_=_CALLS.c.status_occurred_at.type).is_not(None),
        or_(
            _CALLS.c.status_occurred_at.is_(None),
            _CALLS.c.status_occurred_at < bindparam("p_occurred_at"),
        ),
    ) if timed else false()  # fmt: skip
    branches = []
    for current_final in (False, True):
        rule = PRECEDENCE[(final, current_final)]
        wins = true() if rule is None else later if rule == LATER_WINS else false()
        branches.append(and_(_CALLS.c.status_final.is_(current_final), wins))
    return or_(*branches)


def _kept_reasons(final: bool, current_final: Any) -> list[tuple[Any, Any]]:
    """PRECEDENCE's fixed reasons as CASE branches on the call's finality."""
    return [
        (current_final.is_(is_final), rule)
        for is_final in (False, True)
        if (rule := PRECEDENCE[(final, is_final)]) not in (None, LATER_WINS)
    ]


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
    whens: list[tuple[Any, Any]] = [
        (was_moved, null()),
        (~exists(select(locked.c.id)), UNMATCHED),
    ]
    lone = select(locked.c.status_final).scalar_subquery()
    whens += _kept_reasons(final, lone)
    values = select(
        *(bindparam(f"p_{c.name}", type_=c.type) for c in _EVENT_COLUMNS),
        select(locked.c.id).scalar_subquery(),
        was_moved,
        case(*whens, else_=literal(LATE)),
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


def record_one(connection: Connection, candidate: Candidate, inbound: Inbound) -> Decision:
    """Keep the body and record its one report in one statement (no commit)."""

    event = candidate.event
    params: dict[str, Any] = {f"p_{c.name}": event.get(c.name) for c in _EVENT_COLUMNS}
    params.update(p_status_final=candidate.final, i_content_type=inbound.content_type[:200],
                  i_peer=inbound.peer, i_body=inbound.body, i_size=len(inbound.body))  # fmt: skip
    statement = _pg_statement(candidate.final, candidate.occurred_at is not None)
    ((duplicates, reason),) = statement.rows(connection, params)
    return Decision(candidate, None, new=not duplicates, reason=reason)
