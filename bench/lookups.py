"""P4: lookups at scale on PostgreSQL, through ivrdesk's API, against bare SQL.

Run: .venv/bin/python bench/lookups.py [--calls 1000000] [--events-per-call 5]
     [--samples 200] [--runs 5] [--export-runs 3] [--keep | --reuse NAME] [--explain]

A fresh database is migrated (`ivrdesk db upgrade`) and bulk-loaded with COPY
(bench/p4_load.py): one campaign of --calls calls, one of --small-calls for the memory
comparison, --events-per-call history events per call. ivrdesk then runs under gunicorn
with deploy/gunicorn.conf.py (2 workers x 4 threads); this process, beside it on the same
machine, times over loopback HTTP with one keep-alive client:

- a call by messageId, GET /api/v1/calls/<messageId> (target < 5 ms);
- a search by number, GET /api/v1/calls?to=<number> (target < 20 ms);
- a campaign summary, GET /api/v1/campaigns/<bulkId> of the big campaign (target < 1 s);
- the CSV export, GET /api/v1/campaigns/<bulkId>/calls.csv, streamed and discarded, of
  both campaigns, while the gunicorn workers' VmRSS is sampled every 100 ms (target:
  constant memory, the big export's peak within 1.25x of the small one's).

The baseline, measured in the same run and interleaved sample by sample, is the same
lookup as bare SQL through psycopg (bench/p4_measure.py), and for the export PostgreSQL's
own COPY ... TO STDOUT of the same columns. Medians (and p95) are printed, with ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from p4_data import BIG, HOT_NUMBER, SMALL
from p4_load import create_viewer_token, ivrdesk_env, load
from p4_measure import (
    CAMPAIGN_SQL,
    Memory,
    Stream,
    Timings,
    children,
    cpu_seconds,
    sample_workers,
    sql_call,
    sql_one_pass,
    sql_search,
    sql_summary,
    sql_view,
    stream_copy_csv,
    stream_http_csv,
    stream_sql_chunks,
    time_http,
    time_sql,
)
from p4_report import print_plans, print_results
from support import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls of the big campaign")
    parser.add_argument("--small-calls", type=int, default=10_000, help="the small campaign")
    parser.add_argument("--events-per-call", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200, help="lookups by id and number")
    parser.add_argument("--runs", type=int, default=5, help="campaign summaries")
    parser.add_argument("--export-runs", type=int, default=3, help="CSV exports per campaign")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the database (for --reuse)")
    parser.add_argument("--reuse", metavar="NAME", help="measure a database kept by --keep")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every lookup")
    args = parser.parse_args()
    if args.calls < 1 or args.small_calls < 1 or args.events_per_call < 1:
        parser.error("--calls, --small-calls and --events-per-call must be at least 1")
    return args


def database_url(name: str) -> str:
    """Return the URL of a database on the benchmark's PostgreSQL server."""
    return urlsplit(ADMIN_URL.replace("+psycopg", ""))._replace(path=f"/{name}").geturl()


@contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    """Yield (URL, fresh) of a new database, or of the one named by --reuse."""
    if args.reuse:
        yield database_url(args.reuse), False
        return
    name = f"ivrdesk_p4_{os.getpid()}"
    admin = ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name), True
    finally:
        if args.keep:
            print(f"\nkept database {name}: re-run with --reuse {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def gunicorn(url: str) -> Iterator[tuple[str, int]]:
    """Run ivrdesk under gunicorn with deploy/gunicorn.conf.py; yield (base URL, master pid)."""
    port = free_port()
    env = {**ivrdesk_env(url), "GUNICORN_BIND": f"127.0.0.1:{port}", "PYTHONPATH": str(ROOT)}
    log_path = Path(tempfile.gettempdir()) / f"p4-gunicorn-{os.getpid()}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [BIN / "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(f"{base}/healthz", process, "gunicorn")
        except RuntimeError as exc:
            tail = "\n".join(log_path.read_text().splitlines()[-20:])
            raise RuntimeError(f"{exc}:\n{tail}") from exc
        yield base, process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
        log.close()
        log_path.unlink()


def pick_samples(url: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    """Pick random messageIds and destination numbers of stored calls."""
    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(id) FROM calls").fetchone()
        top = int(row[0]) if row and row[0] else 0
        ids = [rng.randint(1, top) for _ in range(count * 2)]
        rows = conn.execute(
            "SELECT message_id, to_number FROM calls WHERE id = ANY(%s)", [ids]
        ).fetchall()
    rng.shuffle(rows)
    message_ids = [message_id for message_id, _ in rows][:count]
    numbers = [number for _, number in rows if number != HOT_NUMBER][:count]
    return message_ids, numbers


def measure(
    client: httpx.Client,
    conn: psycopg.Connection,
    paths: list[str],
    queries: list[Callable[[psycopg.Connection], Any]] | None,
    master: int,
) -> Timings:
    """Time each lookup through HTTP and as bare SQL (if given), alternating which goes first."""
    timings = Timings()
    workers = children(master)
    cpu = sum(cpu_seconds(pid) for pid in workers)
    bare: list[Callable[[psycopg.Connection], Any] | None] = (
        list(queries) if queries else [None] * len(paths)
    )
    for n, (path, query) in enumerate(zip(paths, bare, strict=True)):
        if query is None:
            timings.http.append(time_http(client, path))
        elif n % 2:
            timings.sql.append(time_sql(conn, query))
            timings.http.append(time_http(client, path))
        else:
            timings.http.append(time_http(client, path))
            timings.sql.append(time_sql(conn, query))
    spent = sum(cpu_seconds(pid) for pid in workers) - cpu
    timings.worker_cpu = spent * 1000 / len(paths)
    return timings


def export(client: httpx.Client, master: int, bulk_id: str) -> tuple[Stream, Memory]:
    """Download one campaign's CSV through ivrdesk while sampling the workers' RSS."""
    with sample_workers(master) as memory:
        stream = stream_http_csv(client, f"/api/v1/campaigns/{bulk_id}/calls.csv")
    return stream, memory[0]


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages as text."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    """Load, start gunicorn, measure every lookup and print the figures."""
    args = parse_args()
    shape = (
        f"database {args.reuse} as loaded earlier"
        if args.reuse
        else f"{args.calls:,} + {args.small_calls:,} calls, {args.events_per_call} events per call"
    )
    print(
        f"P4 lookups at scale: {shape}; {os.cpu_count()} CPUs, "
        f"load average {load_average()} (1/5/15 min)"
    )
    with database(args) as (url, fresh):
        if fresh:
            started = time.perf_counter()
            report = load(url, args.calls, args.small_calls, args.events_per_call, args.seed)
            print(
                f"loaded {report.calls:,} calls and {report.events:,} events in "
                f"{time.perf_counter() - started:.0f} s; load average {load_average()}"
            )
        with psycopg.connect(url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM call_events), "
                "pg_size_pretty(pg_database_size(current_database())), version()"
            ).fetchone()
            assert counts is not None
            print(
                f"database: {counts[0]:,} calls, {counts[1]:,} events, {counts[2]}; "
                f"{counts[3].split(' on ')[0]}"
            )
            big_id = conn.execute(CAMPAIGN_SQL, [BIG]).fetchone()
            assert big_id is not None
            big_calls = conn.execute(
                "SELECT total_calls FROM campaigns WHERE bulk_id = %s", [BIG]
            ).fetchone()
            small_calls = conn.execute(
                "SELECT total_calls FROM campaigns WHERE bulk_id = %s", [SMALL]
            ).fetchone()
        token = create_viewer_token(url)
        message_ids, numbers = pick_samples(url, args.samples, args.seed)
        results = run_measurements(args, url, token, message_ids, numbers)
        print_results(
            args, results, big_calls[0] if big_calls else 0, small_calls[0] if small_calls else 0
        )
        if args.explain or results["missed"]:
            with psycopg.connect(url) as conn:
                print_plans(
                    conn,
                    results["missed"] if not args.explain else None,
                    message_ids[0],
                    numbers[0],
                )
    print(f"\nload average at the end: {load_average()}")


def run_measurements(
    args: argparse.Namespace, url: str, token: str, message_ids: list[str], numbers: list[str]
) -> dict[str, Any]:
    """Start gunicorn and measure every lookup; return the raw figures."""
    results: dict[str, Any] = {"missed": []}
    headers = {"Authorization": f"Bearer {token}"}
    with (
        gunicorn(url) as (base, master),
        httpx.Client(base_url=base, headers=headers, timeout=900) as client,
        psycopg.connect(url, autocommit=True) as conn,
    ):

        def timed(
            paths: list[str], queries: list[Callable[[psycopg.Connection], Any]] | None
        ) -> Timings:
            return measure(client, conn, paths, queries, master)

        def calls(ids: list[str]) -> Timings:
            return timed([f"/api/v1/calls/{m}" for m in ids], [sql_call(m) for m in ids])

        def searches(found: list[str]) -> Timings:
            return timed([f"/api/v1/calls?to={n}" for n in found], [sql_search(n) for n in found])

        calls(message_ids[:20])  # warm up both workers' pools and psycopg's prepared statements
        searches(numbers[:20])
        print(
            f"measuring ({len(message_ids)} calls, {len(numbers)} numbers, {args.runs} "
            f"summaries, {args.export_runs} exports per campaign) ..."
        )
        results["floor"] = timed(["/healthz"] * len(message_ids), None)
        results["call"] = calls(message_ids)
        results["search"] = searches(numbers)
        results["hot"] = searches([HOT_NUMBER] * max(5, args.samples // 10))
        with conn.cursor() as cursor:
            counts = [cursor.execute("SELECT count(*) FROM calls WHERE to_number = %s", [n])
                      .fetchone() for n in numbers[:50]]  # fmt: skip
            results["rows"] = statistics.mean(row[0] for row in counts if row is not None)
        results["summary"] = timed(
            [f"/api/v1/campaigns/{BIG}"] * args.runs, [sql_summary(BIG)] * args.runs
        )
        results["view"] = [time_sql(conn, sql_view(BIG)) for _ in range(args.runs)]
        results["one_pass"] = [time_sql(conn, sql_one_pass(BIG)) for _ in range(args.runs)]
        for bulk_id in (SMALL, BIG):
            runs = []
            for _ in range(args.export_runs):
                stream, memory = export(client, master, bulk_id)
                baseline = stream_copy_csv(conn, bulk_id)
                runs.append((stream, memory, baseline))
                print(
                    f"  export {bulk_id}: {stream.rows:,} rows, {stream.size / 1e6:.0f} MB in "
                    f"{stream.seconds:.1f} s (COPY {baseline.seconds:.1f} s); worker CPU "
                    f"{memory.cpu:.1f} s; worker "
                    f"{memory.pid} RSS {memory.before:.0f} -> peak {memory.peak:.0f} MB "
                    f"({memory.samples} samples); load average {load_average()}"
                )
            results[bulk_id] = runs
        results["chunks"] = stream_sql_chunks(conn, BIG)
    return results


if __name__ == "__main__":
    main()
