"""The recording path's store on PostgreSQL: each statement takes a whole set of rows at once.

A 100-result POST costs the same few statements as a 1-result one: the calls are
locked with `= ANY(array)`; the events, the status moves and the duplicate counts
each travel as one JSON array of rows (each row an array of values in column order),
which the statement unpacks with jsonb_array_elements, so the server parses and plans
each statement once (psycopg prepares them) whatever the number of rows. Each is
compiled once and run as an app.db.PgStatement. Values keep
their meaning through JSON: datetimes as ISO text with their offset (timestamptz),
Decimals as text (numeric), JSON columns as their own JSON text, so that they are
stored exactly as SQLAlchemy stores them (`null` included).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Insert,
    Integer,
    Numeric,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    Update,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.types import TypeEngine

from app.db import PgStatement, array_literal, compiled
from app.models import STATUS_COLUMNS, Call, CallEvent
from app.reports import single_pg
from app.reports.events import CallState, CallUpdate, Candidate, Decision
from app.reports.inbound import Inbound
from app.reports.moves import write_values

_CALLS: Table = Call.__table__  # type: ignore[assignment]
_EVENTS: Table = CallEvent.__table__  # type: ignore[assignment]
# The event columns every recorded event fills (all but its id).
_EVENT_COLUMNS = tuple(c for c in _EVENTS.columns if c.name != "id")
# Rows per INSERT: a JSON column's documents are joined to their rows by ordinality,
# which PostgreSQL may plan as a nested loop (a 20,000-call submit answer would be
# quadratic); a 100-result POST is one statement either way.
_INSERT_CHUNK = 1000
_COUNT_COLUMNS = (Column("dedupe_key", Text()), Column("added", Integer()))


def _sql_type(kind: TypeEngine[Any]) -> TypeEngine[Any] | None:
    """Return the type a row's text is cast to for a column; None to keep the text."""
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, String):
        return None
    if isinstance(kind, Numeric):
        return Numeric()
    if isinstance(kind, DateTime):
        return DateTime(timezone=True)
    if isinstance(kind, BigInteger | Integer | Boolean):
        return kind
    raise TypeError(f"no row type for {kind!r}")


def _rows(param: str, name: str, columns: Sequence[Column[Any]]) -> Any:
    """Return SELECT of the rows in :param, typed, with their order n (see _params)."""
    elements = (
        func.jsonb_array_elements(sa.cast(bindparam(param, type_=Text), JSONB))
        .table_valued(column("value", JSONB), with_ordinality="n")
        .render_derived(name=f"{name}_rows")
    )
    source: Any = elements
    fields: list[ColumnElement[Any]] = []
    position = 0  # of the column among those in the array of arrays
    for col in columns:
        if isinstance(col.type, JSON):
            # json_array_elements gives back each element's text as it was sent.
            documents = (
                func.json_array_elements(sa.cast(bindparam(f"{param}_{col.name}", Text), JSON))
                .table_valued(column("value", JSON), with_ordinality="n")
                .render_derived(name=f"{name}_{col.name}")
            )
            source = source.join(documents, documents.c.n == elements.c.n)
            fields.append(documents.c.value.label(col.name))
            continue
        text = elements.c.value.op("->>")(literal_column(str(position)))
        position += 1
        kind = _sql_type(col.type)
        fields.append((text if kind is None else sa.cast(text, kind)).label(col.name))
    return select(*fields, elements.c.n).select_from(source).subquery(name)


def _array(name: str, kind: type[TypeEngine[Any]]) -> ColumnElement[Any]:
    """An array bound as the text of its literal (app.db.array_literal), cast on the server."""
    return sa.cast(bindparam(name, type_=Text), ARRAY(kind))


