"""The recording path's store on SQLite: plain statements and executemany.

SQLite is local and has one writer at a time (BEGIN IMMEDIATE holds the database), so
the locks are the writer's and the statements need no set-based tricks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.models import Call, CallEvent
from app.reports.events import CallState, CallUpdate
from app.reports.moves import write_values

_EVENTS = cast(Table, CallEvent.__table__)
_CHUNK = 500  # bound values per IN list, well under SQLite's limit


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """Run the block in a savepoint (SQLAlchemy's, which knows pysqlite's ways)."""
    with session.begin_nested():
        yield


def lock_calls(session: Session, message_ids: set[str]) -> dict[str, CallState]:
    """Return the calls with these messageIds (the writer already holds the database)."""

    states: dict[str, CallState] = {}
    ids = sorted(message_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Call.id, Call.message_id, Call.status_final, Call.status_occurred_at,
                   Call.status_group_id)
            .where(Call.message_id.in_(ids[start : start + _CHUNK]))
            .order_by(Call.id)
        )  # fmt: skip
        for row in rows:
            states[row[1]] = CallState(row[0], row[2], row[3], row[4] is not None)
    return states


def stored_keys(session: Session, keys: set[str]) -> set[str]:
    """Return which of these dedupe keys call_events holds already."""
    found: set[str] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), _CHUNK):
        found.update(
            session.scalars(
                select(CallEvent.dedupe_key).where(
                    CallEvent.dedupe_key.in_(ordered[start : start + _CHUNK])
                )
            )
        )
    return found


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the events in order, but those whose key is stored; return the keys inserted.

    The writer holds the database: nothing else can store a key between the look and
    the INSERT.
    """
    if not rows:
        return set()
    keys = {row["dedupe_key"] for row in rows if row["dedupe_key"] is not None}
    stored = stored_keys(session, keys) if keys else set()
    fresh = [row for row in rows if row["dedupe_key"] not in stored]
    if fresh:
        session.connection().execute(insert(_EVENTS), fresh)
    return keys - stored


def update_calls(session: Session, updates: Sequence[CallUpdate], now: datetime) -> None:
    """Move each call to its update's values."""
    write_values(session, updates, now)


def count_duplicates(session: Session, counts: dict[str, int]) -> None:
    """Add each key's repeats to the duplicates of its stored event."""
    session.connection().execute(
        update(_EVENTS)
        .where(_EVENTS.c.dedupe_key == bindparam("key"))
        .values(duplicates=_EVENTS.c.duplicates + bindparam("n")),
        [{"key": key, "n": n} for key, n in sorted(counts.items())],
    )
