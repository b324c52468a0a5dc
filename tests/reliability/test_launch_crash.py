"""A gunicorn worker killed (SIGKILL) while Infobip holds its launch request loses no call.

The fake Infobip blocks the launch's second batch request; the test kills every worker
of the gunicorn master (the one holding the request among them), then lets the fake
Infobip accept what it was sent, as the real one may have. Nothing is lost, a re-POST
sends nothing, and `ivrdesk campaigns resubmit` completes the campaign without anyone
being accepted (so called) twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory, utcnow
from app.launch.submission import claim_timeout
from app.models import Batch, Call
from app.simulator.server import Simulator, SimulatorServer
from tests.reliability.support import app_env, flat_launch, new_operator_token
from tests.servers import ROOT, clean_environment, gunicorn

IVRDESK = Path(sys.executable).parent / "ivrdesk"
NUMBERS = [f"4179302{n:04d}" for n in range(7)]  # three batches of 3, 3 and 1
_MASTER = re.compile(r"Listening at: http://127\.0\.0\.1:\d+ \((\d+)\)")


def children(pid: int) -> list[int]:
    """Return the ids of a process's children, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll a condition until it holds or the time is up."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def submit_states(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Return each call's submit state by its number."""
    with sessions() as session:
        return dict(session.execute(select(Call.to_number, Call.submit_state)).all())


def test_worker_killed_while_infobip_holds_the_launch(
    database_url: str, simulator: Simulator, sim_server: SimulatorServer, tmp_path: Path
) -> None:
    env = app_env(database_url, sim_server.url, IVR_BATCH_SIZE="3", IVR_INFOBIP_TIMEOUT="30")
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    token = new_operator_token(sessions)
    auth = {"Authorization": f"Bearer {token}"}
    body = flat_launch("crash", NUMBERS)
    holding, release = threading.Event(), threading.Event()

    def hold_second_batch(request: dict[str, Any]) -> None:
        if len(simulator.requests) == 2:
            holding.set()
            release.wait(30)

    simulator.on_launch = hold_second_batch
    log = tmp_path / "gunicorn.log"
    try:
        with gunicorn(env, workers=2, log=log) as url:
            seen: dict[str, Any] = {}

            def launch() -> None:
                try:
                    seen["response"] = httpx.post(
                        f"{url}/api/v1/campaigns", json=body, headers=auth, timeout=60
                    )
                except httpx.TransportError as exc:
                    seen["error"] = exc

            client = threading.Thread(target=launch)
            client.start()
            assert holding.wait(30), "the launch never reached its second batch"
            found = _MASTER.search(log.read_text())
            assert found is not None
            workers = children(int(found.group(1)))
            assert len(workers) == 2
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            client.join(30)
            assert "response" not in seen  # the client got no answer: its worker died
            assert isinstance(seen.get("error"), httpx.TransportError)

            # Infobip got the second batch after all and accepts it.
            release.set()
            assert wait_for(lambda: len(simulator.message_counts) == 6, 10)
            states = submit_states(sessions)
            assert sorted(states) == NUMBERS  # every call is still there
            assert [states[n] for n in NUMBERS[:3]] == ["accepted"] * 3
            assert {states[n] for n in NUMBERS[3:]} <= {"queued", "submitting", "unknown"}
            assert [states[n] for n in NUMBERS[3:]] == ["submitting"] * 3 + ["queued"]

            # The same launch again: the stored campaign, nothing sent.
            assert wait_for(lambda: len(children(int(found.group(1)))) == 2, 30)
            again = httpx.post(f"{url}/api/v1/campaigns", json=body, headers=auth, timeout=60)
            assert again.status_code == 200, again.text
            answered = {m["to"]: m["submitState"] for m in again.json()["messages"]}
            assert answered == states
            assert simulator.launch_count == 2

            def resubmit() -> str:
                done = subprocess.run(
                    [str(IVRDESK), "campaigns", "resubmit", "crash"],
                    cwd=ROOT,
                    env=clean_environment(env, 1, tmp_path),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                return done.stdout

            # Within the claim timeout the dead worker's batch may still be on its way:
            # only the batch never claimed is sent.
            first = resubmit()
            assert "0 call(s) queued again; 1 batch(es) to send" in first
            assert "3 call(s) left alone" in first
            with sessions() as session:  # the claim timeout passes
                session.execute(
                    update(Batch)
                    .where(Batch.state == "submitting")
                    .values(claimed_at=utcnow() - claim_timeout(30) - timedelta(seconds=1))
                )
                session.commit()
            assert "3 call(s) queued again; 1 batch(es) to send" in resubmit()
            assert submit_states(sessions) == dict.fromkeys(NUMBERS, "accepted")
            assert sorted(simulator.message_counts.values()) == [1] * len(NUMBERS)
            assert simulator.duplicates_rejected == 3  # the held batch, sent again
            assert simulator.launch_count == 4
    finally:
        release.set()
        engine.dispose()
