"""The dispatcher and resubmission: each batch sent once, nobody called twice."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from app.db import utcnow
from app.launch.campaigns import create_campaign, fingerprint, prepare_resubmission
from app.launch.dispatch import Duty, dispatch_once, run_dispatcher
from app.launch.request import parse_launch
from app.launch.submission import submit_campaign
from app.models import Batch, Call, CallEvent
from app.simulator.server import Faults, Simulator
from tests.conftest import NOTIFY_TOKEN, db, state
from tests.launch.test_launch import flat_body


def store(app: Flask, body: dict[str, Any], *, asynchronous: bool) -> int:
    """Store a campaign as the launch endpoint does, without sending it."""
    settings = state(app).settings
    with db(app) as session:
        created = create_campaign(
            session,
            parse_launch(body, now=utcnow()),
            digest=fingerprint(body),
            batch_size=settings.batch_size,
            asynchronous=asynchronous,
            now=utcnow(),
        )
        session.commit()
        return created.campaign.id


def submit_states(app: Flask) -> dict[str, int]:
    with db(app) as session:
        rows = session.execute(select(Call.submit_state, func.count()).group_by(Call.submit_state))
        return {s: n for s, n in rows}


def numbers(count: int) -> list[str]:
    return [f"4179302{n:04d}" for n in range(count)]


def test_dispatch_leaves_a_fresh_synchronous_launch_to_its_worker(
    app: Flask, simulator: Simulator
) -> None:
    store(app, flat_body(*numbers(2)), asynchronous=False)
    assert dispatch_once(state(app).submitter("dispatch")) == 0
    assert simulator.launch_count == 0
    with db(app) as session:  # the worker died: after the grace period the dispatcher sends it
        session.execute(update(Batch).values(not_before=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert dispatch_once(state(app).submitter("dispatch")) == 1
    assert submit_states(app) == {"accepted": 2}


def test_dispatch_two_dispatchers_send_each_batch_once(
    app: Flask, settings: Any, make_app: Any, simulator: Simulator
) -> None:
    other_host = make_app(settings)
    store(app, flat_body(*numbers(40)), asynchronous=True)  # 14 batches of at most 3
    sent: list[int] = []
    start = threading.Barrier(2)

    def run(which: Flask, name: str) -> None:
        submitter = state(which).submitter(name)
        start.wait()
        sent.append(dispatch_once(submitter))

    threads = [
        threading.Thread(target=run, args=(app, "dispatch-a")),
        threading.Thread(target=run, args=(other_host, "dispatch-b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(sent) == 14
    assert simulator.launch_count == 14
    assert len(simulator.message_counts) == 40
    assert set(simulator.message_counts.values()) == {1}
    assert submit_states(app) == {"accepted": 40}
    with db(app) as session:
        assert set(session.scalars(select(Batch.state))) == {"done"}


def launch_answered_too_late(settings: Any, make_app: Any, simulator: Simulator) -> Flask:
    """Launch two calls that Infobip accepts only after ivrdesk stopped waiting (unknown)."""
    app: Flask = make_app(settings, infobip_timeout=0.5)
    campaign_id = store(app, flat_body(*numbers(2)), asynchronous=False)
    simulator.faults = Faults(mode="hang", hang_seconds=1.0)
    submit_campaign(state(app).submitter(), campaign_id)
    assert submit_states(app) == {"unknown": 2}
    deadline = time.monotonic() + 10
    while len(simulator.message_counts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the fake Infobip accepts the calls once its hang is over
    simulator.faults = Faults()
    return app


def test_resubmit_after_a_timeout_reuses_message_ids(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    app = launch_answered_too_late(settings, make_app, simulator)
    # Infobip did get the first request (it only answered late): the resubmission is
    # answered with status 23 for both calls, read as "already accepted".
    runner = app.test_cli_runner()
    result = runner.invoke(args=["campaigns", "resubmit", "flat-1"])
    assert result.exit_code == 0, result.output
    assert "2 call(s) queued again" in result.output
    assert submit_states(app) == {"accepted": 2}
    assert simulator.launch_count == 2
    assert set(simulator.message_counts.values()) == {1}
    with db(app) as session:
        calls = session.scalars(select(Call)).all()
        # Status 23 never becomes the current status: the calls wait for their reports.
        assert {c.status_id for c in calls} == {None}
        assert {c.status_final for c in calls} == {False}
        assert {c.outcome for c in calls} == {"pending"}
        last = session.scalars(
            select(CallEvent).where(CallEvent.source == "submit").order_by(CallEvent.id.desc())
        ).first()
        assert last is not None
        assert (last.submit_state, last.status_id, last.applied, last.reason) == (
            "accepted", 23, False, "already_accepted"
        )  # fmt: skip
        message_id = calls[0].message_id
    # A report that ended before the resubmission still gives the call its final status.
    ended = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    report = {
        "messageId": message_id,
        "voiceCall": {"endTime": ended},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
    }
    with app.test_client() as client:
        answer = client.post(f"/notify/ivr/{NOTIFY_TOKEN}", json={"results": [report]})
        assert answer.get_json()["applied"] == 1
        answer.close()
    with db(app) as session:
        settled = session.scalars(select(Call).where(Call.message_id == message_id)).one()
        assert (settled.status_id, settled.outcome) == (5, "answered_human")


def test_resubmit_sends_calls_left_queued_by_a_crash(app: Flask, simulator: Simulator) -> None:
    campaign_id = store(app, flat_body(*numbers(4)), asynchronous=False)
    with db(app) as session:  # a worker claimed one batch, then died before sending
        first = session.scalar(select(Batch.id).where(Batch.seq == 1))
        claimed = utcnow() - timedelta(hours=1)  # longer ago than the claim timeout
        session.execute(
            update(Batch).where(Batch.id == first).values(state="submitting", claimed_at=claimed)
        )
        session.execute(
            update(Call).where(Call.batch_id == first).values(submit_state="submitting")
        )
        session.commit()
    with db(app) as session:
        campaign = session.get_one(Call, 1).campaign
        assert campaign.id == campaign_id
        now = utcnow()
        requeued = prepare_resubmission(
            session, campaign, batch_size=3, now=now, claimed_before=now - timedelta(minutes=2)
        )
        session.commit()
    assert requeued == 3
    submit_campaign(state(app).submitter(), campaign_id)
    assert submit_states(app) == {"accepted": 4}
    assert set(simulator.message_counts.values()) == {1}
    again = app.test_cli_runner().invoke(args=["campaigns", "resubmit", "flat-1"])
    assert again.exit_code == 0
    assert "0 call(s) queued again; 0 batch(es) to send" in again.output
    assert simulator.launch_count == 2


def test_resubmit_during_a_live_claim_sends_nothing(app: Flask, simulator: Simulator) -> None:
    """A batch claimed within the claim timeout may have its request in flight: left alone."""
    store(app, flat_body(*numbers(2)), asynchronous=False)
    with db(app) as session:  # a worker has just claimed the batch and is sending it
        session.execute(update(Batch).values(state="submitting", claimed_at=utcnow()))
        session.execute(update(Call).values(submit_state="submitting"))
        session.commit()
    result = app.test_cli_runner().invoke(args=["campaigns", "resubmit", "flat-1"])
    assert "0 call(s) queued again; 0 batch(es) to send" in result.output
    assert "2 call(s) left alone" in result.output
    assert simulator.launch_count == 0
    assert submit_states(app) == {"submitting": 2}
    with db(app) as session:
        assert session.scalars(select(Batch.state)).all() == ["submitting"]


def test_resubmit_unknown_campaign_is_one_clear_line(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["campaigns", "resubmit", "nope"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no campaign has bulkId 'nope'"


def test_dispatch_command_sends_queued_batches_and_stops_on_sigterm(
    app: Flask, settings: Any, simulator: Simulator
) -> None:
    import signal
    import subprocess
    import sys
    from pathlib import Path

    store(app, flat_body(*numbers(5)), asynchronous=True)
    env = {
        "PATH": "",
        "IVR_ENV": "development",
        "IVR_DATABASE_URL": settings.database_url,
        "IVR_INSTANCE_PATH": str(settings.instance_path),
        "IVR_INFOBIP_BASE_URL": settings.infobip_base_url,
        "IVR_INFOBIP_API_KEY": settings.infobip_api_key,
        "IVR_PUBLIC_URL": settings.public_url,
        "IVR_NOTIFY_TOKENS": ",".join(settings.notify_tokens),
        "IVR_LOG_FORMAT": "text",
    }
    command = [str(Path(sys.executable).parent / "ivrdesk"), "dispatch", "--interval", "0.1"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while submit_states(app) != {"accepted": 5} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert submit_states(app) == {"accepted": 5}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "stopped" in output
    assert simulator.launch_count == 2


def test_a_long_duty_does_not_hold_up_the_batches(app: Flask, simulator: Simulator) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> None:  # a reconciliation of many calls, say
        started.set()
        release.wait(20)

    stop = threading.Event()
    worker = threading.Thread(
        target=run_dispatcher,
        args=(state(app).sessions, state(app).submitter("dispatch"), stop),
        kwargs={"interval": 0.02, "duties": [Duty("slow", 600, slow)]},
    )
    worker.start()
    try:
        assert started.wait(10)
        store(app, flat_body(*numbers(2)), asynchronous=True)  # queued while the duty runs
        deadline = time.monotonic() + 10
        while submit_states(app) != {"accepted": 2} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not release.is_set()
    finally:
        release.set()
        stop.set()
        worker.join(10)
    assert submit_states(app) == {"accepted": 2}
    assert not worker.is_alive()
