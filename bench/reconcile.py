"""Benchmark a reconciliation of N calls against the fake Infobip's voice logs: time and requests.

Run with `.venv/bin/python bench/reconcile.py [--calls 100000] [--database postgresql|sqlite]
[--repeat 3]`. Each run gets a fresh, migrated database and its own fake Infobip (`ivrdesk
simulator` in a subprocess, so that its request rate window starts empty) whose reports are
never posted (plan enabled=False) but whose logs turn final after a short delay. `ivrdesk
launch` sends N destinations (IVR_BATCH_SIZE 1000); once every report is due,
`app.reports.reconcile.reconcile` runs in this process with IVR_RECONCILE_AFTER=0 and is timed
(wall and CPU, split into selecting the open calls, the log requests, and recording), then
run again (it must look up nothing). The baseline measured in the same run replays the same
log requests with a fresh InfobipClient alone, no database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import httpx
from launch import API_KEY, IVRDESK, ROOT, fresh_database, launch_env, measure, write_body
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from support import free_port, wait_for

import app.reports.reconcile as reconciliation
from app.config import load_settings
from app.db import make_engine, make_session_factory, utcnow
from app.infobip.client import InfobipClient, LogEntry, ProviderError
from app.infobip.limits import LOGS_MAX_LIMIT, LOGS_REQUESTS_PER_MINUTE
from app.reports.reconcile import Rules, Settled, reconcile, rules_of
from app.reports.record import record

REPORT_DELAY = 2.0  # seconds from a call's acceptance to its final status in the fake's logs
DUE_TIMEOUT = 120.0  # seconds to wait for the fake's last reports to fall due
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Recorder:
    """The log requests a client made: their arguments, answers' sizes and time spent."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    last: float = 0.0  # time.monotonic() of the last answer


class RecordingClient(InfobipClient):
    """An InfobipClient that notes each logs request (arguments, answer size, wall time)."""

    def __init__(self, recorder: Recorder, **kwargs: Any) -> None:
        """Build the client; `recorder` collects what logs() does."""
        super().__init__(**kwargs)
        self.recorder = recorder

    def logs(self, **kwargs: Any) -> list[LogEntry]:
        """Make one logs request through InfobipClient.logs, timed."""
        start = time.perf_counter()
        try:
            entries = super().logs(**kwargs)
        finally:
            self.recorder.seconds += time.perf_counter() - start
            self.recorder.last = time.monotonic()
        self.recorder.calls.append(kwargs)
        self.recorder.sizes.append(len(entries))
        return entries


@dataclass(frozen=True)
class Sample:
    """One run's figures (seconds are wall time unless named cpu)."""

    seconds: float
    cpu: float
    select: float  # open_calls: the calls to look up, their due times and batches
    lookups: float  # inside InfobipClient.logs, pacing included
    record: float  # app.reports.record.record of the candidates
    fake_cpu: float  # the fake Infobip's CPU during the reconciliation
    baseline: float  # the same log requests replayed, InfobipClient alone
    baseline_cpu: float
    baseline_fake_cpu: float
    settled: Settled
    windows: int  # requests by sentSince/sentUntil
    by_id: int  # requests by messageId
    cut_short: int  # window requests answered with LOGS_MAX_LIMIT entries
    second: Settled  # the reconciliation run again right after


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="N (default 100000)")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each fresh; medians shown")
    args = parser.parse_args()
    if args.calls < 1 or args.repeat < 1:
        parser.error("--calls and --repeat must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so that subprocesses and databases are cleaned up."""
    raise SystemExit(f"stopped by signal {signum}")


def cpu_of(pid: int) -> float:
    """Return a process's CPU seconds so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@contextlib.contextmanager
def simulator(workdir: Path) -> Iterator[tuple[str, int]]:
    """Run a fake Infobip whose reports are never posted; yield its URL and process id."""
    port = free_port()
    command = [str(IVRDESK), "simulator", "--port", str(port), "--api-key", API_KEY]
    command += ["--delay", str(REPORT_DELAY)]
    with (workdir / "simulator.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{url}/_simulator/state", process, "the simulator")
            plan = {"delay": REPORT_DELAY, "enabled": False, "seed": 14}
            httpx.post(f"{url}/_simulator/plan", json=plan, timeout=10).raise_for_status()
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_due(simulator_url: str, calls: int) -> None:
    """Wait until the fake accepted every call and holds no report not yet due."""
    deadline = time.monotonic() + DUE_TIMEOUT
    while time.monotonic() < deadline:
        state = httpx.get(f"{simulator_url}/_simulator/state", timeout=10).json()
        if state["accepted"] != calls:
            raise RuntimeError(f"the fake Infobip accepted {state['accepted']} of {calls} calls")
        if state["pending_reports"] == 0 and state["reports_posted"] == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the fake's reports were not all due within {DUE_TIMEOUT:.0f} s")


def count_calls(database_url: str) -> dict[str, int]:
    """Return how many calls are in the database, accepted, and with a final status."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    query = text(
        "SELECT count(*), count(*) FILTER (WHERE submit_state = 'accepted'), "
        "count(*) FILTER (WHERE status_final) FROM calls"
    )
    try:
        with engine.connect() as connection:
            total, accepted, final = connection.execute(query).one()
    finally:
        engine.dispose()
    return {"total": int(total), "accepted": int(accepted), "final": int(final)}


