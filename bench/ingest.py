"""P1/P2: delivery-report ingest rate on PostgreSQL, against a minimal baseline app.

Run: .venv/bin/python bench/ingest.py [--requests 3000] [--repeat 3] [--concurrency 8]

Both apps run under gunicorn with deploy/gunicorn.conf.py on the same fresh PostgreSQL
database; the same load generator (processes with keep-alive HTTP clients, beside the
server on this machine: support.PostClient, lean so that it leaves the two cores to the
server) posts to each in turn. P1: one result per POST, ivrdesk vs the
baseline (one INSERT, one UPDATE, one commit), median of --repeat rounds and their ratio.
P2: 100 results per POST, results per second. Each round also prints the CPU time per
POST of gunicorn (all its processes), PostgreSQL (all its processes) and the load
generator, read from /proc: where the time goes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import PostClient, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TOKEN = "bench-notify-token-0123456789"
STATUSES = [(2, "UNDELIVERABLE", 97, "BUSY"), (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET"),
            (2, "UNDELIVERABLE", 96, "NO_ANSWER")]  # fmt: skip


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"ivrdesk_bench_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, calls: int) -> list[str]:
    """Migrate, then store one campaign of `calls` accepted calls (and the baseline's tables)."""
    env = {**os.environ, "IVR_ENV": "development", "IVR_DATABASE_URL": url,
           "IVR_INSTANCE_PATH": tempfile.gettempdir()}  # fmt: skip
    subprocess.run([BIN / "ivrdesk", "db", "upgrade"], env=env, check=True, capture_output=True)
    ids = [str(uuid.uuid4()) for _ in range(calls)]
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO campaigns (campaign_id, bulk_id, name, scenario_id, created_at, "
            "total_calls, asynchronous, fingerprint, messages, client_notify_urls, clamped) "
            "VALUES (:c, 'bench', 'bench', 'S', :now, :n, false, 'x', '[]', '[]', '[]')"
        ), {"c": str(uuid.uuid4()), "now": now, "n": calls})  # fmt: skip
        connection.execute(
            text(
                "INSERT INTO calls (campaign_id, message_index, message_id, to_number, "
                "submit_state, outcome, status_final, created_at, updated_at, "
                "status_group_id, status_id, status_name, status_occurred_at) "
                "SELECT 1, 0, m, '41790000000', 'accepted', 'pending', false, :now, :now, "
                "1, 26, 'PENDING_ACCEPTED', :now FROM unnest(CAST(:ids AS text[])) AS m"
            ),
            {"ids": ids, "now": now},
        )
        connection.execute(text(
            "CREATE TABLE bench_calls (message_id varchar(200) PRIMARY KEY, status_id int, "
            "status_name varchar(100))"
        ))  # fmt: skip
        connection.execute(text(
            "CREATE TABLE bench_events (id bigserial PRIMARY KEY, message_id varchar(200), "
            "status_id int, status_name varchar(100), raw json)"
        ))  # fmt: skip
        connection.execute(
            text("INSERT INTO bench_calls (message_id) SELECT unnest(CAST(:ids AS text[]))"),
            {"ids": ids},
        )
    engine.dispose()
    return ids


def reports(ids: list[str], count: int, per_post: int, round_no: int) -> list[bytes]:
    """Build `count` POST bodies of distinct reports (never duplicates of one another)."""
    base = datetime.now(UTC) + timedelta(days=1 + round_no)
    bodies, n = [], 0
    for _ in range(count):
        results = []
        for _ in range(per_post):
            group, group_name, status_id, name = STATUSES[n % len(STATUSES)]
            end = base + timedelta(milliseconds=n)
            results.append({
                "bulkId": "bench", "messageId": ids[n % len(ids)],
                "sentAt": base.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "voiceCall": {"endTime": end.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
                              "duration": 12, "chargedDuration": 60},
                "price": {"pricePerSecond": 0.0012, "currency": "EUR"},
                "status": {"groupId": group, "groupName": group_name, "id": status_id,
                           "name": name},
            })  # fmt: skip
            n += 1
        bodies.append(json.dumps({"results": results}).encode())
    return bodies


def _client(args: tuple[str, list[bytes]]) -> int:
    url, bodies = args
    client = PostClient(url)
    try:
        return sum(client.post(body) != 200 for body in bodies)
    finally:
        client.close()


