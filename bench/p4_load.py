"""P4 load: migrate a fresh PostgreSQL database, then fill it with COPY (bench/p4_rows.py).

The indexes and the unique and foreign-key constraints of calls and call_events are
dropped for the load and made again afterwards from their own definitions
(pg_indexes.indexdef, pg_get_constraintdef), in two sessions at once; the end state is
checked against the migrated schema. Each big table is truncated and copied with
FREEZE in one transaction, so its pages are all-visible at once, as autovacuum would
leave an older campaign's rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from p4_data import (
    BATCH_COLUMNS,
    BATCH_SIZE,
    BIG,
    CALL_COLUMNS,
    EVENT_COLUMNS,
    SMALL,
    Campaign,
    campaign_row,
)
from p4_rows import Generator
from psycopg import sql

BIN = Path(sys.executable).parent
LOADED = ("calls", "call_events")
FLUSH_BYTES = 1 << 20


def ivrdesk_env(url: str) -> dict[str, str]:
    """Return the environment the ivrdesk CLI and gunicorn run with for a database URL."""
    return {
        **os.environ,
        "IVR_ENV": "development",
        "IVR_DATABASE_URL": url,
        "IVR_INSTANCE_PATH": tempfile.gettempdir(),
        "IVR_LOG_FORMAT": "text",
    }


def migrate(url: str) -> None:
    """Run `ivrdesk db upgrade` (the migrations make the schema, indexes and views)."""
    subprocess.run(
        [BIN / "ivrdesk", "db", "upgrade"], env=ivrdesk_env(url), check=True, capture_output=True
    )


def create_viewer_token(url: str) -> str:
    """Create a viewer API token with `ivrdesk tokens create`; return its secret."""
    command = [str(BIN / "ivrdesk"), "tokens", "create", "p4-bench", "--role", "viewer"]
    done = subprocess.run(command, env=ivrdesk_env(url), check=True, capture_output=True, text=True)
    return str(done.stdout).strip().splitlines()[-1]


@dataclass
class Schema:
    """The indexes and constraints of some tables, by name, with their definitions."""

    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name: (table, def)
    constraints: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # (table, type, def)


def read_schema(conn: psycopg.Connection, tables: Iterable[str]) -> Schema:
    """Read the indexes and constraints of the tables from the catalog."""
    schema = Schema()
    names = list(tables)
    for table, name, definition in conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = 'public' AND tablename = ANY(%s)",
        [names],
    ):
        schema.indexes[name] = (table, definition)
    for table, name, kind, definition in conn.execute(
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s)",
        [names],
    ):
        schema.constraints[name] = (table, kind, definition)
    return schema


def drop_for_load(conn: psycopg.Connection, schema: Schema) -> None:
    """Drop the foreign keys, then primary and unique keys, then the other indexes."""
    for kinds in ("f", "pu"):
        for name, (table, kind, _) in schema.constraints.items():
            if kind in kinds:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(table), sql.Identifier(name)
                    )
                )
    for name in schema.indexes:
        if name not in schema.constraints:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    conn.commit()


def _restore_table(url: str, table: str, schema: Schema) -> None:
    """Make a table's primary and unique keys and indexes again, in one session."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for name, (owner, kind, definition) in schema.constraints.items():
            if owner == table and kind in "pu":
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
                    )
                )
        for name, (owner, definition) in schema.indexes.items():
            if owner == table and name not in schema.constraints:
                conn.execute(sql.SQL(definition))


def restore(url: str, schema: Schema) -> None:
    """Make the dropped keys and indexes again (a session per table), then the foreign keys."""
    failures: list[BaseException] = []

    def run(table: str) -> None:
        try:
            _restore_table(url, table, schema)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(table,)) for table in LOADED]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (table, kind, definition) in schema.constraints.items():
            if kind == "f":
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
                    )
                )


