"""P4 measuring: timed HTTP lookups, the same lookups as bare SQL, CSV streams, worker RSS."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

# The bare SQL of each lookup: what app/lookups.py, app/listings.py and app/reporting.py
# ask PostgreSQL, without the API token check, the ORM, Flask, JSON and HTTP.
CALL_SQL = (
    "SELECT c.*, cp.*, e.* FROM calls c JOIN campaigns cp ON cp.id = c.campaign_id "
    "LEFT JOIN call_events e ON e.call_id = c.id WHERE c.message_id = %s "
    "ORDER BY e.received_at, e.id"
)
SEARCH_SQL = (
    "SELECT c.*, cp.* FROM calls c JOIN campaigns cp ON cp.id = c.campaign_id "
    "WHERE c.to_number = %s ORDER BY c.id DESC LIMIT 51"
)
CAMPAIGN_SQL = "SELECT * FROM campaigns WHERE bulk_id = %s"
SUMMARY_SQL = (
    "SELECT campaign_id, submit_state, count(*) FROM calls WHERE campaign_id IN (%s) "
    "GROUP BY campaign_id, submit_state",
    "SELECT campaign_id, status_group_id, count(*) FROM calls WHERE campaign_id IN (%s) "
    "GROUP BY campaign_id, status_group_id",
    "SELECT campaign_id, outcome, count(*) FROM calls WHERE campaign_id IN (%s) "
    "GROUP BY campaign_id, outcome",
    "SELECT campaign_id, sum(duration), sum(charged_duration) FROM calls "
    "WHERE campaign_id IN (%s) GROUP BY campaign_id",
    "SELECT campaign_id, currency, sum(price_per_second * coalesce(charged_duration, duration)) "
    "FROM calls WHERE campaign_id IN (%s) AND currency IS NOT NULL GROUP BY campaign_id, currency",
)
# Not what ivrdesk runs: every count of the summary from one scan of the campaign's calls.
ONE_PASS_SQL = (
    "SELECT submit_state, status_group_id, outcome, currency, count(*), sum(duration), "
    "sum(charged_duration), sum(price_per_second * coalesce(charged_duration, duration)) "
    "FROM calls WHERE campaign_id = %s GROUP BY submit_state, status_group_id, outcome, currency"
)
VIEW_SQL = "SELECT * FROM report_campaign_summary WHERE bulk_id = %s"
EXPORT_COLUMNS = (
    "message_id, to_number, callback_data, submit_state, status_group_name, status_name, "
    "error_name, outcome, answered_by, duration_s, charged_duration_s, cost, currency, dtmf, "
    "sent_at, answered_at, ended_at, updated_at"
)
EXPORT_CHUNK_SQL = (
    f"SELECT call_id, {EXPORT_COLUMNS} FROM report_calls "  # noqa: S608  (constant columns)
    "WHERE bulk_id = %s AND call_id > %s ORDER BY call_id LIMIT 1000"
)
EXPORT_COPY_SQL = (
    f"COPY (SELECT {EXPORT_COLUMNS} FROM report_calls "  # noqa: S608  (constant columns)
    "WHERE bulk_id = %s ORDER BY call_id) "
    "TO STDOUT WITH (FORMAT csv, HEADER)"
)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of samples (0 < fraction <= 1)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


@dataclass
class Timings:
    """Milliseconds of one lookup through ivrdesk (HTTP) and as bare SQL, sample by sample."""

    http: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    worker_cpu: float = 0.0  # CPU ms the gunicorn workers spent per HTTP lookup

    def median(self, which: str) -> float:
        """Return the median of `http` or `sql`."""
        samples: list[float] = getattr(self, which)
        return statistics.median(samples)

    def p95(self, which: str) -> float:
        """Return the 95th percentile of `http` or `sql`."""
        return percentile(getattr(self, which), 0.95)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def time_http(client: httpx.Client, path: str) -> float:
    """GET a path and read the whole answer; return milliseconds (raise unless 200)."""
    started = time.perf_counter()
    response = client.get(path)
    elapsed = _ms(started)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return elapsed


def time_sql(conn: psycopg.Connection, run: Callable[[psycopg.Connection], Any]) -> float:
    """Run bare SQL, fetching every row; return milliseconds.

    On an autocommitted connection and without a transaction, as ivrdesk runs its
    GET requests on PostgreSQL (app.db.make_read_session_factory).
    """
    assert conn.autocommit
    started = time.perf_counter()
    run(conn)
    return _ms(started)


def sql_call(message_id: str) -> Callable[[psycopg.Connection], Any]:
    """Return the bare SQL of GET /api/v1/calls/<messageId>: the call with its history."""

    def run(conn: psycopg.Connection) -> Any:
        rows = conn.execute(CALL_SQL, [message_id]).fetchall()
        assert rows
        return rows

    return run


def sql_search(number: str) -> Callable[[psycopg.Connection], Any]:
    """Return the bare SQL of GET /api/v1/calls?to=<number>: one page of 50 (+1)."""
    return lambda conn: conn.execute(SEARCH_SQL, [number]).fetchall()


def sql_summary(bulk_id: str) -> Callable[[psycopg.Connection], Any]:
    """Return the bare SQL of GET /api/v1/campaigns/<bulkId>: the campaign, five counts."""

    def run(conn: psycopg.Connection) -> Any:
        campaign = conn.execute(CAMPAIGN_SQL, [bulk_id]).fetchone()
        assert campaign is not None
        return [conn.execute(statement, [campaign[0]]).fetchall() for statement in SUMMARY_SQL]

    return run


def sql_one_pass(bulk_id: str) -> Callable[[psycopg.Connection], Any]:
    """Return the campaign lookup and all its counts in one grouped scan (a proposal)."""

    def run(conn: psycopg.Connection) -> Any:
        campaign = conn.execute(CAMPAIGN_SQL, [bulk_id]).fetchone()
        assert campaign is not None
        return conn.execute(ONE_PASS_SQL, [campaign[0]]).fetchall()

    return run


def sql_view(bulk_id: str) -> Callable[[psycopg.Connection], Any]:
    """Return a read of the campaign's row of the report_campaign_summary view."""
    return lambda conn: conn.execute(VIEW_SQL, [bulk_id]).fetchall()


