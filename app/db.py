"""Database plumbing: declarative Base with named constraints, engines, sessions."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from sqlalchemy import JSON, DateTime, Engine, MetaData, Table, create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
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
