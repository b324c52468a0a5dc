"""Infobip's voice logs (GET /tts/3/logs): the fake serves them, the client reads them.

Real HTTP on loopback: the client of app/infobip/client.py against the fake Infobip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from app.infobip.client import InfobipClient, Pace, ProviderError
from app.simulator.server import ReportPlan, Simulator, SimulatorServer
from tests.conftest import SIM_KEY


def body(bulk_id: str, *message_ids: str) -> dict[str, Any]:
    destinations = [
        {"to": f"3859100{n:05d}", "messageId": message_id}
        for n, message_id in enumerate(message_ids)
    ]
    return {"bulkId": bulk_id, "messages": [{"scenarioId": "S1", "destinations": destinations}]}


@pytest.fixture
def client(sim_server: SimulatorServer) -> Iterator[InfobipClient]:
    with InfobipClient(base_url=sim_server.url, api_key=SIM_KEY, backoff=0.01) as made:
        yield made


def wait_for_finals(client: InfobipClient, message_ids: list[str]) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while True:
        groups = {e.message_id: e.status["groupId"] for e in client.logs(message_ids=message_ids)}  # type: ignore[index]
        if set(groups.values()) <= {2, 3, 4} or time.monotonic() > deadline:
            return groups
        time.sleep(0.05)


def test_logs_list_every_accepted_call_with_its_current_status(
    simulator: Simulator, client: InfobipClient
) -> None:
    simulator.plan = ReportPlan(delay=30, enabled=False, seed=7)
    client.launch(body("bulk-a", "a1", "a2", "a3"))
    client.launch(body("bulk-b", "b1"))
    pending = client.logs(bulk_id="bulk-a")
    assert [e.message_id for e in pending] == ["a1", "a2", "a3"]
    assert {e.status["name"] for e in pending} == {"PENDING_ACCEPTED"}  # type: ignore[index]
    assert {e.bulk_id for e in pending} == {"bulk-a"}
    assert [e.message_id for e in client.logs(message_ids=["a2", "b1"])] == ["a2", "b1"]
    assert len(client.logs(limit=2)) == 2
    assert client.logs(sent_since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert len(client.logs(sent_until=datetime.now(UTC) + timedelta(minutes=1))) == 4
    assert client.logs(general_status="DELIVERED") == []


def test_logs_take_the_final_status_even_when_the_report_is_never_posted(
    simulator: Simulator, client: InfobipClient
) -> None:
    simulator.plan = ReportPlan(delay=0.05, enabled=False, seed=3)
    ids = [f"m{n}" for n in range(6)]
    client.launch(body("bulk-final", *ids))
    groups = wait_for_finals(client, ids)
    assert set(groups) == set(ids)
    assert set(groups.values()) <= {2, 3, 4}
    entry = client.logs(message_ids=["m0"])[0]
    assert entry.raw["doneAt"] is not None
    assert entry.error is not None


def test_logs_refuse_a_limit_above_1000(sim_server: SimulatorServer) -> None:
    answer = httpx.get(
        f"{sim_server.url}/tts/3/logs", params={"limit": 1001},
        headers={"Authorization": f"App {SIM_KEY}"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert "limit" in answer.json()["requestError"]["serviceException"]["validationErrors"]
    assert httpx.get(f"{sim_server.url}/tts/3/logs").status_code == 401


def test_logs_answer_429_past_120_requests_a_minute_and_the_client_gives_up_cleanly(
    sim_server: SimulatorServer, client: InfobipClient
) -> None:
    headers = {"Authorization": f"App {SIM_KEY}"}
    with httpx.Client(base_url=sim_server.url, headers=headers) as raw:
        statuses = [raw.get("/tts/3/logs").status_code for _ in range(121)]
    assert statuses[:120] == [200] * 120
    assert statuses[120] == 429
    with pytest.raises(ProviderError) as caught:
        client.logs()
    assert caught.value.status_code == 429


def test_client_paces_its_log_requests(sim_server: SimulatorServer) -> None:
    pace = Pace(2, window=0.4)
    with InfobipClient(base_url=sim_server.url, api_key=SIM_KEY, logs_pace=pace) as client:
        started = time.monotonic()
        for _ in range(3):
            client.logs()
        assert time.monotonic() - started >= 0.4  # the third waited for the window


def test_dropped_reports_are_never_posted_but_the_logs_know_the_final_status(
    sim_server: SimulatorServer, simulator: Simulator, client: InfobipClient
) -> None:
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    sink = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        simulator.plan = ReportPlan(delay=0.05, drop_rate=0.3, seed=11)
        ids = [f"d{n}" for n in range(40)]
        launch = body("bulk-drop", *ids)
        launch["messages"][0]["notifyUrl"] = f"http://127.0.0.1:{sink.server_port}/notify"
        client.launch(launch)
        groups = wait_for_finals(client, ids)
        assert set(groups.values()) <= {2, 3, 4}
        assert simulator.wait_idle(10)
        dropped = simulator.state()["reports_dropped"]
        assert 0 < dropped < 40
        assert simulator.reports_posted == 40 - dropped
        assert simulator.state()["pullable_reports"] == 0  # lost, not kept for pulling
    finally:
        sink.shutdown()
        sink.server_close()