@dataclass
class Stream:
    """One CSV download: seconds in all, seconds to the first byte, bytes, data rows."""

    seconds: float
    first_byte: float
    size: int
    rows: int


def stream_http_csv(client: httpx.Client, path: str) -> Stream:
    """Download a CSV export chunk by chunk, counting bytes and lines, keeping nothing."""
    started = time.perf_counter()
    first = 0.0
    size = lines = 0
    with client.stream("GET", path) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        for chunk in response.iter_bytes():
            if not first:
                first = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
    return Stream(time.perf_counter() - started, first, size, lines - 1)


def stream_copy_csv(conn: psycopg.Connection, bulk_id: str) -> Stream:
    """Stream the same export straight from PostgreSQL with COPY ... TO STDOUT (baseline)."""
    started = time.perf_counter()
    first = 0.0
    size = lines = 0
    with conn.cursor() as cursor, cursor.copy(EXPORT_COPY_SQL, [bulk_id]) as copy:
        for chunk in copy:
            if not first:
                first = time.perf_counter() - started
            size += len(chunk)
            lines += bytes(chunk).count(b"\n")
    conn.commit()
    return Stream(time.perf_counter() - started, first, size, lines - 1)


def stream_sql_chunks(conn: psycopg.Connection, bulk_id: str) -> Stream:
    """Fetch the export's keyset chunks of 1,000 as app/reporting.py does, without CSV."""
    started = time.perf_counter()
    after, rows = 0, 0
    while True:
        with conn.transaction():
            chunk = conn.execute(EXPORT_CHUNK_SQL, [bulk_id, after]).fetchall()
        if not chunk:
            break
        after, rows = chunk[-1][0], rows + len(chunk)
    return Stream(time.perf_counter() - started, 0.0, 0, rows)


def children(pid: int) -> list[int]:
    """Return the ids of a process's children (the gunicorn workers of a master)."""
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    if listing.exists():
        return [int(child) for child in listing.read_text().split()]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def rss_mb(pid: int) -> float | None:
    """Return a process's resident set size in MB (VmRSS), None when it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """Return a process's user + system CPU seconds so far (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Memory:
    """RSS in MB of the worker that served a request: before it, and its peak during it."""

    pid: int
    before: float
    peak: float
    samples: int
    cpu: float  # CPU seconds the worker spent meanwhile


@contextmanager
def sample_workers(master: int, interval: float = 0.1) -> Iterator[list[Memory]]:
    """Sample every worker's VmRSS each `interval` s; yield a list filled in on exit.

    The worker that served is the one that used the most CPU meanwhile.
    """
    workers = children(master)
    before = {pid: rss_mb(pid) or 0.0 for pid in workers}
    cpu = {pid: cpu_seconds(pid) for pid in workers}
    peaks = dict(before)
    counts = dict.fromkeys(workers, 0)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            for pid in workers:
                rss = rss_mb(pid)
                if rss is not None:
                    peaks[pid] = max(peaks[pid], rss)
                    counts[pid] += 1

    thread = threading.Thread(target=sample, daemon=True)
    result: list[Memory] = []
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        spent = {pid: cpu_seconds(pid) - cpu[pid] for pid in workers}
        served = max(workers, key=lambda pid: spent[pid])
        result.append(Memory(served, before[served], peaks[served], counts[served], spent[served]))