def plan_campaigns(calls: int, small: int, now: datetime) -> list[Campaign]:
    """Plan the big campaign (launched two days ago) and the small one (a day later)."""
    started = (now - timedelta(days=2)).replace(microsecond=0)
    big_batches = -(-calls // BATCH_SIZE)
    return [
        Campaign(1, BIG, calls, 1, 1, started),
        Campaign(2, SMALL, small, calls + 1, big_batches + 1, started + timedelta(days=1)),
    ]


def _copy_rows(
    conn: psycopg.Connection, table: str, columns: Iterable[str], freeze: bool
) -> AbstractContextManager[psycopg.Copy]:
    options = sql.SQL(" (FREEZE)") if freeze else sql.SQL("")
    statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)), options
    )
    return conn.cursor().copy(statement)


class _Buffered:
    """Collect COPY lines and send them about a megabyte at a time."""

    def __init__(self, copy: psycopg.Copy) -> None:
        """Write to this COPY."""
        self.copy = copy
        self.lines: list[str] = []
        self.size = 0
        self.rows = 0

    def add(self, line: str) -> None:
        """Queue one line (with its newline); send the queue when it is large enough."""
        self.lines.append(line)
        self.size += len(line)
        self.rows += 1
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Send the queued lines."""
        self.copy.write("".join(self.lines))
        self.lines, self.size = [], 0


@dataclass
class LoadReport:
    """What the load made and how long each step took."""

    calls: int = 0
    events: int = 0
    steps: dict[str, float] = field(default_factory=dict)


def load(
    url: str,
    calls: int,
    small: int,
    events_per_call: int,
    seed: int = 4,
    say: Callable[[str], None] = print,
) -> LoadReport:
    """Migrate, then bulk-load the campaigns; return counts and step times."""
    report = LoadReport()
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        report.steps[name] = time.perf_counter() - started
        say(f"  load: {name} {report.steps[name]:.1f} s")
        started = time.perf_counter()

    migrate(url)
    step("migrate")
    campaigns = plan_campaigns(calls, small, datetime.now(UTC))
    generator = Generator(campaigns, events_per_call, seed)
    with psycopg.connect(url) as conn:
        migrated = read_schema(conn, LOADED)
        for campaign in campaigns:
            row = campaign_row(campaign)
            conn.execute(
                sql.SQL("INSERT INTO campaigns ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                ),
                list(row.values()),
            )
        with _copy_rows(conn, "batches", BATCH_COLUMNS, freeze=False) as copy:
            copy.write("".join(generator.batches()))
        conn.commit()
        drop_for_load(conn, migrated)
    step("campaigns, batches, drop indexes")
    with psycopg.connect(url) as call_conn, psycopg.connect(url) as event_conn:
        for conn, table in ((call_conn, "calls"), (event_conn, "call_events")):
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        with (
            _copy_rows(call_conn, "calls", CALL_COLUMNS, freeze=True) as call_copy,
            _copy_rows(event_conn, "call_events", EVENT_COLUMNS, freeze=True) as event_copy,
        ):
            call_rows, event_rows = _Buffered(call_copy), _Buffered(event_copy)
            for call_line, event_line in generator.rows():
                if call_line is not None:
                    call_rows.add(call_line)
                else:
                    event_rows.add(event_line or "")
            call_rows.flush()
            event_rows.flush()
        call_conn.commit()
        event_conn.commit()
    report.calls, report.events = call_rows.rows, event_rows.rows
    step(f"COPY {report.calls} calls and {report.events} events")
    restore(url, migrated)
    step("indexes and constraints")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("campaigns", "batches", *LOADED):
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT max(id) FROM {}))"
                ).format(sql.Literal(table), sql.Identifier(table))
            )
        conn.execute("VACUUM (ANALYZE) campaigns, batches, calls, call_events")
        if read_schema(conn, LOADED) != migrated:
            raise RuntimeError("the loaded tables' indexes differ from the migrated schema")
    step("sequences, VACUUM ANALYZE, schema check")
    return report
