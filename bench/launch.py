"""Benchmark an N-destination launch end to end to the fake Infobip: wall time and peak RSS.

Run with `make bench`, or `.venv/bin/python bench/launch.py [--destinations 100000]
[--database sqlite|postgresql] [--repeat 3]`. Each launch gets a fresh, migrated database;
the fake Infobip runs in a subprocess with reports held back for an hour. The same run also
launches N/2 (does memory stay flat as the campaign doubles?) and measures a baseline, a
`db upgrade` on the migrated database, which is the interpreter's and the app's own footprint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import free_port, wait_for

from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE

ROOT = Path(__file__).resolve().parent.parent
IVRDESK = Path(sys.executable).with_name("ivrdesk")
GNU_TIME = Path("/usr/bin/time")
API_KEY = "bench-key"
NOTIFY_TOKEN = "bench-notify-token-0123456789"
PER_MESSAGE = MAX_DESTINATIONS_PER_MESSAGE
ADMIN_URL = os.environ.get(
    "IVR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGET_SECONDS = 20.0
TARGET_RSS_MB = 300.0
FLAT_RATIO = 1.25  # peak RSS at N over peak RSS at N/2; at most this counts as flat


@dataclass(frozen=True)
class Sample:
    """One measured command: wall seconds, CPU seconds (user + system) and peak RSS in MB."""

    seconds: float
    cpu: float
    rss_mb: float


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=100_000, help="N (default 100000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; medians shown")
    args = parser.parse_args()
    if args.destinations < 2 or args.repeat < 1:
        parser.error("--destinations must be at least 2 and --repeat at least 1")
    return args


@contextlib.contextmanager
def simulator(workdir: Path) -> Iterator[str]:
    """Run the fake Infobip in a subprocess until the block ends; yield its base URL."""
    port = free_port()
    log = (workdir / "simulator.log").open("w")
    command = [str(IVRDESK), "simulator", "--port", str(port), "--api-key", API_KEY]
    process = subprocess.Popen(
        [*command, "--delay", "3600"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_simulator/state", process, "the simulator")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextlib.contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """Create an empty database for one run and remove it afterwards; yield its URL."""
    if kind == "sqlite":
        path = workdir / "bench.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in workdir.glob("bench.sqlite3*"):
                leftover.unlink()
        return
    name = f"ivrdesk_bench_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def launch_env(database_url: str, simulator_url: str, workdir: Path) -> dict[str, str]:
    """Return the environment of the ivrdesk commands: ours, without the caller's IVR_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    env.update(
        IVR_ENV="development",
        IVR_DATABASE_URL=database_url,
        IVR_INFOBIP_BASE_URL=simulator_url,
        IVR_INFOBIP_API_KEY=API_KEY,
        IVR_PUBLIC_URL="http://127.0.0.1:9",
        IVR_NOTIFY_TOKENS=NOTIFY_TOKEN,
        IVR_INSTANCE_PATH=str(workdir / "instance"),
        IVR_LOG_FORMAT="text",
    )
    return env


def write_body(path: Path, count: int, bulk_id: str, rng: random.Random) -> None:
    """Write a launch body of count unique Swiss mobile numbers, 20,000 per message."""
    numbers = [f"4179{n:07d}" for n in rng.sample(range(10_000_000), count)]
    messages: list[dict[str, Any]] = [
        {
            "scenarioId": "BENCH0123456789ABCDEF0123456789AB",
            "from": "41215550000",
            "destinations": [{"to": to} for to in numbers[start : start + PER_MESSAGE]],
            "parameters": {"clinic": "Bench", "slot": "09:30"},
            "callbackData": "bench",
        }
        for start in range(0, count, PER_MESSAGE)
    ]
    path.write_text(json.dumps({"bulkId": bulk_id, "name": "benchmark", "messages": messages}))