@cache
def _lock_statement() -> Select[Any]:
    """Select the calls of some messageIds (:ids) FOR NO KEY UPDATE, in id order.

    The ids are joined as a set (unnest), so each is one probe of the unique index
    however many there are; `= ANY(:ids)` may be planned as a scan of every call that
    compares it with each id (a 7,000-call submit answer took minutes).
    """
    wanted = (
        func.unnest(_array("ids", Text))
        .table_valued(column("message_id", Text))
        .render_derived(name="wanted")
    )
    return (
        select(_CALLS.c.id, _CALLS.c.message_id, _CALLS.c.status_final,
               _CALLS.c.status_occurred_at, _CALLS.c.status_group_id)
        .join(wanted, wanted.c.message_id == _CALLS.c.message_id)
        .order_by(_CALLS.c.id)
        .with_for_update(key_share=True, of=_CALLS)
    )  # fmt: skip


@cache
def _insert_statement() -> Insert:
    """Insert the events of :events in their order, skip stored keys, return the new keys."""
    rows = _rows("events", "r", _EVENT_COLUMNS)
    names = [c.name for c in _EVENT_COLUMNS]
    return (
        insert(_EVENTS)
        .from_select(names, select(*(rows.c[name] for name in names)).order_by(rows.c.n))
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(_EVENTS.c.dedupe_key)
    )


@cache
def _move_statement() -> Update:
    """Set each call of :ids to the status of its winning event (:keys), final or not (:finals).

    The winning events are in call_events already (inserted just before, or stored
    by an earlier POST under the same key), so the status travels as a key, not as
    its values a second time. The calls are found only through the unnested :ids, one
    index probe each: a further `id = ANY(:ids)` was planned, for a large set, as a
    scan of every call parsing the array for each (100,000 ids: minutes).
    """
    ids = _array("ids", BigInteger)
    moves = (
        func.unnest(ids, _array("keys", Text), _array("finals", Boolean))
        .table_valued(column("id", BigInteger), column("key", Text), column("final", Boolean))
        .render_derived(name="m")
    )  # fmt: skip
    return (
        update(_CALLS)
        .where(_CALLS.c.id == moves.c.id, _EVENTS.c.dedupe_key == moves.c.key)
        .values(
            {
                **{name: _EVENTS.c[name] for name in STATUS_COLUMNS},
                "status_final": moves.c.final,
                "status_occurred_at": _EVENTS.c.occurred_at,
                "updated_at": bindparam("now", type_=DateTime(timezone=True)),
            }
        )
    )


@cache
def _duplicates_statement() -> Update:
    """Add each count of :counts to the duplicates of the event with its key."""
    rows = _rows("counts", "d", _COUNT_COLUMNS)
    return (
        update(_EVENTS)
        .where(_EVENTS.c.dedupe_key == rows.c.dedupe_key)
        .values(duplicates=_EVENTS.c.duplicates + rows.c.added)
    )


class _Layout:
    """How rows of some columns travel: plain values in one array of arrays, JSON apart."""

    def __init__(self, columns: Sequence[Column[Any]]) -> None:
        """Note where each kind of value goes."""
        plain = [c for c in columns if not isinstance(c.type, JSON)]
        self.values = itemgetter(*(c.name for c in plain))
        kinds = [_sql_type(c.type) for c in plain]
        self.moments = [i for i, kind in enumerate(kinds) if isinstance(kind, DateTime)]
        self.numbers = [i for i, kind in enumerate(kinds) if isinstance(kind, Numeric)]
        self.documents = [c.name for c in columns if isinstance(c.type, JSON)]


def _params(param: str, rows: Sequence[dict[str, Any]], layout: _Layout) -> dict[str, str]:
    """Return the parameters of _rows: rows as a JSON array of arrays, JSON columns apart.

    Each JSON column is its own JSON array (parameter `<param>_<column>`), so that
    every value is written out once, and stored as the very text written.
    """
    texts: dict[datetime, str] = {}  # the same few moments recur in every row
    table = []
    for row in rows:
        values = list(layout.values(row))
        for index in layout.moments:
            moment = values[index]
            if moment is not None:
                text = texts.get(moment)
                if text is None:
                    if moment.tzinfo is None:
                        raise ValueError("naive datetime given to a UTC column")
                    text = texts[moment] = moment.isoformat()
                values[index] = text
        for index in layout.numbers:
            if values[index] is not None:
                values[index] = str(values[index])
        table.append(values)
    params = {param: json.dumps(table)}
    for name in layout.documents:
        params[f"{param}_{name}"] = json.dumps([row[name] for row in rows])
    return params


