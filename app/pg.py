"""PostgreSQL statements compiled once and run on psycopg's raw cursor.

For the few statements run for every report. Session.execute costs about a
millisecond of CPU on a statement of forty bound values: SQLAlchemy builds the
statement's cache key on every call, and psycopg rewrites a query longer than
4 KB from %(name)s to $n placeholders on every call (it caches only shorter ones).
A PgStatement is compiled once with $n placeholders and runs on a RawCursor,
which sends it as it is. Bound values go through the type processors SQLAlchemy
would apply (UTC datetimes, JSON); rows come back as psycopg gives them; driver
errors become SQLAlchemy's (OperationalError, IntegrityError, ...) and a lost
connection is invalidated, as Session.execute would do.

`select_rows` runs a hot statement that returns rows (a read, or an INSERT ...
RETURNING) this way on PostgreSQL and through SQLAlchemy on SQLite; its rows are
plain sequences either way. Timestamps in them come back aware in the connection's
time zone on PostgreSQL (no result processors): a caller showing one converts it to
UTC first (app.lookups.resources.iso does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Connection, Select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import ReturningInsert

_DIALECT = PGDialect_psycopg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


class PgStatement:
    """A Core statement compiled once for PostgreSQL with $n placeholders."""

    def __init__(self, statement: ClauseElement) -> None:
        """Compile the statement and note each bound value's position and processor."""
        compiled: Any = statement.compile(dialect=_DIALECT)  # a SQLCompiler
        self.sql: str = compiled.string
        self._names: list[str] = list(compiled.positiontup)
        self._defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        self._processors: list[tuple[int, Any]] = []
        for position, name in enumerate(self._names):
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            if process is not None:
                self._processors.append((position, process))

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """Return the driver's parameters in order: the defaults, the values, processed."""
        defaults = self._defaults
        ordered = [values[name] if name in values else defaults[name] for name in self._names]
        for position, process in self._processors:
            ordered[position] = process(ordered[position])
        return ordered

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement in the connection's transaction and return every row."""
        driver: Any = connection.connection.driver_connection
        parameters = self.parameters(values)
        try:
            with psycopg.RawCursor(driver) as cursor:
                cursor.execute(self.sql, parameters)
                result = cursor.pgresult  # (cursor.description would build column objects)
                if result is None or result.status != pq.ExecStatus.TUPLES_OK:
                    return []
                return cursor.fetchall()
        except psycopg.Error as exc:
            lost = connection.dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
            if lost:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                self.sql, parameters, exc, psycopg.Error,
                connection_invalidated=lost, dialect=connection.dialect,
            ) from exc  # fmt: skip


def array_literal(values: Iterable[str | int | bool]) -> str:
    """Return the text of a PostgreSQL array of these texts, integers or booleans (no NULLs).

    Bound as text and cast on the server (`CAST(:ids AS TEXT[])`): psycopg adapts a
    Python list element by element, which cost about 0.25 ms of CPU for the four
    100-element arrays of a 100-result POST; this costs a tenth of that. Texts are
    quoted, with backslash and double quote escaped, so any text round-trips.
    """
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: str | int | bool) -> str:
    """Return one element of array_literal's text."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@cache
def compiled(build: Callable[[], ClauseElement]) -> PgStatement:
    """Return the PgStatement of a statement builder (each builder compiled once)."""
    return PgStatement(build())


def select_rows(
    connection: Connection,
    build: Callable[[], Select[*tuple[Any, ...]] | ReturningInsert[*tuple[Any, ...]]],
    values: Mapping[str, Any],
) -> Sequence[Sequence[Any]]:
    """Run a statement made by `build` (a cached builder); return its rows as plain sequences.

    A PgStatement on PostgreSQL, Connection.execute elsewhere; in the connection's
    transaction either way. See the module's note on timestamps.
    """
    if connection.dialect.name == "postgresql":
        return compiled(build).rows(connection, values)
    return connection.execute(build(), values).all()