def measure(command: list[str], env: dict[str, str], workdir: Path) -> Sample:
    """Run a command to completion; return its wall time and peak RSS, or raise on failure."""
    report = workdir / "time.txt"
    wrapped = [str(GNU_TIME), "-v", "-o", str(report), *command] if GNU_TIME.exists() else command
    with (workdir / "out.txt").open("w+") as out:
        start = time.perf_counter()
        process = subprocess.Popen(wrapped, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            out.seek(0)
            tail = out.read()[-2000:]
            raise RuntimeError(f"{' '.join(command[1:])} exited {process.returncode}:\n{tail}")
    if not GNU_TIME.exists():
        cpu = usage.ru_utime + usage.ru_stime
        return Sample(seconds, cpu, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux
    figures = dict(
        line.strip().rsplit(": ", 1) for line in report.read_text().splitlines() if ": " in line
    )
    return Sample(
        parse_elapsed(figures["Elapsed (wall clock) time (h:mm:ss or m:ss)"]),
        float(figures["User time (seconds)"]) + float(figures["System time (seconds)"]),
        int(figures["Maximum resident set size (kbytes)"]) / 1024,
    )


def parse_elapsed(value: str) -> float:
    """Turn GNU time's h:mm:ss or m:ss.ss into seconds."""
    seconds = 0.0
    for part in value.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def count_calls(database_url: str) -> tuple[int, int]:
    """Return (accepted calls, all calls) in the database."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            accepted = connection.execute(
                text("SELECT count(*) FROM calls WHERE submit_state = 'accepted'")
            ).scalar_one()
            total = connection.execute(text("SELECT count(*) FROM calls")).scalar_one()
    finally:
        engine.dispose()
    return int(accepted), int(total)


def run_once(
    size: int, run: int, args: argparse.Namespace, simulator_url: str, workdir: Path
) -> tuple[Sample, Sample]:
    """Launch one fresh campaign of size calls; return (baseline, launch) samples."""
    body = workdir / "body.json"
    write_body(body, size, f"bench-{os.getpid()}-{size}-{run}", random.Random(run * 7 + size))
    with fresh_database(args.database, workdir) as database_url:
        env = launch_env(database_url, simulator_url, workdir)
        measure([str(IVRDESK), "db", "upgrade"], env, workdir)
        baseline = measure([str(IVRDESK), "db", "upgrade"], env, workdir)
        httpx.post(f"{simulator_url}/_simulator/reset", timeout=10).raise_for_status()
        launch = measure([str(IVRDESK), "launch", str(body)], env, workdir)
        accepted, total = count_calls(database_url)
    state = httpx.get(f"{simulator_url}/_simulator/state", timeout=10).json()
    verdict = "ok" if accepted == total == size == state["accepted"] else "MISMATCH"
    print(
        f"  run {run + 1}, N={size}: {launch.seconds:.2f} s (CPU {launch.cpu:.2f} s), "
        f"{launch.rss_mb:.0f} MB; "
        f"database: {accepted} of {total} calls accepted; "
        f"fake Infobip accepted {state['accepted']}: {verdict}",
        flush=True,
    )
    if verdict != "ok":
        raise RuntimeError(f"expected {size} accepted calls")
    return baseline, launch


def median(samples: list[Sample]) -> Sample:
    """Return the median of each figure over samples."""
    return Sample(
        statistics.median(s.seconds for s in samples),
        statistics.median(s.cpu for s in samples),
        statistics.median(s.rss_mb for s in samples),
    )


def report(args: argparse.Namespace, baseline: Sample, half: Sample, full: Sample) -> None:
    """Print the table of medians, the ratios and the targets."""
    n = args.destinations
    print(f"\nivrdesk launch, {args.database}, median of {args.repeat} run(s)")
    print(f"{'what':<24}{'N':>9}{'seconds':>10}{'CPU s':>8}{'peak RSS MB':>13}")
    rows = (("baseline (db upgrade)", "-", baseline), ("launch", n // 2, half), ("launch", n, full))
    for label, size, sample in rows:
        print(
            f"{label:<24}{size:>9}{sample.seconds:>10.2f}{sample.cpu:>8.2f}{sample.rss_mb:>13.0f}"
        )
    rss_ratio = full.rss_mb / half.rss_mb
    grown = half.rss_mb - baseline.rss_mb
    above = f"x{(full.rss_mb - baseline.rss_mb) / grown:.2f}" if grown >= 5 else "n/a"
    print(
        f"ratios N vs N/2: time x{full.seconds / half.seconds:.2f}, peak RSS x{rss_ratio:.2f} "
        f"(growth above baseline {above}); N costs {full.rss_mb - baseline.rss_mb:.0f} MB "
        f"and {full.seconds - baseline.seconds:.2f} s over the baseline"
    )
    for name, met in (
        (f"<= {TARGET_SECONDS:.0f} s end to end", full.seconds <= TARGET_SECONDS),
        (f"<= {TARGET_RSS_MB:.0f} MB peak RSS", full.rss_mb <= TARGET_RSS_MB),
        (f"memory flat when doubling (RSS ratio <= {FLAT_RATIO})", rss_ratio <= FLAT_RATIO),
    ):
        print(f"target {name}: {'met' if met else 'MISSED'}")


def main() -> int:
    """Run the benchmark and print its figures."""
    args = parse_args()
    if not IVRDESK.exists():
        print(f"no {IVRDESK}: run `make` first, and this script with .venv/bin/python")
        return 2
    sizes = (args.destinations // 2, args.destinations)
    workdir = Path(tempfile.mkdtemp(prefix="ivrdesk-bench-"))
    baselines: list[Sample] = []
    launches: dict[int, list[Sample]] = {size: [] for size in sizes}
    try:
        with simulator(workdir) as simulator_url:
            for run in range(args.repeat):
                for size in sizes:
                    baseline, launch = run_once(size, run, args, simulator_url, workdir)
                    baselines.append(baseline)
                    launches[size].append(launch)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, median(baselines), median(launches[sizes[0]]), median(launches[sizes[1]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