_EVENT_LAYOUT = _Layout(_EVENT_COLUMNS)
_COUNT_LAYOUT = _Layout(_COUNT_COLUMNS)


def _run(
    session: Session, build: Callable[[], ClauseElement], params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """Run a statement of this module, compiled once, in the session's transaction."""
    return compiled(build).rows(session.connection(), params)


@cache
def _savepoint_statements() -> tuple[PgStatement, PgStatement, PgStatement]:
    """SAVEPOINT, ROLLBACK TO and RELEASE of the recording path's savepoint."""
    name = "record_set"
    return (
        PgStatement(text(f"SAVEPOINT {name}")),
        PgStatement(text(f"ROLLBACK TO SAVEPOINT {name}")),
        PgStatement(text(f"RELEASE SAVEPOINT {name}")),
    )


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """Run the block in a savepoint, rolled back if it raises.

    Sent on the driver's connection (Core statements only run inside, so the session
    has nothing to forget): Session.begin_nested cost about 0.5 ms of CPU a 100-result
    POST, a tenth of the POST's.
    """
    connection = session.connection()
    begin, rollback, release = _savepoint_statements()
    begin.rows(connection, {})
    try:
        yield
    except BaseException:
        if not connection.invalidated:
            rollback.rows(connection, {})
            release.rows(connection, {})
        raise
    release.rows(connection, {})


def record_one(connection: Connection, candidate: Candidate, inbound: Inbound) -> Decision:
    """Keep the body and record its one report in one statement (app.reports.single_pg)."""
    return single_pg.record_one(connection, candidate, inbound)


def lock_calls(session: Session, message_ids: Iterable[str]) -> dict[str, CallState]:
    """Lock the calls with these messageIds FOR NO KEY UPDATE, in id order; return their states.

    FOR NO KEY UPDATE is the lock an UPDATE of non-key columns takes: it does not
    block the foreign-key checks of events inserted for these calls elsewhere.
    """

    rows = _run(session, _lock_statement, {"ids": array_literal(sorted(message_ids))})
    return {row[1]: CallState(row[0], row[2], row[3], row[4] is not None) for row in rows}


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert events in the order given, skipping keys already stored; return the new keys."""
    inserted: set[str] = set()
    for start in range(0, len(rows), _INSERT_CHUNK):
        params = _params("events", rows[start : start + _INSERT_CHUNK], _EVENT_LAYOUT)
        inserted.update(key for (key,) in _run(session, _insert_statement, params) if key)
    return inserted


def update_calls(session: Session, updates: Sequence[CallUpdate], now: datetime) -> None:
    """Move each call to its update: a report's winner by its event's key, the rest by value.

    The winning report events are in call_events already (inserted just before, or
    stored under the same key), so their status travels as a key, not a second time.
    """
    moves: list[tuple[int, str, bool]] = []
    by_value: list[CallUpdate] = []
    for change in updates:
        winner = change.winner
        if winner and winner.key and change.submit is None and change.outcome is None:
            moves.append((change.call_id, winner.key, winner.final))  # a report's winner alone
        else:
            by_value.append(change)
    if moves:
        ids, keys, finals = (array_literal(values) for values in zip(*sorted(moves), strict=True))
        _run(session, _move_statement, {"ids": ids, "keys": keys, "finals": finals, "now": now})
    write_values(session, by_value, now)


def count_duplicates(session: Session, counts: dict[str, int]) -> None:
    """Add to the duplicates of stored events, in key order."""
    keys = sorted(counts)
    params: dict[str, Any] = _params(
        "counts", [{"dedupe_key": key, "added": counts[key]} for key in keys], _COUNT_LAYOUT
    )
    _run(session, _duplicates_statement, params)
