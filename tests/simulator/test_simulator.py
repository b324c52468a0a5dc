"""Tests of the fake Infobip over real HTTP on loopback."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from lxml import etree
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.simulator.server import Faults, ReportPlan, Simulator, SimulatorServer, format_time

API_KEY = "test-key"
AUTH = {"Authorization": f"App {API_KEY}"}
XML = "application/xml"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
ROOT = Path(__file__).resolve().parents[2]


class _Quiet(WSGIRequestHandler):
    """Request handler without access log lines."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log line."""


class Receiver:
    """A notifyUrl endpoint that records every POST and answers with a settable status."""

    def __init__(self) -> None:
        """Start with nothing received and a 200 answer."""
        self.status = 200
        self.posts: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.url = ""

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        """Record the POST and answer."""
        request = Request(environ)
        with self.lock:
            self.posts.append((request.headers.get("Content-Type", ""), request.get_data()))
        return Response(status=self.status)(environ, start_response)

    def results(self) -> list[dict[str, Any]]:
        """Return every JSON result received, in arrival order."""
        with self.lock:
            return [item for _, body in self.posts for item in json.loads(body)["results"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Run a report receiver on loopback."""
    receiver = Receiver()
    server = make_server("127.0.0.1", 0, receiver.app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.port}/hooks/ivr"
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    """Run a simulator with short report delays on loopback."""
    simulator = Simulator(
        api_key=API_KEY, plan=ReportPlan(delay=0.05, seed=7), reject_prefixes=("999",)
    )
    with SimulatorServer(simulator) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """Give an HTTP client with a short timeout."""
    with httpx.Client(timeout=5.0) as client:
        yield client


def message(*numbers: str, **fields: Any) -> dict[str, Any]:
    """Build one launch message for the given destination numbers."""
    return {"scenarioId": "SCN-1", "destinations": [{"to": n} for n in numbers], **fields}


def launch(client: httpx.Client, server: SimulatorServer, body: Any, **kw: Any) -> httpx.Response:
    """POST a launch body to the simulator."""
    headers = kw.pop("headers", AUTH)
    return client.post(f"{server.url}/voice/ivr/1/messages", json=body, headers=headers, **kw)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll until condition() holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_format_time_matches_infobip() -> None:
    moment = datetime(2026, 4, 2, 7, 0, 41, 500_000, tzinfo=UTC)
    assert format_time(moment) == "2026-04-02T07:00:41.500+0000"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "App wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}]
)
def test_launch_refuses_bad_credentials(
    server: SimulatorServer, client: httpx.Client, headers: dict[str, str]
) -> None:
    answer = launch(client, server, {"messages": [message("41793026727")]}, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "requestError": {
            "serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
        }
    }
    assert server.simulator.launch_count == 1
    assert server.simulator.requests == []


def test_launch_accepts_basic_credentials(client: httpx.Client) -> None:
    simulator = Simulator(username="user", password="pass")
    with SimulatorServer(simulator) as server:
        body = {"messages": [message("41793026727")]}
        assert launch(client, server, body, headers={}, auth=("user", "pass")).status_code == 200
        assert launch(client, server, body, headers={}, auth=("user", "nope")).status_code == 401


@pytest.mark.parametrize(
    ("body", "path", "text"),
    [
        ({"messages": [message("")]}, "messages[0].destinations[0].to", "must not be blank"),
        ({"messages": [message("+41793026727")]}, "messages[0].destinations[0].to", None),
        ({"messages": [message("12")]}, "messages[0].destinations[0].to", None),
        ({"messages": [message()]}, "messages[0].destinations", "must not be empty"),
        ({"messages": [{"destinations": [{"to": "4179"}]}]}, "messages[0].scenarioId", None),
        ({"messages": [message("4179", **{"from": "12"})]}, "messages[0].from", None),
        (
            {"messages": [message("4179", **{"from": "InfoSMS"})]},
            "messages[0].from",
            "must be a numeric sender (digits only)",
        ),
        ({"messages": [message("4179", **{"from": "+41793026700"})]}, "messages[0].from", None),
        ({"messages": [message("4179", callbackData="x" * 201)]}, "messages[0].callbackData", None),
        (
            {"messages": [message("4179", notifyContentType="text/plain")]},
            "messages[0].notifyContentType",
            None,
        ),
        ({"messages": []}, "messages", "must not be empty"),
        ([], "body", None),
    ],
)
def test_launch_validation_answers_infobip_shape(
    server: SimulatorServer, client: httpx.Client, body: Any, path: str, text: str | None
) -> None:
    answer = launch(client, server, body)
    assert answer.status_code == 400
    exception = answer.json()["requestError"]["serviceException"]
    assert exception["messageId"] == "BAD_REQUEST"
    assert exception["text"] == "Bad request"
    assert path in exception["validationErrors"]
    if text is not None:
        assert exception["validationErrors"][path] == [text]
    assert server.simulator.message_counts == {}


def test_launch_refuses_more_than_20000_destinations(
    server: SimulatorServer, client: httpx.Client
) -> None:
    answer = launch(client, server, {"messages": [message(*["41793026727"] * 20_001)]})
    assert answer.status_code == 400
    errors = answer.json()["requestError"]["serviceException"]["validationErrors"]
    assert list(errors) == ["messages[0].destinations"]


def test_launch_accepts_and_counts(server: SimulatorServer, client: httpx.Client) -> None:
    seen: list[dict[str, Any]] = []
    server.simulator.on_launch = seen.append
    destinations = [{"to": "385981112233"}, {"to": "385917654321", "messageId": "chosen-2"}]
    body = {"bulkId": "bulk-1", "messages": [{"scenarioId": "S", "destinations": destinations}]}
    answer = launch(client, server, body)
    assert answer.status_code == 200
    payload = answer.json()
    assert payload["bulkId"] == "bulk-1"
    assert [entry["to"] for entry in payload["messages"]] == ["385981112233", "385917654321"]
    assert payload["messages"][1]["messageId"] == "chosen-2"
    for entry in payload["messages"]:
        assert entry["status"] == {
            "groupId": 1,
            "groupName": "PENDING",
            "id": 26,
            "name": "PENDING_ACCEPTED",
            "description": "Message accepted, pending for delivery.",
        }
    ids = [entry["messageId"] for entry in payload["messages"]]
    assert server.simulator.message_counts == {ids[0]: 1, "chosen-2": 1}
    assert server.simulator.requests == [body] == seen
    assert server.simulator.launch_count == 1


def test_launch_generates_bulk_id(server: SimulatorServer, client: httpx.Client) -> None:
    answer = launch(client, server, {"messages": [message("41793026727")]})
    assert answer.json()["bulkId"]


def test_launch_repeated_message_id_gets_status_23(
    server: SimulatorServer, client: httpx.Client
) -> None:
    dest = {"to": "41793026727", "messageId": "m-1"}
    body = {"messages": [{"scenarioId": "S", "destinations": [dest]}]}
    assert launch(client, server, body).json()["messages"][0]["status"]["id"] == 26
    again = launch(
        client, server, {"messages": [{"scenarioId": "S", "destinations": [dest, dest]}]}
    )
    statuses = [entry["status"] for entry in again.json()["messages"]]
    assert [(s["groupId"], s["id"], s["name"]) for s in statuses] == [
        (5, 23, "REJECTED_DUPLICATE_MESSAGE_ID")
    ] * 2
    assert server.simulator.message_counts == {"m-1": 1}
    state = client.get(f"{server.url}/_simulator/state").json()
    assert state["accepted"] == 1
    assert state["duplicates_rejected"] == 2


def test_launch_rejects_configured_prefixes(server: SimulatorServer, client: httpx.Client) -> None:
    answer = launch(client, server, {"messages": [message("9991234567", "41793026727")]})
    first, second = answer.json()["messages"]
    assert (first["status"]["groupId"], first["status"]["id"]) == (5, 52)
    assert first["status"]["name"] == "REJECTED_DESTINATION"
    assert second["status"]["id"] == 26
    assert list(server.simulator.message_counts) == [second["messageId"]]


@pytest.mark.parametrize(
    ("mode", "status", "key"),
    [("500", 500, "requestError"), ("401", 401, "requestError"), ("429", 429, "errorCode")],
)
def test_fault_answers_until_count_runs_out(
    server: SimulatorServer, client: httpx.Client, mode: str, status: int, key: str
) -> None:
    server.simulator.faults = Faults(mode=mode, count=2, retry_after=3)
    body = {"messages": [message("41793026727")]}
    for _ in range(2):
        answer = launch(client, server, body)
        assert answer.status_code == status
        assert key in answer.json()
        assert answer.headers.get("Retry-After") == ("3" if mode == "429" else None)
    assert launch(client, server, body).status_code == 200
    assert server.simulator.faults.mode is None
    assert server.simulator.launch_count == 3
    assert sum(server.simulator.message_counts.values()) == 1


def test_fault_429_body_and_no_retry_after(server: SimulatorServer, client: httpx.Client) -> None:
    server.simulator.faults = Faults(mode="429")
    answer = launch(client, server, {"messages": [message("41793026727")]})
    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers
    assert answer.json() == {
        "errorCode": "E429",
        "description": "Too many requests sent.",
        "action": "Check the request rate limit of this endpoint.",
        "violations": [],
        "resources": [],
    }
    assert server.simulator.faults.mode == "429"


def test_fault_500_body(server: SimulatorServer, client: httpx.Client) -> None:
    server.simulator.faults = Faults(mode="500", count=1)
    answer = launch(client, server, {"messages": [message("41793026727")]})
    assert answer.json() == {
        "requestError": {
            "serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}
        }
    }


def test_fault_hang_times_out_client_but_accepts(
    server: SimulatorServer, client: httpx.Client
) -> None:
    server.simulator.faults = Faults(mode="hang", hang_seconds=0.4, count=1)
    with pytest.raises(httpx.ReadTimeout):
        launch(client, server, {"messages": [message("41793026727")]}, timeout=0.1)
    assert wait_for(lambda: sum(server.simulator.message_counts.values()) == 1)
    assert launch(client, server, {"messages": [message("41793026728")]}).status_code == 200


def test_fault_hang_answers_after_the_pause(server: SimulatorServer, client: httpx.Client) -> None:
    server.simulator.faults = Faults(mode="hang", hang_seconds=0.1)
    started = time.monotonic()
    assert launch(client, server, {"messages": [message("41793026727")]}).status_code == 200
    assert time.monotonic() - started >= 0.1


def test_fault_drop_closes_without_answer(server: SimulatorServer, client: httpx.Client) -> None:
    server.simulator.faults = Faults(mode="drop", count=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        launch(client, server, {"messages": [message("41793026727")]})
    assert server.simulator.launch_count == 1
    assert server.simulator.message_counts == {}
    assert launch(client, server, {"messages": [message("41793026727")]}).status_code == 200


def test_control_api_sets_faults_plan_and_resets(
    server: SimulatorServer, client: httpx.Client
) -> None:
    base = f"{server.url}/_simulator"
    answer = client.post(f"{base}/faults", json={"mode": "500", "count": 1})
    assert answer.json()["faults"]["mode"] == "500"
    assert launch(client, server, {"messages": [message("41793026727")]}).status_code == 500
    plan = {"delay": 0.01, "mix": {"busy": 1}, "batch_size": 5}
    assert client.post(f"{base}/plan", json=plan).json()["plan"]["batch_size"] == 5
    assert server.simulator.plan.mix == {"busy": 1}
    assert client.post(f"{base}/faults", json={"mode": "explode"}).status_code == 400
    assert client.post(f"{base}/plan", json={"nope": 1}).status_code == 400
    state = client.post(f"{base}/reset").json()
    assert state["launch_count"] == 0
    assert state["faults"]["mode"] is None
    assert client.get(f"{server.url}/elsewhere").status_code == 404


def test_json_report_reaches_notify_url(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.05, mix={"answered_human": 1})
    body = {
        "bulkId": "bulk-json",
        "messages": [
            message(
                "385981112233",
                **{"from": "38517771234"},
                notifyUrl=receiver.url,
                callbackData="batch-17",
            )
        ],
    }
    message_id = launch(client, server, body).json()["messages"][0]["messageId"]
    assert server.simulator.wait_idle()
    [(content_type, raw)] = receiver.posts
    assert content_type == "application/json"
    [report] = json.loads(raw)["results"]
    assert report["bulkId"] == "bulk-json"
    assert report["messageId"] == message_id
    assert (report["from"], report["to"]) == ("38517771234", "385981112233")
    assert report["callbackData"] == "batch-17"
    call = report["voiceCall"]
    assert call["answeredBy"] == "HUMAN"
    assert call["chargedDuration"] >= call["duration"] > 0
    assert json.loads(call["ivr"]["collectedDtmfs"]) == {"confirm": "1"}
    assert call["ivr"]["scenarioId"] == "SCN-1"
    for stamp in (report["sentAt"], call["startTime"], call["answerTime"], call["endTime"]):
        assert TIMESTAMP.fullmatch(stamp)
    assert report["price"] == {"pricePerSecond": 0.0012, "currency": "EUR"}
    assert (report["status"]["groupId"], report["status"]["id"]) == (3, 5)
    assert (report["error"]["id"], report["error"]["permanent"]) == (10000, True)
    assert server.simulator.reports_sent() == [(receiver.url, "application/json", raw)]


@pytest.mark.parametrize(
    ("outcome", "status_id", "error_id", "answered_by"),
    [
        ("answered_human", 5, 10000, "HUMAN"),
        ("answered_machine", 5, 10002, "MACHINE"),
        ("busy", 97, 10201, None),
        ("no_answer", 96, 10200, None),
        ("failed", 9, 10102, None),
        ("expired", 15, 10102, None),
    ],
)
def test_report_codes_follow_outcome(
    server: SimulatorServer,
    client: httpx.Client,
    receiver: Receiver,
    outcome: str,
    status_id: int,
    error_id: int,
    answered_by: str | None,
) -> None:
    server.simulator.plan = ReportPlan(delay=0.01, mix={outcome: 1})
    launch(client, server, {"messages": [message("41793026727", notifyUrl=receiver.url)]})
    assert server.simulator.wait_idle()
    [report] = receiver.results()
    assert report["status"]["id"] == status_id
    assert report["error"]["id"] == error_id
    assert report["voiceCall"]["answeredBy"] == answered_by
    assert (report["voiceCall"]["answerTime"] is None) == (answered_by is None)


def test_xml_report_parses_with_lxml(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.01, mix={"busy": 1})
    body = {"messages": [message("41793026727", notifyUrl=receiver.url, notifyContentType=XML)]}
    message_id = launch(client, server, body).json()["messages"][0]["messageId"]
    assert server.simulator.wait_idle()
    [(content_type, raw)] = receiver.posts
    assert content_type == XML
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == "reportResponse"
    [result] = root.findall("results/result")
    assert result.findtext("messageId") == message_id
    assert result.findtext("to") == "41793026727"
    assert result.findtext("status/id") == "97"
    assert result.findtext("error/permanent") == "true"
    for empty in ("voiceCall/answerTime", "voiceCall/answeredBy", "voiceCall/ivr/spokenInput"):
        element = result.find(empty)
        assert element is not None
        assert element.text is None
    assert TIMESTAMP.fullmatch(result.findtext("voiceCall/endTime") or "")


def test_batch_size_groups_reports(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.05, batch_size=3)
    numbers = [f"4179302670{i}" for i in range(7)]
    answer = launch(client, server, {"messages": [message(*numbers, notifyUrl=receiver.url)]})
    assert server.simulator.wait_idle()
    sizes = sorted(len(json.loads(raw)["results"]) for _, raw in receiver.posts)
    assert sizes == [1, 3, 3]
    sent = {report["messageId"] for report in receiver.results()}
    assert sent == {entry["messageId"] for entry in answer.json()["messages"]}


def test_reports_of_calls_without_notify_url_are_pullable_exactly_once(
    server: SimulatorServer, client: httpx.Client
) -> None:
    body = {"bulkId": "bulk-pull", "messages": [message("41793026727", "41793026728")]}
    ids = [entry["messageId"] for entry in launch(client, server, body).json()["messages"]]
    assert server.simulator.wait_idle()
    pull = f"{server.url}/voice/1/reports"
    assert client.get(pull).status_code == 401
    assert wait_for(lambda: server.simulator.state()["pullable_reports"] == 2)
    one = client.get(pull, params={"messageId": ids[1]}, headers=AUTH)
    assert [report["messageId"] for report in one.json()["results"]] == [ids[1]]
    rest = client.get(pull, params={"bulkId": "bulk-pull"}, headers=AUTH)
    assert [report["messageId"] for report in rest.json()["results"]] == [ids[0]]
    empty = client.get(pull, headers=AUTH)
    assert empty.json() == {"results": []}
    assert server.simulator.reports_served() == [one.content, rest.content, empty.content]
    assert server.simulator.state()["pullable_reports"] == 0


def test_failed_delivery_is_lost_not_pullable(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    receiver.status = 500
    body = {"bulkId": "bulk-lost", "messages": [message("41793026727", "41793026728")]}
    body["messages"][0]["notifyUrl"] = receiver.url
    ids = [entry["messageId"] for entry in launch(client, server, body).json()["messages"]]
    assert server.simulator.wait_idle()
    assert len(receiver.posts) == 2
    state = client.get(f"{server.url}/_simulator/state").json()
    assert (state["reports_failed"], state["reports_posted"], state["pending_reports"]) == (2, 0, 0)
    assert state["pullable_reports"] == 0
    assert client.get(f"{server.url}/voice/1/reports", headers=AUTH).json() == {"results": []}
    logs = client.get(f"{server.url}/tts/3/logs", params={"bulkId": "bulk-lost"}, headers=AUTH)
    finals = {entry["messageId"]: entry["doneAt"] for entry in logs.json()["results"]}
    assert set(finals) == set(ids)
    assert None not in finals.values()  # the logs still know each call's final status


def test_disabled_plan_posts_nothing_and_keeps_only_calls_without_notify_url(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.01, enabled=False)
    posted = launch(client, server, {"messages": [message("41793026727", notifyUrl=receiver.url)]})
    kept = launch(client, server, {"messages": [message("41793026728")]})
    assert server.simulator.wait_idle()
    assert receiver.posts == []
    state = server.simulator.state()
    assert (state["reports_withheld"], state["pullable_reports"]) == (1, 1)
    results = client.get(f"{server.url}/voice/1/reports", headers=AUTH).json()["results"]
    assert [r["messageId"] for r in results] == [kept.json()["messages"][0]["messageId"]]
    withheld = posted.json()["messages"][0]["messageId"]
    logs = client.get(f"{server.url}/tts/3/logs", params={"messageId": withheld}, headers=AUTH)
    assert logs.json()["results"][0]["doneAt"] is not None


def test_duplicates_post_identical_reports(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.02, duplicate_rate=1.0)
    launch(
        client,
        server,
        {"messages": [message("41793026727", "41793026728", notifyUrl=receiver.url)]},
    )
    assert server.simulator.wait_idle()
    results = receiver.results()
    assert len(results) == 4
    for report in results:
        assert results.count(report) == 2


def test_reorder_posts_intermediate_after_final(
    server: SimulatorServer, client: httpx.Client, receiver: Receiver
) -> None:
    server.simulator.plan = ReportPlan(delay=0.05, reorder=True, seed=3)
    numbers = [f"417930267{i:02d}" for i in range(30)]
    launch(client, server, {"messages": [message(*numbers, notifyUrl=receiver.url)]})
    assert server.simulator.wait_idle()
    results = receiver.results()
    late = [
        (index, report)
        for index, report in enumerate(results)
        if report["status"]["groupId"] == 1 or report["status"]["id"] == 2
    ]
    assert late
    arrived_after_final = 0
    for index, report in late:
        [(final_index, final)] = [
            (i, r)
            for i, r in enumerate(results)
            if r["messageId"] == report["messageId"] and r is not report
        ]
        assert report["voiceCall"]["endTime"] < final["voiceCall"]["endTime"]
        assert report["sentAt"] == final["sentAt"]
        arrived_after_final += final_index < index
    assert arrived_after_final > 0


def test_launch_of_100000_destinations(server: SimulatorServer, client: httpx.Client) -> None:
    server.simulator.plan = ReportPlan(delay=0.05, enabled=False)  # sent without a notifyUrl
    messages = [message(*(f"4179{m}{i:06d}" for i in range(20_000))) for m in range(5)]
    answer = launch(client, server, {"messages": messages}, timeout=60.0)
    assert answer.status_code == 200
    entries = answer.json()["messages"]
    assert len(entries) == 100_000
    assert {entry["status"]["id"] for entry in entries} == {26}
    assert len({entry["messageId"] for entry in entries}) == 100_000
    assert sum(server.simulator.message_counts.values()) == 100_000
    assert server.simulator.wait_idle()
    assert server.simulator.state()["pullable_reports"] == 100_000  # Infobip keeps them all


def test_serve_stops_on_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from app.simulator.server import Simulator, serve; "
        f"serve('127.0.0.1', {port}, Simulator(api_key='{API_KEY}'))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=1.0) as client:
            assert wait_for(lambda: _answers(client, f"http://127.0.0.1:{port}"), timeout=10)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(client: httpx.Client, url: str) -> bool:
    """Tell whether the simulator at url answers its state endpoint."""
    try:
        return client.get(f"{url}/_simulator/state").status_code == 200
    except httpx.TransportError:
        return False
