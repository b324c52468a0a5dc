"""What a call takes on from its update, and one Core writer of those values (both dialects)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from app.models import STATUS_COLUMNS, Call
from app.reports.events import CallUpdate

_CALLS = cast(Table, Call.__table__)
_CHUNK = 1000


def call_values(update: CallUpdate) -> dict[str, Any]:
    """Return the columns a call takes on from its update (never its id)."""
    values: dict[str, Any] = {}
    winner, submit = update.winner, update.submit
    if winner is not None:
        values.update({name: winner.event[name] for name in STATUS_COLUMNS})
        values["status_final"] = winner.final
        values["status_occurred_at"] = winner.occurred_at
    if submit is not None:
        values["submit_state"] = submit.submit_state
        values["submit_error"] = submit.submit_error
    if update.outcome is not None:
        values["outcome"] = update.outcome
    return values


def write_values(session: Session, updates: Sequence[CallUpdate], now: datetime) -> None:
    """Write each call's values: one UPDATE per set of calls taking the same values.

    A batch's submit answer gives most of its calls the same values (one statement for
    them all); reports give each call its own (one executemany for those).
    """
    groups: dict[tuple[Any, ...], tuple[dict[str, Any], list[int]]] = {}
    for item in updates:
        values = call_values(item)
        if not values:
            continue
        signature = tuple((name, repr(value)) for name, value in values.items())
        groups.setdefault(signature, (values, []))[1].append(item.call_id)
    singles: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    connection = session.connection()
    for values, ids in groups.values():
        if len(ids) == 1:
            singles.setdefault(tuple(values), []).append({**values, "pk": ids[0]})
            continue
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            connection.execute(
                update(_CALLS).where(_CALLS.c.id.in_(chunk)).values(**values, updated_at=now)
            )
    for names, rows in singles.items():
        connection.execute(
            update(_CALLS)
            .where(_CALLS.c.id == bindparam("pk"))
            .values({**{name: bindparam(name) for name in names}, "updated_at": now}),
            rows,
        )
