"""Reconciliation with Infobip's voice logs, against the fake Infobip over real HTTP.

DESIGN.md "Reconciliation with Infobip": lost reports filled, submissions in doubt
settled (accepted when Infobip has them, failed and resubmittable when it does not),
nothing recorded twice, nothing recorded when the logs cannot be read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.cli.dispatch import dispatcher_duties
from app.db import utcnow
from app.infobip.client import InfobipClient, LogEntry, Pace, ProviderError
from app.launch.campaigns import prepare_resubmission, send_batches
from app.launch.dispatch import dispatch_once, run_dispatcher
from app.launch.submission import queued_batches, submit_campaign
from app.models import Batch, Call, CallEvent, Campaign
from app.reports.logsearch import CLOCK_SKEW, Sending, split_window, sweep_windows
from app.reports.reconcile import Rules, reconcile, reconcile_round
from app.simulator.reports import format_time
from app.simulator.server import Faults, ReportPlan, Simulator, SimulatorServer
from tests.conftest import NOTIFY_TOKEN, SIM_KEY, LiveServer, db, state
from tests.launch.test_dispatch import launch_answered_too_late, numbers, store, submit_states
from tests.launch.test_launch import flat_body
from tests.web.test_ops import scrape

NOW_RULES = Rules(after=timedelta(0), claim_timeout=timedelta(minutes=2))


def run(app: Flask, rules: Rules = NOW_RULES, **kwargs: Any) -> Any:
    """Reconcile once with the app's own client."""
    app_state = state(app)
    return reconcile(app_state.sessions, app_state.client(), rules, now=utcnow(), **kwargs)


def event_count(app: Flask) -> int:
    with db(app) as session:
        return session.scalar(select(func.count()).select_from(CallEvent)) or 0