def timed(function: Callable[..., Any], totals: dict[str, float], name: str) -> Callable[..., Any]:
    """Wrap a function so that its wall time adds to totals[name]."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    return wrapper


def client_arguments(env: dict[str, str]) -> dict[str, Any]:
    """Return the InfobipClient arguments ivrdesk would use with this environment."""
    settings = load_settings(env)
    return {
        "base_url": settings.infobip_base_url,
        "api_key": settings.infobip_api_key,
        "timeout": settings.infobip_timeout,
        "connect_timeout": settings.connect_timeout,
    }


def run_reconcile(
    env: dict[str, str], fake_pid: int, rules: Rules
) -> tuple[Settled, Recorder, dict[str, float], Settled]:
    """Reconcile once, timed and split, then once more; return both and the figures."""
    settings = load_settings(env)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    recorder = Recorder()
    totals = {"select": 0.0, "record": 0.0}
    try:
        with (
            RecordingClient(recorder, **client_arguments(env)) as client,
            mock.patch.object(
                reconciliation, "open_calls", timed(reconciliation.open_calls, totals, "select")
            ),
            mock.patch.object(reconciliation, "record", timed(record, totals, "record")),
        ):
            fake_before = cpu_of(fake_pid)
            cpu_before, start = time.process_time(), time.perf_counter()
            settled = reconcile(sessions, client, rules, now=utcnow())
            totals["seconds"] = time.perf_counter() - start
            totals["cpu"] = time.process_time() - cpu_before
            totals["fake_cpu"] = cpu_of(fake_pid) - fake_before
            second = reconcile(sessions, client, rules, now=utcnow())
    finally:
        engine.dispose()
    return settled, recorder, totals, second


def replay(env: dict[str, str], fake_pid: int, recorder: Recorder) -> tuple[float, float, float]:
    """Make the same log requests with a fresh InfobipClient alone; return wall, CPU, fake CPU.

    The fake counts requests over the last minute, as Infobip does: when the reconciliation
    and the replay together would pass its limit, the replay waits for that minute to end.
    """
    if 2 * len(recorder.calls) > LOGS_REQUESTS_PER_MINUTE:
        time.sleep(max(0.0, recorder.last + 61 - time.monotonic()))
    with InfobipClient(**client_arguments(env)) as client:
        fake_before = cpu_of(fake_pid)
        cpu_before, start = time.process_time(), time.perf_counter()
        for arguments in recorder.calls:
            client.logs(**arguments)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
    return seconds, cpu, cpu_of(fake_pid) - fake_before


def run_once(run: int, args: argparse.Namespace, workdir: Path) -> Sample:
    """Launch N calls on a fresh database and fake, then reconcile them; return the figures."""
    body = workdir / "body.json"
    write_body(body, args.calls, f"bench-reconcile-{os.getpid()}-{run}", random.Random(run))
    with (
        fresh_database(args.database, workdir) as database_url,
        simulator(workdir) as (simulator_url, fake_pid),
    ):
        env = launch_env(database_url, simulator_url, workdir)
        env.update(IVR_RECONCILE_AFTER="0", IVR_BATCH_SIZE="1000")
        measure([str(IVRDESK), "db", "upgrade"], env, workdir)
        launch = measure([str(IVRDESK), "launch", str(body)], env, workdir)
        counts = count_calls(database_url)
        if counts["accepted"] != args.calls:
            raise RuntimeError(f"launch: {counts['accepted']} of {args.calls} calls accepted")
        wait_until_due(simulator_url, args.calls)
        rules = rules_of(load_settings(env))
        settled, recorder, totals, second = run_reconcile(env, fake_pid, rules)
        final = count_calls(database_url)["final"]
        baseline, baseline_cpu, baseline_fake_cpu = replay(env, fake_pid, recorder)
    windows = [size for call, size in zip(recorder.calls, recorder.sizes, strict=True)
               if call.get("sent_since") is not None]  # fmt: skip
    sample = Sample(
        seconds=totals["seconds"],
        cpu=totals["cpu"],
        select=totals["select"],
        lookups=recorder.seconds,
        record=totals["record"],
        fake_cpu=totals["fake_cpu"],
        baseline=baseline,
        baseline_cpu=baseline_cpu,
        baseline_fake_cpu=baseline_fake_cpu,
        settled=settled,
        windows=len(windows),
        by_id=len(recorder.calls) - len(windows),
        cut_short=sum(size >= LOGS_MAX_LIMIT for size in windows),
        second=second,
    )
    verdict = (
        "ok"
        if settled.looked_up == settled.final == final == args.calls and second.looked_up == 0
        else "MISMATCH"
    )
    print(
        f"  run {run + 1}: launch {launch.seconds:.1f} s; reconcile {sample.seconds:.2f} s "
        f"(CPU {sample.cpu:.2f} s), {settled.requests} log requests ({sample.windows} windows, "
        f"{sample.cut_short} cut short at {LOGS_MAX_LIMIT}; {sample.by_id} by messageId); "
        f"{final} calls final in the database; second run looked up {second.looked_up}: "
        f"{verdict}",
        flush=True,
    )
    print(f"    {settled.line()}", flush=True)
    if verdict != "ok":
        raise RuntimeError(f"expected {args.calls} calls looked up and final, then none")
    return sample


def report(args: argparse.Namespace, samples: list[Sample]) -> None:
    """Print the medians, the split and the ratio against the baseline."""

    def mid(figure: Callable[[Sample], float]) -> float:
        return statistics.median(figure(sample) for sample in samples)

    seconds, baseline = mid(lambda s: s.seconds), mid(lambda s: s.baseline)
    print(f"\nivrdesk reconcile of {args.calls} calls, {args.database}, "
          f"median of {len(samples)} run(s)")  # fmt: skip
    print(f"calls looked up        {mid(lambda s: s.settled.looked_up):>10.0f}")
    print(f"final statuses recorded{mid(lambda s: s.settled.final):>10.0f}")
    print(f"log requests made      {mid(lambda s: s.settled.requests):>10.0f}"
          f"  ({mid(lambda s: s.windows):.0f} by time window, "
          f"{mid(lambda s: s.by_id):.0f} by messageId)")  # fmt: skip
    print(f"second run looked up   {max(s.second.looked_up for s in samples):>10}")
    print(f"{'what':<34}{'seconds':>9}{'CPU s':>8}{'fake CPU s':>12}")
    rows = (
        ("reconcile", seconds, mid(lambda s: s.cpu), mid(lambda s: s.fake_cpu)),
        ("  selecting open calls", mid(lambda s: s.select), None, None),
        ("  log requests (InfobipClient)", mid(lambda s: s.lookups), None, None),
        ("  recording", mid(lambda s: s.record), None, None),
        ("  the rest (settle, commit)", mid(lambda s: s.seconds - s.select - s.lookups - s.record),
         None, None),
        ("baseline: same requests, no DB", baseline, mid(lambda s: s.baseline_cpu),
         mid(lambda s: s.baseline_fake_cpu)),
    )  # fmt: skip
    for label, wall, cpu, fake in rows:
        cpu_text = f"{cpu:>8.2f}" if cpu is not None else f"{'':>8}"
        fake_text = f"{fake:>12.2f}" if fake is not None else ""
        print(f"{label:<34}{wall:>9.2f}{cpu_text}{fake_text}")
    ratios = statistics.median(s.seconds / s.baseline for s in samples)
    print(f"ratio reconcile / baseline: x{ratios:.2f} (median of the runs' ratios)")


def main() -> int:
    """Run the benchmark and print its figures."""
    args = parse_args()
    if not IVRDESK.exists():
        print(f"error: no {IVRDESK}: run `make` first, and this script with .venv/bin/python")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="ivrdesk-bench-reconcile-"))
    samples: list[Sample] = []
    try:
        for run in range(args.repeat):
            samples.append(run_once(run, args, workdir))
    except (RuntimeError, OSError, httpx.HTTPError, ProviderError, SQLAlchemyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(args, samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
