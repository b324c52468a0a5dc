"""Database plumbing: Base with named constraints, engines, sessions, PostgreSQL statements run
on the raw cursor, and the text neither database can hold."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import psycopg
from psycopg import pq, sql
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Select,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; constraints get names from NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Refuse naive datetimes and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The execution option that marks an engine's connections as only reading (below).
READS_ONLY = "ivrdesk_reads_only"


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off (below); take the write lock at
    # BEGIN so two writers queue on busy_timeout instead of failing on upgrade.
    # A session that only reads takes no lock (WAL: it reads its own snapshot).
    reads_only = conn.get_execution_options().get(READS_ONLY)
    conn.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# A pooled PostgreSQL connection idle longer than this is pinged before it is handed
# out (a restarted server or a dropped TCP connection is found before the request
# uses it). Under load connections come back within milliseconds and are not pinged:
# a ping is one more round trip per request, which SQLAlchemy's pool_pre_ping pays
# every time. A connection that dies while busy raises a disconnect error, which
# invalidates the whole pool; the notify endpoint retries once on it.
IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool replaces the connection
            raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from exc


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite turn on WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory used by web requests, the CLI and tests."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def make_read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return sessions for requests that only read (GET and HEAD); they must not write.

    On PostgreSQL their connections are in autocommit: each statement is its own
    transaction, so a lookup costs no BEGIN and no ROLLBACK round trip. Under READ
    COMMITTED, what PostgreSQL runs by default, a transaction's statements each see
    their own snapshot anyway, so a lookup of several statements sees nothing
    different. SQLAlchemy puts the connection back out of autocommit when it returns
    to the pool. On SQLite their transactions begin with a plain BEGIN instead of
    BEGIN IMMEDIATE (above): a lookup or an export never waits for, nor holds up, a
    writer.
    """
    if engine.dialect.name == "postgresql":
        return make_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
    return make_session_factory(engine.execution_options(**{READS_ONLY: True}))


def bulk_insert(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert many rows (dicts with the same keys) in the session's transaction.

    PostgreSQL takes them through COPY, which costs a fraction of the client's CPU of
    an INSERT per row; SQLite through executemany. Rows are consumed in chunks, so
    memory stays flat whatever their number. Datetimes must be aware (UTC columns).
    """
    remaining = iter(rows)
    chunks = iter(lambda: list(itertools.islice(remaining, 5000)), [])
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for chunk in chunks:
            connection.execute(insert(table), chunk)
        return
    first = next(chunks, None)
    if first is None:
        return
    names = list(first[0])
    documents = {name for name in names if isinstance(table.c[name].type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    driver = connection.connection.driver_connection  # the same transaction
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in itertools.chain([first], chunks):
            for row in chunk:
                # JSON columns as SQLAlchemy writes them: None becomes JSON null.
                copy.write_row([json.dumps(row[name]) if name in documents else row[name]
                                for name in names])  # fmt: skip


# PostgreSQL statements compiled once and run on psycopg's raw cursor.
#
# For the few statements run for every report. Session.execute costs about a
# millisecond of CPU on a statement of forty bound values: SQLAlchemy builds the
# statement's cache key on every call, and psycopg rewrites a query longer than
# 4 KB from %(name)s to $n placeholders on every call (it caches only shorter ones).
# A PgStatement is compiled once with $n placeholders and runs on a RawCursor,
# which sends it as it is. Bound values go through the type processors SQLAlchemy
# would apply (UTC datetimes, JSON); rows come back as psycopg gives them; driver
# errors become SQLAlchemy's (OperationalError, IntegrityError, ...) and a lost
# connection is invalidated, as Session.execute would do.
#
# `select_rows` runs a hot statement that returns rows (a read, or an INSERT ...
# RETURNING) this way on PostgreSQL and through SQLAlchemy on SQLite; its rows are
# plain sequences either way. Timestamps in them come back aware in the connection's
# time zone on PostgreSQL (no result processors): a caller showing one converts it to
# UTC first (app.lookups.resources.iso does).

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


# Text that neither database (nor Infobip) can take: NUL characters and lone surrogates.
#
# PostgreSQL refuses a NUL in any text (SQLite would store it); a lone UTF-16 surrogate
# is valid JSON but not Unicode, so no UTF-8 encoder takes it. Callers word the refusal.

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The JSON escapes that decode to a NUL or to a UTF-16 surrogate (paired or not).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def has_nul(text: str) -> bool:
    """Say whether the text holds a NUL character."""
    return "\x00" in text


def has_surrogate(text: str) -> bool:
    """Say whether the text holds an unpaired UTF-16 surrogate."""
    return _SURROGATE.search(text) is not None


def has_unstorable_character(text: str) -> bool:
    """Say whether the text holds a NUL or an unpaired surrogate (one scan for both)."""
    return _UNSTORABLE.search(text) is not None


def json_may_hold_unstorable(body: bytes) -> bool:
    """Say whether UTF-8 JSON may decode to text with a NUL or a lone surrogate.

    Strict JSON has no raw control character in a string and strict UTF-8 no
    surrogate, so only the escapes \\u0000 and \\uD800-\\uDFFF can make one: a body
    without any needs no scan value by value. A surrogate pair, or an escaped
    backslash before `u0000`, also says yes; the scan then decides.
    """
    return _UNSTORABLE_ESCAPE.search(body) is not None