def truth(sim_server: SimulatorServer, message_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Ask the fake Infobip's logs, over HTTP, what became of each call."""
    found: dict[str, tuple[Any, ...]] = {}
    with httpx.Client(base_url=sim_server.url, headers={"Authorization": f"App {SIM_KEY}"}) as c:
        for start in range(0, len(message_ids), 100):
            params = [("limit", 1000)] + [
                ("messageId", m) for m in message_ids[start : start + 100]
            ]
            for entry in c.get("/tts/3/logs", params=params).json()["results"]:
                found[entry["messageId"]] = (
                    entry["status"]["id"], entry["error"]["id"], entry["doneAt"][:19]
                )  # fmt: skip
    return found


def recorded(app: Flask) -> dict[str, tuple[Any, ...]]:
    with db(app) as session:
        rows = session.execute(
            select(Call.message_id, Call.status_id, Call.error_id, Call.ended_at)
        ).all()
    return {
        row.message_id: (
            row.status_id,
            row.error_id,
            row.ended_at and f"{row.ended_at:%Y-%m-%dT%H:%M:%S}",
        )
        for row in rows
    }


def test_lost_reports_are_filled_with_the_statuses_infobip_has(
    http: httpx.Client, live: LiveServer, app: Flask, simulator: Simulator,
    sim_server: SimulatorServer,
) -> None:  # fmt: skip
    state(app).settings = replace(state(app).settings, public_url=live.url)
    simulator.plan = ReportPlan(delay=0.05, drop_rate=0.3, seed=5)
    assert http.post("/api/v1/campaigns", json=flat_body(*numbers(40))).status_code == 201
    assert simulator.wait_idle(30)
    dropped = simulator.state()["reports_dropped"]
    assert dropped >= 5  # 30 % of 40, give or take
    with db(app) as session:
        assert session.scalar(select(func.count()).where(~Call.status_final)) == dropped
    # Not yet IVR_RECONCILE_AFTER past their due time: their reports may still come.
    early = run(app, replace(NOW_RULES, after=timedelta(minutes=30)))
    assert (early.looked_up, early.requests) == (0, 0)
    settled = run(app)
    assert (settled.final, settled.accepted, settled.failed) == (dropped, 0, 0)
    assert settled.requests == 1  # the open calls asked for by messageId, in one request
    with db(app) as session:
        assert session.scalar(select(func.count()).where(~Call.status_final)) == 0
        sources = session.execute(
            select(CallEvent.source, func.count()).where(CallEvent.source != "submit")
            .group_by(CallEvent.source)
        ).all()  # fmt: skip
    assert dict(sources) == {"report": 40 - dropped, "reconcile": dropped}
    # Every call has the status Infobip has for it: as if no report had been lost.
    calls = recorded(app)
    assert calls == truth(sim_server, list(calls))
    # /metrics counts what the reconciliation recorded (it runs in the dispatcher).
    samples = scrape(live.url)
    assert samples[("ivrdesk_reconciled_events", (("kind", "final"),))] == dropped
    assert samples[("ivrdesk_reconciled_events", (("kind", "failed"),))] == 0
    # A second round finds nothing to settle and records nothing.
    before = event_count(app)
    again = run(app)
    assert (again.looked_up, again.final, again.requests) == (0, 0, 0)
    assert event_count(app) == before


def test_a_report_arriving_after_the_reconciliation_is_a_duplicate(
    live: LiveServer, app: Flask, simulator: Simulator, http: httpx.Client,
    sim_server: SimulatorServer,
) -> None:  # fmt: skip
    simulator.plan = ReportPlan(delay=0.05, enabled=False, seed=3)
    launched = http.post("/api/v1/campaigns", json=flat_body(*numbers(1))).json()
    message_id = launched["messages"][0]["messageId"]
    assert simulator.wait_idle(10)
    time.sleep(0.1)  # the report falls due: the logs show the final status
    assert run(app).final == 1
    # The report Infobip would have posted (same status, error and end) comes in late.
    with httpx.Client(base_url=sim_server.url, headers={"Authorization": f"App {SIM_KEY}"}) as c:
        (entry,) = c.get("/tts/3/logs", params={"messageId": message_id}).json()["results"]
    report = {
        "messageId": message_id, "status": entry["status"], "error": entry["error"],
        "voiceCall": {"endTime": entry["doneAt"], "duration": entry["duration"]},
    }  # fmt: skip
    answer = httpx.post(f"{live.url}/notify/ivr/{NOTIFY_TOKEN}", json={"results": [report]})
    assert answer.json()["duplicates"] == 1
    with db(app) as session:
        sources = session.scalars(select(CallEvent.source).where(CallEvent.source != "submit"))
        assert list(sources) == ["reconcile"]


def test_unknown_submission_that_infobip_accepted_becomes_accepted(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    app = launch_answered_too_late(settings, make_app, simulator)
    # Looked up at once (no waiting for unknown ones); the reports are not due yet.
    settled = run(app, replace(NOW_RULES, after=timedelta(hours=1)))
    assert (settled.accepted, settled.failed, settled.final) == (2, 0, 0)
    assert submit_states(app) == {"accepted": 2}
    with db(app) as session:
        events = session.scalars(select(CallEvent).where(CallEvent.source == "reconcile")).all()
        assert {(e.submit_state, e.applied, e.reason) for e in events} == {
            ("accepted", False, "in_infobip_logs")
        }
        assert set(session.scalars(select(Call.outcome))) == {"pending"}
    assert run(app, replace(NOW_RULES, after=timedelta(hours=1))).accepted == 0


def test_unknown_submission_infobip_never_had_fails_and_is_resubmitted_once(
    app: Flask, simulator: Simulator
) -> None:
    campaign_id = store(app, flat_body(*numbers(4)), asynchronous=False)
    simulator.faults = Faults(mode="drop", count=2)  # the connection drops before acceptance
    submit_campaign(state(app).submitter(), campaign_id)  # batch size 3: two requests
    assert submit_states(app) == {"unknown": 4}
    assert simulator.message_counts == {}
    # Not in the logs, but not yet long enough after it was due: left as it is.
    waiting = run(app, replace(NOW_RULES, after=timedelta(minutes=30)))
    assert (waiting.looked_up, waiting.failed, waiting.still_open) == (4, 0, 4)
    assert submit_states(app) == {"unknown": 4}
    settled = run(app)
    assert (settled.accepted, settled.failed) == (0, 4)
    assert submit_states(app) == {"failed": 4}
    with db(app) as session:
        reasons = set(session.scalars(select(Call.outcome)))
        assert reasons == {"not_sent"}
        events = session.scalars(select(CallEvent).where(CallEvent.source == "reconcile")).all()
        assert {(e.submit_state, e.reason) for e in events} == {("failed", "not_in_infobip_logs")}
    result = app.test_cli_runner().invoke(args=["campaigns", "resubmit", "flat-1"])
    assert result.exit_code == 0, result.output
    assert submit_states(app) == {"accepted": 4}
    assert set(simulator.message_counts.values()) == {1}  # each call sent to Infobip once
    with db(app) as session:
        assert session.scalar(select(func.count()).where(CallEvent.status_id == 23)) == 0


def test_stale_submitting_calls_are_settled_and_fresh_claims_left_alone(
    app: Flask, simulator: Simulator
) -> None:
    store(app, flat_body(*numbers(4)), asynchronous=True)  # two batches, none sent yet
    with db(app) as session:
        first, second = session.scalars(select(Batch.id).order_by(Batch.id)).all()
        long_ago = utcnow() - timedelta(hours=1)
        for batch_id, claimed in ((first, long_ago), (second, utcnow())):
            session.execute(
                update(Batch).where(Batch.id == batch_id)
                .values(state="submitting", claimed_at=claimed, claimed_by="a worker that died")
            )  # fmt: skip
            session.execute(
                update(Call).where(Call.batch_id == batch_id).values(submit_state="submitting")
            )
        session.commit()
    settled = run(app)
    assert (settled.looked_up, settled.failed) == (3, 3)  # batch size 3: the stale one's calls
    assert submit_states(app) == {"failed": 3, "submitting": 1}
    with db(app) as session:
        batches = dict(session.execute(select(Batch.id, Batch.state)).all())
    assert batches == {first: "done", second: "submitting"}


def test_a_big_bulk_is_swept_by_time_windows(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    app = make_app(settings, batch_size=300)
    simulator.plan = ReportPlan(delay=0.05, enabled=False)
    store(app, flat_body(*numbers(1200)), asynchronous=True)
    with db(app) as session:  # due now
        session.execute(update(Batch).values(not_before=utcnow()))
        session.commit()
    assert dispatch_once(state(app).submitter("dispatch")) == 4
    assert simulator.wait_idle(20)
    time.sleep(0.1)
    settled = run(app)
    # Batches of 300, sent one after the other: windows of 900 and 300 calls, one
    # request each found them all, and none was asked for by messageId.
    assert (settled.looked_up, settled.final, settled.requests) == (1200, 1200, 2)
    with db(app) as session:
        assert session.scalar(select(func.count()).where(~Call.status_final)) == 0


def test_batches_sent_in_parallel_are_found_by_splitting_full_windows(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    app = make_app(settings, batch_size=400)
    simulator.plan = ReportPlan(delay=0.05, enabled=False)
    campaign_id = store(app, flat_body(*numbers(2400)), asynchronous=True)
    with db(app) as session:
        batch_ids = queued_batches(session, campaign_id)
    # Six batches in flight at once: claimed together, dated by Infobip in any order.
    send_batches(state(app).submitter("cli"), batch_ids, parallel=6)
    assert simulator.wait_idle(20)
    time.sleep(0.1)
    settled = run(app)
    assert (settled.looked_up, settled.final) == (2400, 2400)
    # Asking for every call by messageId would take 24 requests; splitting the windows
    # whose answers reached 1000 entries at the times Infobip gave takes fewer.
    assert settled.requests < 24
    with db(app) as session:
        assert session.scalar(select(func.count()).where(~Call.status_final)) == 0


def test_a_full_window_is_split_around_the_times_infobip_gave() -> None:
    start = datetime(2026, 12, 6, 10, tzinfo=UTC)
    tick = timedelta(milliseconds=1)

    def entries(*offsets: int) -> list[LogEntry]:
        return [
            LogEntry(f"m{n}", "b", None, None, {"sentAt": format_time(start + tick * offset)})
            for n, offset in enumerate(offsets)
        ]

    end = start + timedelta(seconds=1)
    # Oldest first (as the fake Infobip answers): the rest of the window, from the last
    # moment returned on (entries at that moment may have been cut short).
    assert split_window(start, end, entries(0, 0, 5, 9)) == [(start + 9 * tick, end)]
    # Newest first: the window up to the oldest moment returned.
    assert split_window(start, end, entries(9, 5, 0, 0)) == [(start, start)]
    assert split_window(start, end, entries(9, 5, 2)) == [(start, start + 2 * tick)]
    # In no order: cut at the median; one at the first moment moves to the next one,
    # so that both halves shrink.
    assert split_window(start, end, entries(5, 0, 9, 0)) == [
        (start, start + 4 * tick),
        (start + 5 * tick, end),
    ]
    assert split_window(start, end, entries(7, 0, 0, 0, 3)) == [
        (start, start + 2 * tick),
        (start + 3 * tick, end),
    ]
    # One moment only: the window around it (what Infobip holds then goes by messageId).
    assert split_window(start, end, entries(3, 3)) == [
        (start, start + 2 * tick),
        (start + 4 * tick, end),
    ]


def test_sweep_windows_hold_at_most_a_request_of_calls() -> None:
    start = datetime(2026, 12, 6, 10, tzinfo=UTC)
    second = timedelta(seconds=1)
    # Five batches of 400, claimed a second apart, answered (in Infobip's logs) in a
    # different order: windows end where the answers came, after two batches each.
    answers = [3, 1, 4, 2, 6]
    sendings = [Sending(start + n * second, start + a * second, 400) for n, a in enumerate(answers)]
    sendings.append(Sending(start + 5 * second, None, 400))  # in doubt: its claim counts
    now = start + timedelta(minutes=10)
    assert sweep_windows(sendings, now=now) == [
        (start - CLOCK_SKEW, start + 2 * second),
        (start + 2 * second, start + 4 * second),
        (start + 4 * second, now),
    ]
    old = sweep_windows([Sending(now - timedelta(hours=50), None, 10)], now=now)
    assert old[0][0] > now - timedelta(hours=48)  # never before Infobip's 48 hours


def test_logs_unavailable_records_nothing(
    app: Flask, simulator: Simulator, sim_server: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    simulator.plan = ReportPlan(delay=0.01, enabled=False)
    store(app, flat_body(*numbers(3)), asynchronous=False)
    with db(app) as session:
        campaign_id = session.scalar(select(Batch.campaign_id))
    assert campaign_id is not None
    submit_campaign(state(app).submitter(), campaign_id)
    assert simulator.wait_idle(10)
    before = event_count(app)
    # Nothing listens: the round stops, one warning, nothing recorded.
    closed = InfobipClient(base_url="http://127.0.0.1:9", api_key=SIM_KEY, connect_timeout=1)
    with caplog.at_level(logging.WARNING):
        assert reconcile_round(state(app).sessions, closed, NOW_RULES) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "nothing recorded" in warnings[0].getMessage()
    # 429 past Infobip's 120 requests a minute, still after the client's retries.
    with httpx.Client(base_url=sim_server.url, headers={"Authorization": f"App {SIM_KEY}"}) as c:
        while c.get("/tts/3/logs", params={"limit": 1}).status_code != 429:
            pass
    throttled = InfobipClient(base_url=sim_server.url, api_key=SIM_KEY, backoff=0.01)
    with pytest.raises(ProviderError, match="429"):
        reconcile(state(app).sessions, throttled, NOW_RULES, now=utcnow())
    assert event_count(app) == before
    assert submit_states(app) == {"accepted": 3}
    closed.close()
    throttled.close()


def test_reconcile_command_and_dispatcher_duty(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    app = make_app(settings, reconcile_after_minutes=0.0)
    simulator.plan = ReportPlan(delay=0.01, enabled=False)
    store(app, flat_body(*numbers(2)), asynchronous=False)
    store(app, flat_body(*numbers(1), bulk_id="other"), asynchronous=False)
    with db(app) as session:
        campaign_ids = session.scalars(select(Batch.campaign_id).distinct()).all()
    for campaign_id in campaign_ids:
        submit_campaign(state(app).submitter(), campaign_id)
    assert simulator.wait_idle(10)
    time.sleep(0.05)
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["reconcile", "--bulk", "nope"])
    assert unknown.exit_code != 0
    assert "no campaign has bulkId nope" in unknown.output
    too_far = runner.invoke(args=["reconcile", "--since", "49"])
    assert too_far.exit_code != 0
    result = runner.invoke(args=["reconcile", "--bulk", "flat-1", "--since", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == (
        "looked up 2 call(s) in Infobip's logs (1 request(s)): 0 accepted, "
        "0 failed (not in Infobip's logs), 2 final status(es) recorded, 0 still open"
    )
    # The dispatcher's duty settles the other bulk, on its first pass.
    app_state = state(app)
    duties = dispatcher_duties(app_state)  # what `ivrdesk dispatch` runs
    assert [duty.name for duty in duties] == ["reconcile"]
    stop = threading.Event()
    worker = threading.Thread(
        target=run_dispatcher, args=(app_state.sessions, None, stop),
        kwargs={"interval": 0.05, "duties": duties},
    )  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db(app) as session:
            if session.scalar(select(func.count()).where(~Call.status_final)) == 0:
                break
        time.sleep(0.05)
    stop.set()
    worker.join(5)
    with db(app) as session:
        assert session.scalar(select(func.count()).where(~Call.status_final)) == 0
    again = runner.invoke(args=["reconcile"])
    assert "looked up 0 call(s)" in again.output


def test_a_call_resubmitted_during_the_lookups_keeps_its_new_submission(
    app: Flask, simulator: Simulator, sim_server: SimulatorServer
) -> None:
    campaign_id = store(app, flat_body(*numbers(2)), asynchronous=False)
    simulator.faults = Faults(mode="drop", count=1)
    submit_campaign(state(app).submitter(), campaign_id)
    assert submit_states(app) == {"unknown": 2}

    def operator_resubmits() -> float:
        """An operator queues the calls again while the first logs request is on its way."""
        if submit_states(app) == {"unknown": 2}:
            with db(app) as session:
                campaign = session.get_one(Campaign, campaign_id)
                now = utcnow()
                prepare_resubmission(session, campaign, batch_size=3, now=now, claimed_before=now)
                session.commit()
        return time.monotonic()

    client = InfobipClient(
        base_url=sim_server.url, api_key=SIM_KEY, logs_pace=Pace(120, clock=operator_resubmits)
    )
    settled = reconcile(state(app).sessions, client, NOW_RULES, now=utcnow())
    client.close()
    assert (settled.failed, settled.still_open) == (0, 2)
    assert submit_states(app) == {"queued": 2}
    with db(app) as session:
        assert session.scalar(select(func.count()).where(CallEvent.source == "reconcile")) == 0