def load(url: str, bodies: list[bytes], concurrency: int) -> tuple[float, int]:
    """Post every body from `concurrency` processes; return (seconds, failures)."""
    shares = [(url, bodies[k::concurrency]) for k in range(concurrency)]
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        started = time.perf_counter()
        failures = sum(pool.map(_client, shares))
        return time.perf_counter() - started, failures


def _cpu_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(server_group: int) -> dict[str, float]:
    """CPU seconds so far of the server's process group, of PostgreSQL's processes, and of
    this process's reaped children (the load generator's)."""
    totals = {"server": 0.0, "postgres": 0.0}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = path.read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        group = int(stat.rsplit(")", 1)[1].split()[2])
        if group == server_group:
            totals["server"] += _cpu_seconds(stat)
        elif name.startswith("postgres"):
            totals["postgres"] += _cpu_seconds(stat)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["load"] = children.ru_utime + children.ru_stime
    return totals


def measured_load(
    url: str, server_group: int, bodies: list[bytes], concurrency: int
) -> tuple[float, int, str]:
    """load(), and the CPU per POST that the server, PostgreSQL and the load generator spent."""
    before = process_cpu(server_group)
    seconds, failures = load(url, bodies, concurrency)
    after = process_cpu(server_group)
    split = ", ".join(f"{kind} {(after[kind] - before[kind]) / len(bodies) * 1000:.2f}"
                      for kind in ("server", "postgres", "load"))  # fmt: skip
    return seconds, failures, f"CPU ms per POST: {split}"


@contextmanager
def gunicorn(app: str, url: str) -> Iterator[tuple[str, int]]:
    """Serve `app`; yield its notify URL and gunicorn's process group."""
    port = free_port()
    env = {**os.environ, "IVR_ENV": "development", "IVR_DATABASE_URL": url,
           "IVR_NOTIFY_TOKENS": TOKEN, "IVR_INSTANCE_PATH": tempfile.gettempdir(),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_ACCESSLOG": "-",
           "IVR_LOG_FORMAT": "text", "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", app]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process, app)
        yield f"{base}/notify/ivr/{TOKEN}", process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="single-result POSTs a round")
    parser.add_argument("--batches", type=int, default=100, help="100-result POSTs a round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--calls", type=int, default=20_000)
    options = parser.parse_args()
    p1: dict[str, list[float]] = {"ivrdesk": [], "baseline": []}
    p2: list[float] = []
    with fresh_database() as url:
        ids = seed(url, options.calls)
        for round_no in range(options.repeat):
            for name, target in (("baseline", "bench.baseline_app:app"), ("ivrdesk", "wsgi:app")):
                bodies = reports(ids, options.requests, 1, round_no * 10 + len(p1[name]))
                with gunicorn(target, url) as (endpoint, group):
                    load(endpoint, bodies[:100], options.concurrency)  # warm up
                    seconds, failures, split = measured_load(
                        endpoint, group, bodies[100:], options.concurrency
                    )
                rate = (len(bodies) - 100) / seconds
                p1[name].append(rate)
                print(f"round {round_no + 1} P1 {name:8s} {rate:8.0f} reports/s"
                      f" ({failures} failed; {split})")  # fmt: skip
            bodies = reports(ids, options.batches, 100, 1000 + round_no)
            with gunicorn("wsgi:app", url) as (endpoint, group):
                load(endpoint, bodies[:5], min(options.concurrency, 4))  # warm up
                seconds, failures, split = measured_load(
                    endpoint, group, bodies[5:], min(options.concurrency, 4)
                )
            p2.append((len(bodies) - 5) * 100 / seconds)
            print(f"round {round_no + 1} P2 ivrdesk  {p2[-1]:8.0f} results/s"
                  f" ({failures} failed; {split})")  # fmt: skip
    ours, base = statistics.median(p1["ivrdesk"]), statistics.median(p1["baseline"])
    print()
    print(f"P1 single-result ingest, median of {options.repeat}: ivrdesk {ours:.0f}/s, "
          f"baseline {base:.0f}/s, ratio {ours / base:.2f}x (target >= 1.0x)")  # fmt: skip
    print(f"P2 100-result ingest, median of {options.repeat}: {statistics.median(p2):.0f} "
          f"results/s (target >= 10000/s)")  # fmt: skip


if __name__ == "__main__":
    main()
