"""Two ivrdesk hosts (gunicorn) behind one nginx upstream, sharing one PostgreSQL.

DESIGN.md "Scaling out": nothing may assume a single process. Launches (sync
and async, sent by a dispatcher per host) and shuffled, duplicated reports,
whose copies arrive at the same moment on both hosts, must leave exactly the
history and statuses of one careful sorted replay, and no call sent twice.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.db import make_engine, make_session_factory
from app.models import Call, CallEvent
from app.simulator.server import Simulator, SimulatorServer
from tests.deploy.test_proxy import NOTIFY, ivrdesk_env, make_operator_token
from tests.launch.test_launch import flat_body
from tests.nginx import Proxy, nginx, reserve_ports
from tests.reports.test_replay import make_reports, sorted_replay
from tests.servers import clean_environment, gunicorn

IVRDESK = Path(sys.executable).parent / "ivrdesk"
CAMPAIGNS = 8  # half of them asynchronous
NUMBERS_PER_CAMPAIGN = 7
COPIES = 3  # every report is posted this many times, the copies side by side


@contextmanager
def dispatcher(env: dict[str, str], scratch: Path) -> Iterator[Path]:
    """Run `ivrdesk dispatch` with a host's environment until the block ends; yield its log."""
    log = scratch / "dispatch.log"
    environment = clean_environment(env, 1, scratch)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(IVRDESK), "dispatch", "--interval", "0.1"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            # SIGTERM before its handler is installed would kill it: wait for its start.
            deadline = time.monotonic() + 30
            while b" started" not in log.read_bytes() and process.poll() is None:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield log
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    assert process.returncode == 0, log.read_text()


@contextmanager
def two_hosts(env: dict[str, str], tmp: Path) -> Iterator[tuple[Proxy, list[Path]]]:
    """Start two gunicorn hosts, each with its dispatcher, and nginx over both."""
    ports = reserve_ports()
    env = {**env, "IVR_PUBLIC_URL": f"https://127.0.0.1:{ports[1]}", "IVR_PROXY_HOPS": "1"}
    logs = [tmp / "host-a.log", tmp / "host-b.log"]
    with ExitStack() as stack:
        upstreams = []
        for number, log in enumerate(logs):
            scratch = tmp / f"dispatch-{number}"
            scratch.mkdir()
            upstreams.append(stack.enter_context(gunicorn(env, workers=2, log=log)))
            stack.enter_context(dispatcher(env, scratch))
        hosts = [url.removeprefix("http://") for url in upstreams]
        yield stack.enter_context(nginx(hosts, tmp / "nginx", ports)), logs


def launch_all(client: httpx.Client, token: str) -> list[str]:
    """Launch the campaigns concurrently through nginx; return every messageId."""

    def launch(number: int) -> list[str]:
        numbers = [f"4179303{number:02d}{n:02d}" for n in range(NUMBERS_PER_CAMPAIGN)]
        headers = {"Authorization": f"Bearer {token}"}
        if number % 2:
            headers["Prefer"] = "respond-async"
        body = flat_body(*numbers, bulk_id=f"scale-{number}")
        response = client.post("/api/v1/campaigns", json=body, headers=headers)
        assert response.status_code == (202 if number % 2 else 201), response.text
        return [message["messageId"] for message in response.json()["messages"]]

    with ThreadPoolExecutor(4) as pool:
        return [m for ids in pool.map(launch, range(CAMPAIGNS)) for m in ids]


def wait_until_accepted(database_url: str, expected: int) -> datetime:
    """Wait for the dispatchers to submit every queued batch; return the last submission."""
    engine = make_engine(database_url)
    query = select(func.count(), func.max(Call.status_occurred_at)).where(
        Call.submit_state == "accepted"
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with engine.connect() as connection:
                accepted, last = connection.execute(query).one()
            if accepted == expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        engine.dispose()
    assert accepted == expected
    return last


def deliveries(reports: list[dict[str, Any]], rng: random.Random) -> list[bytes]:
    """Shuffle the reports, cut them into POSTs of 1 or 3, and repeat each POST side by side."""
    shuffled = reports[:]
    rng.shuffle(shuffled)
    posts = []
    while shuffled:
        size = rng.choice([1, 1, 1, 3])
        chunk, shuffled = shuffled[:size], shuffled[size:]
        posts.extend([json.dumps({"results": chunk}).encode()] * COPIES)
    return posts


def test_two_hosts_share_one_database_exactly(
    postgres_url: str, sim_server: SimulatorServer, simulator: Simulator, tmp_path: Path
) -> None:
    rng = random.Random(20261201)
    token = make_operator_token(postgres_url)
    env = ivrdesk_env(postgres_url, sim_server, IVR_BATCH_SIZE="3")
    with two_hosts(env, tmp_path) as (proxy, logs):
        limits = httpx.Limits(max_keepalive_connections=0)  # new connections: any worker
        with httpx.Client(
            base_url=proxy.https_url, verify=proxy.tls(), timeout=30, limits=limits
        ) as client:
            message_ids = launch_all(client, token)
            submitted = wait_until_accepted(postgres_url, len(message_ids))
            reports = make_reports(message_ids, rng)
            posts = deliveries(reports, rng)
            headers = {"Content-Type": "application/json"}

            def post(body: bytes) -> int:
                return client.post(NOTIFY, content=body, headers=headers).status_code

            with ThreadPoolExecutor(COPIES * 2) as pool:
                statuses = collections.Counter(pool.map(post, posts))
    assert statuses == {200: len(posts)}
    for log in logs:  # nginx spread the work over both hosts
        assert "POST /notify/ivr/***" in log.read_text(), log

    engine = make_engine(postgres_url)
    try:
        with make_session_factory(engine)() as session:
            got = dict(session.execute(select(Call.message_id, Call.status_name)).all())
            events = collections.Counter(
                session.scalars(select(CallEvent.message_id).where(CallEvent.source == "report"))
            )
            duplicates = session.scalar(select(func.sum(CallEvent.duplicates)))
            submits = session.scalar(
                select(func.count()).select_from(CallEvent).where(CallEvent.source == "submit")
            )
    finally:
        engine.dispose()
    expected = sorted_replay(reports, submitted)
    distinct = collections.Counter(report["messageId"] for report in reports)
    assert events == distinct  # one event per distinct report, on every call
    assert duplicates == len(reports) * (COPIES - 1)  # every other copy counted
    for message_id in message_ids:
        assert got[message_id] == expected.get(message_id, "PENDING_ACCEPTED"), message_id

    sent = collections.Counter(
        destination["messageId"]
        for body in simulator.requests
        for message in body["messages"]
        for destination in message["destinations"]
    )
    assert sent == dict.fromkeys(message_ids, 1)  # nobody was called twice
    assert set(simulator.message_counts.values()) == {1}
    assert simulator.duplicates_rejected == 0
    assert submits == len(message_ids)
