"""Pull mode (IVR_REPORTS_MODE=pull) over real HTTP on both databases: no notifyUrl is sent,
reports are pulled from the fake Infobip, stored byte for byte, then recorded.

DESIGN.md "Reconciliation with Infobip", the "Pull mode" bullet; INFOBIP.md §6.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.cli.dispatch import dispatcher_duties
from app.config import Settings
from app.infobip.client import InfobipClient
from app.launch.dispatch import run_dispatcher
from app.models import Call, CallEvent, Campaign, InboundReport
from app.reports.pull import pull_duty
from app.simulator.server import ReportPlan, Simulator
from tests.conftest import PULL_MODE, SIM_KEY, db, state
from tests.reports.test_reports import sample

IN_PULL_MODE = pytest.mark.parametrize("reports_mode", ["pull"])
EMPTY = b'{"results":[]}'


def launch(http: httpx.Client, count: int) -> None:
    numbers = [f"4179302{n:04d}" for n in range(count)]
    response = http.post("/api/v1/campaigns", json={"scenarioId": "S", "to": numbers})
    assert response.status_code == 201, response.text


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def outcomes(app: Flask) -> dict[str, int]:
    with db(app) as session:
        return dict(
            session.execute(select(Call.outcome, func.count()).group_by(Call.outcome)).all()
        )  # type: ignore[arg-type]


def stored_bodies(app: Flask) -> list[bytes]:
    with db(app) as session:
        query = select(InboundReport.body).where(InboundReport.peer == "pull")
        return list(session.scalars(query.order_by(InboundReport.id)))


@IN_PULL_MODE
def test_pull_mode_launches_without_a_notify_url(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    settings = state(app).settings
    assert (settings.public_url, settings.notify_tokens) == (None, ())
    body = json.loads(sample("launch-request.json"))
    del body["messages"][0]["sendAt"]
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    [sent] = simulator.requests
    for message in sent["messages"]:
        assert "notifyUrl" not in message
        assert "notifyContentType" not in message
        assert message["callbackData"] == "patient-batch-17"
    with db(app) as session:  # the client's own notifyUrl is kept for its callbacks
        stored = session.scalars(select(Campaign.client_notify_urls)).one()
        assert stored == ["https://crm.example.org/hooks/ivr"]


@IN_PULL_MODE
def test_reports_pull_keeps_each_body_byte_for_byte_then_records_it(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.plan = ReportPlan(delay=0.01, mix={"no_answer": 1.0}, duplicate_rate=0.5, seed=5)
    launch(http, 7)
    assert all("notifyUrl" not in m for sent in simulator.requests for m in sent["messages"])
    assert simulator.wait_idle(10)
    assert wait_for(lambda: simulator.state()["pullable_reports"] >= 7)
    result = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert result.exit_code == 0, result.output
    assert "applied 7, notApplied 0" in result.output
    assert outcomes(app) == {"no_answer": 7}
    served = simulator.reports_served()
    assert served[-1] == EMPTY
    assert stored_bodies(app) == served[:-1]
    with db(app) as session:
        sources = session.scalars(select(CallEvent.source).where(CallEvent.source != "submit"))
        assert set(sources) == {"pull"}
    again = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert again.exit_code == 0, again.output
    assert "pulled 0 report(s): applied 0" in again.output
    assert stored_bodies(app) == served[:-1]


@IN_PULL_MODE
def test_dispatcher_pulls_every_interval_in_pull_mode(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.plan = ReportPlan(delay=0.01, mix={"busy": 1.0})
    launch(http, 4)
    app_state = state(app)
    duties = {duty.name: duty for duty in dispatcher_duties(app_state)}
    assert set(duties) == {"reconcile", "pull"}
    duty = duties["pull"]
    assert duty.every == app_state.settings.pull_interval
    stop = threading.Event()
    worker = threading.Thread(
        target=run_dispatcher,
        args=(app_state.sessions, app_state.submitter("dispatch"), stop),
        kwargs={"interval": 0.02, "duties": [replace(duty, every=0.05)]},
    )
    worker.start()
    try:
        assert wait_for(lambda: outcomes(app) == {"busy": 4})
    finally:
        stop.set()
        worker.join(10)
    assert stored_bodies(app) == [b for b in simulator.reports_served() if b != EMPTY]


def test_dispatcher_does_not_pull_in_push_mode(
    app: Flask, settings: Settings, make_app: Any
) -> None:
    assert [duty.name for duty in dispatcher_duties(state(app))] == ["reconcile"]
    quiet = make_app(settings, reconcile_interval=0.0)
    assert dispatcher_duties(state(quiet)) == []


@IN_PULL_MODE
def test_dispatcher_pull_with_infobip_unavailable_is_one_warning(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with InfobipClient(base_url="http://127.0.0.1:9", api_key=SIM_KEY) as nowhere:
        with caplog.at_level(logging.WARNING, logger="app.reports.pull"):
            summary = pull_duty(state(app).sessions, nowhere)
    assert summary.reports == 0
    [warning] = [r for r in caplog.records if r.name == "app.reports.pull"]
    assert warning.levelno == logging.WARNING
    assert "pulling stopped after 0 report(s): Infobip unavailable" in warning.getMessage()


def test_push_mode_report_whose_post_failed_is_not_pullable(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.plan = ReportPlan(delay=0.01)  # posted to ivrdesk's notifyUrl: nothing listens
    launch(http, 3)
    assert all("notifyUrl" in m for sent in simulator.requests for m in sent["messages"])
    assert simulator.wait_idle(10)
    assert simulator.reports_failed == 3
    result = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert result.exit_code == 0, result.output
    assert "pulled 0 report(s)" in result.output
    assert outcomes(app) == {"pending": 3}


class Garbled:
    """An Infobip stand-in whose GET /voice/1/reports answers a body no parser reads."""

    body = b'{"results": [{"messageId": '

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [self.body]


@pytest.fixture
def garbled() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, Garbled(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_unparsable_pulled_body_is_kept_and_stops_the_pull(
    settings: Any, make_app: Any, garbled: str
) -> None:
    app = make_app(settings, infobip_base_url=garbled, **PULL_MODE)
    result = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert result.exit_code == 1
    assert "pulled body 1 cannot be parsed" in result.output
    with db(app) as session:
        kept = session.scalars(select(InboundReport)).one()
        assert (kept.peer, kept.body, kept.items) == ("pull", Garbled.body, None)
        assert kept.parse_error
