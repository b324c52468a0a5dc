"""Soak: --minutes of mixed launches, reports and lookups; errors and lost reports (target 0, 0).

Run: .venv/bin/python bench/soak.py [--minutes 10] [--database-url URL] [--keep]

ivrdesk runs under gunicorn with deploy/gunicorn.conf.py (2 workers x 4 threads) on a
fresh, migrated PostgreSQL database, with a dispatcher (`ivrdesk dispatch`) and the fake
Infobip (app.simulator.server, served by bench/soak_simulator.py), which posts every accepted
call's reports back, in JSON or XML, in phases with duplicates, reordering and batching.
The load generator (bench/soak_load.py, one process per role, beside the server) launches
campaigns (synchronous and asynchronous, some posted twice, some with a report sent before
the launch, which is parked until the calls exist), posts extra copies of reports
already sent (as they were, as XML, bundled, for unknown calls) and looks things up through
the API and the admin pages. Afterwards the reports still due are drained and
bench/soak_verify.py checks the database against everything that was sent. The baseline,
measured in the same run, is the second minute of load (the first warms up): each group's
median latency in the last minute is divided by its median then, as the client saw it and
as gunicorn's access log timed it. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from soak_load import Target
from soak_report import print_report
from soak_roles import run_role
from soak_verify import Findings, Sent, check_calls, check_reports, table_sizes
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BIN = Path(sys.executable).parent
API_KEY = "soak-api-key"
NOTIFY_TOKEN = f"soak-notify-{secrets.token_hex(8)}"
# The fake Infobip's report plan, changed every PHASE_SECONDS (POST /_simulator/plan).
PHASES = (
    {"batch_size": 1, "duplicate_rate": 0.05, "reorder": False},
    {"batch_size": 1, "duplicate_rate": 0.2, "reorder": True},
    {"batch_size": 20, "duplicate_rate": 0.1, "reorder": True},
)
PHASE_SECONDS = 30
ROLE_THREADS = {"launch": 2, "report": 1, "lookup": 3, "probe": 1}


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load")
    parser.add_argument(
        "--database-url", help="an empty PostgreSQL database (default: a fresh one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds before reports are sent")
    return parser.parse_args()


class Stack:
    """The processes of one soak: started in order, stopped in reverse, logs in one directory."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        """Remember where logs go and the environment of the ivrdesk commands."""
        self.workdir, self.env = workdir, env
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, stdin: str | None = None, **env: str) -> str:
        """Run an ivrdesk command to completion (env: variables it takes on); return its output."""
        done = subprocess.run([str(BIN / "ivrdesk"), *args], env={**self.env, **env}, cwd=ROOT,
                              input=stdin, capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"ivrdesk {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Start a long-running process in its own session; its output goes to NAME.log."""
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        log.close()
        self.processes.append(process)
        return process

    def stop(self) -> None:
        """Stop every process started, newest first (SIGTERM, then SIGKILL after 30 s)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def database(url: str | None, keep: bool) -> Iterator[str]:
    """Yield the given database URL, or a fresh database's (dropped afterwards unless kept)."""
    if url is not None:
        yield url
        return
    name = f"ivrdesk_soak_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def worker_rss(master: int) -> tuple[set[int], int]:
    """Return the gunicorn workers' pids and their total resident memory in kB."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return set(), 0
    pids, total = set(), 0
    for pid in map(int, children):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"VmRSS:\s+(\d+)", status)
            total += int(match.group(1)) if match else 0
            pids.add(pid)
    return pids, total


def run_load(
    target: Target, seconds: float, simulator: str, master: int, delay: float
) -> dict[str, Any]:
    """Run every role for `seconds`, switching the report plan; return what the roles saw."""
    context = multiprocessing.get_context("fork")
    stop, queue = context.Event(), context.Queue()
    roles = [context.Process(target=run_role, args=(role, n, target, stop, queue), name=role)
             for role, n in ROLE_THREADS.items()]  # fmt: skip
    wall0 = time.time() - (time.monotonic() - target.t0)
    for process in roles:
        process.start()
    memory: list[tuple[float, int]] = []
    workers_seen: set[int] = set()
    phase = -1
    while (elapsed := time.monotonic() - target.t0) < seconds:
        if int(elapsed // PHASE_SECONDS) != phase:
            phase = int(elapsed // PHASE_SECONDS)
            plan = {**PHASES[phase % len(PHASES)], "delay": delay}
            httpx.post(f"{simulator}/_simulator/plan", json=plan, timeout=10).raise_for_status()
        pids, rss = worker_rss(master)
        workers_seen |= pids
        memory.append((elapsed, rss))
        if len(memory) % 12 == 0:
            state = httpx.get(f"{simulator}/_simulator/state", timeout=10).json()
            print(f"  {elapsed / 60:4.1f} min: {state['accepted']} calls accepted, "
                  f"{state['reports_posted']} reports posted ({state['reports_failed']} failed), "
                  f"workers {rss / 1024:.0f} MB, load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        time.sleep(min(5.0, max(0.0, seconds - elapsed)))
    stop.set()
    outcome: dict[str, dict[str, Any]] = {}
    for _ in roles:
        result = queue.get(timeout=180)
        outcome[result["role"]] = result
    for process in roles:
        process.join(30)
    return {"memory": memory, "workers_seen": len(workers_seen), "roles": outcome,
            "wall0": wall0, "load_seconds": time.monotonic() - target.t0}  # fmt: skip


def drain(url_sql: str, simulator: str, stack: Stack) -> dict[str, Any]:
    """Wait until every call is submitted and every report posted; reconcile what failed to post.

    A report whose POST failed is lost, as with Infobip (its logs still show the call's
    final status): one `ivrdesk reconcile` at the end fills it in.
    """
    engine = create_engine(url_sql)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 300:
            with engine.connect() as connection:
                waiting = connection.execute(text(
                    "SELECT count(*) FROM calls WHERE submit_state IN ('queued', 'submitting')"
                )).scalar_one()  # fmt: skip
            due = httpx.get(f"{simulator}/_simulator/state", timeout=10).json()["pending_reports"]
            if waiting == 0 and due == 0:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    state: dict[str, Any] = httpx.get(f"{simulator}/_simulator/state", timeout=10).json()
    state["drain_seconds"] = time.monotonic() - started
    state["calls_waiting"] = waiting
    state["reconcile"] = ""
    if state["reports_failed"]:
        state["reconcile"] = stack.run("reconcile", IVR_RECONCILE_AFTER="0").strip()
    return state


def read_ledger(simulator: str) -> list[dict[str, Any]]:
    """Fetch every report POST the fake Infobip made, a page at a time."""
    posts: list[dict[str, Any]] = []
    with httpx.Client(base_url=simulator, timeout=120) as client:
        while True:
            page = client.get("/_soak/sent", params={"since": len(posts), "limit": 5000}).json()
            posts.extend(page["items"])
            if not page["items"]:
                return posts


def scan_logs(workdir: Path) -> dict[str, Any]:
    """Count 5xx answers, errors with their tracebacks, and warnings in the server logs."""
    found: dict[str, Any] = {"5xx": 0, "errors": [], "warnings": collections.Counter(),
                             "access": []}  # fmt: skip
    for name in ("gunicorn", "dispatch", "simulator"):
        for line in (workdir / f"{name}.log").read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                if "Traceback" in line or "Error" in line:
                    found["errors"].append(f"{name}.log: {line}")
                continue
            if record.get("logger") == "gunicorn.access":
                found["5xx"] += str(record.get("status", "")).startswith("5")
                at = datetime.fromisoformat(record["timestamp"]).timestamp()
                found["access"].append((at, record.get("method"), record.get("path") or "",
                                        float(record.get("duration_ms") or 0)))  # fmt: skip
            elif record.get("level") in ("ERROR", "CRITICAL") or record.get("exc_info"):
                where = f"{name}.log {record.get('timestamp')}"
                found["errors"].append(f"{where} {record.get('message')}\n"
                                       f"{record.get('exc_info', '')}")  # fmt: skip
            elif record.get("level") == "WARNING":
                found["warnings"][f"{name}: {str(record.get('message'))[:70]}"] += 1
    return found


def main() -> int:
    """Run the soak and print its figures; return the exit status."""
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ivrdesk-soak-"))
    status = 1
    try:
        with database(args.database_url, args.keep) as url:
            status = soak(args, url, workdir)
            if args.keep:
                print(f"database kept: {url}")
    finally:
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def soak(args: argparse.Namespace, url: str, workdir: Path) -> int:
    """Start the stack on the database, run the load, drain, check and print."""
    port, sim_port = free_port(), free_port()
    base, simulator = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    env.update(IVR_ENV="development", IVR_DATABASE_URL=url, IVR_INFOBIP_BASE_URL=simulator,
               IVR_INFOBIP_API_KEY=API_KEY, IVR_PUBLIC_URL=base, IVR_NOTIFY_TOKENS=NOTIFY_TOKEN,
               IVR_SECRET_KEY=secrets.token_urlsafe(32), IVR_LOG_FORMAT="json",
               IVR_INSTANCE_PATH=str(workdir / "instance"), GUNICORN_BIND=f"127.0.0.1:{port}",
               GUNICORN_ACCESSLOG="-", PYTHONPATH=str(ROOT),
               # No reconciliation during the load: it would fill reports still on their
               # way, whose POST would then count as a duplicate. drain() runs one at the end.
               IVR_RECONCILE_INTERVAL="0")  # fmt: skip
    stack = Stack(workdir, env)
    try:
        stack.run("db", "upgrade")
        operator = stack.run("tokens", "create", "soak-operator", "--role", "operator")
        viewer = stack.run("tokens", "create", "soak-viewer", "--role", "viewer")
        password = secrets.token_urlsafe(12)
        stack.run("users", "create", "soak-admin", "--role", "viewer", stdin=password + "\n")
        sim = stack.start("simulator", [sys.executable, str(ROOT / "bench/soak_simulator.py"),
                                        "--port", str(sim_port), "--api-key", API_KEY,
                                        "--delay", str(args.delay)])  # fmt: skip
        wait_for(f"{simulator}/_simulator/state", sim, "the fake Infobip")
        gunicorn = stack.start("gunicorn", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                                            "wsgi:app"])  # fmt: skip
        wait_for(f"{base}/healthz", gunicorn, "gunicorn")
        stack.start("dispatch", [str(BIN / "ivrdesk"), "dispatch", "--interval", "0.5"])
        target = Target(base_url=base, simulator_url=simulator,
                        notify_path=f"/notify/ivr/{NOTIFY_TOKEN}",
                        operator_token=operator.strip().splitlines()[-1],
                        viewer_token=viewer.strip().splitlines()[-1],
                        admin_name="soak-admin", admin_password=password,
                        t0=time.monotonic(), seed=os.getpid())  # fmt: skip
        print(f"soak: {args.minutes:g} min of load on {base} (logs in {workdir})", flush=True)
        load = run_load(target, args.minutes * 60, simulator, gunicorn.pid, args.delay)
        print("  load stopped; draining the dispatcher and the fake Infobip", flush=True)
        state = drain(url, simulator, stack)
        ledger = read_ledger(simulator)
        launches = httpx.get(f"{simulator}/_soak/launches", timeout=60).json()
    finally:
        stack.stop()
    findings = verify(url, load, state, ledger, launches)
    return print_report(args, load, state, findings, scan_logs(workdir), table_sizes(url))


def verify(
    url: str, load: dict[str, Any], state: dict[str, Any], ledger: list[dict[str, Any]],
    launches: dict[str, Any],
) -> Findings:  # fmt: skip
    """Check the database against what the fake Infobip and the load generator sent."""
    sent = Sent()
    for post in ledger:
        sent.add(post["contentType"], post["body"].encode(), from_simulator=True)
    early = [
        post for campaign in load["roles"]["launch"]["collected"] for post in campaign["early"]
    ]
    for content_type, body in load["roles"]["report"]["collected"] + early:
        sent.add(content_type, body, from_simulator=False)
    findings = Findings()
    findings.count("report POSTs by the fake Infobip", len(ledger))
    findings.count("reports the fake Infobip could not post", state["reports_failed"], bad=True)
    findings.count("calls still queued or submitting after the drain", state["calls_waiting"],
                   bad=True)  # fmt: skip
    findings.count("reports still due at the fake Infobip", state["pending_reports"], bad=True)
    check_reports(url, sent, findings, complete=state["reports_failed"] == 0)
    check_calls(url, load["roles"]["launch"]["collected"], sent, launches, state["accepted"],
                findings)  # fmt: skip
    return findings


if __name__ == "__main__":
    sys.exit(main())
