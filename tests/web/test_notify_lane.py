"""The notify endpoint's fast lane (PostgreSQL): what it takes, what it hands on, and that
it answers and stores exactly what the Flask view does."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from app.config import Settings
from app.models import Call, CallEvent, InboundReport
from app.web.middleware import RequestScope
from app.web.notify_lane import NotifyLane
from app.web.ops import endpoint_namer
from tests.conftest import NOTIFY_TOKEN, LiveServer, db, serve
from tests.reports.test_reports import FIRST, STRANGER, launch_seed, report

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
SECOND = "lane-parity-second-call"
HANDED_ON = "599 Handed On"
LANE = {"Content-Type": "application/json"}
AT = "2036-04-02T07:00:10.000+0000"
VIEW = {"Content-Type": "application/json; charset=ISO-8859-1"}  # same bytes, the view's way
# One report that delivers the first call, as most tests post it.
DELIVERED = json.dumps({"results": [report(FIRST, 3, 5, "DELIVERED_TO_HANDSET", AT)]}).encode()


def _handed_on(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    if length:
        body = stream.read(int(length))
    else:  # chunked (terminated by the server) or no body at all
        body = stream.read() if environ.get("wsgi.input_terminated") else b""
    start_response(HANDED_ON, [("Content-Type", "application/octet-stream")])
    return [body]


@pytest.fixture
def lane_only(app: Flask) -> Iterator[LiveServer]:
    """The lane (in the request scope) in front of an app answering 599 with the body it got."""
    server = serve(RequestScope(NotifyLane(app, _handed_on), endpoint_namer(app)))  # type: ignore[arg-type]
    yield server
    server.stop()


def _post(url: str, body: bytes, headers: dict[str, str], **options: Any) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=30, **options)


def test_the_lane_answers_a_single_json_report_on_its_own(
    http: httpx.Client, lane_only: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    body = DELIVERED
    url = f"{lane_only.url}/notify/ivr/{NOTIFY_TOKEN}"
    answer = _post(url, body, {**LANE, "X-Request-ID": "lane-test-1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == "lane-test-1"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["applied"] == 1
    with db(app) as session:
        call = session.scalars(select(Call).where(Call.message_id == FIRST)).one()
        assert call.status_name == "DELIVERED_TO_HANDSET"
        inbound = session.scalars(select(InboundReport)).one()
        assert (inbound.body, inbound.items, inbound.peer) == (body, 1, "127.0.0.1")
    charset = _post(url, body, {"Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200
    assert charset.json()["duplicates"] == 1
    batch = [report(FIRST, 2, 97, "BUSY", AT), {"status": {}}, report(STRANGER, 2, 97, "BUSY", AT)]
    several = _post(url, json.dumps({"results": batch}).encode(), LANE)
    assert several.status_code == 200, several.text
    assert [i["result"] for i in several.json()["items"]] == ["not_applied", "invalid", "unmatched"]


def test_the_lane_hands_everything_else_to_the_view_with_the_same_body(
    http: httpx.Client, lane_only: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    one = DELIVERED
    url = f"{lane_only.url}/notify/ivr/{NOTIFY_TOKEN}"
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        ("wrong token", one, LANE, f"{lane_only.url}/notify/ivr/not-the-token"),
        ("token with a slash", one, LANE, f"{url}/more"),
        ("another charset", one, VIEW, url),
        ("XML", b"<reportResponse/>", {"Content-Type": "application/xml"}, url),
        ("no media type", one, {}, url),
        ("not JSON", b"{not json", LANE, url),
        ("no results list", b'{"results": 1}', LANE, url),
        ("NUL in a value", one.replace(b"DELIVERED_TO_HANDSET", b"DELIVERED\\u0000"), LANE, url),
        ("oversize", b" " * (app.extensions["ivrdesk"].settings.max_report_bytes + 1), LANE, url),
    ]
    for label, body, headers, target in cases:
        answer = _post(target, body, headers)
        assert (answer.status_code, answer.content) == (599, body), label
    chunked = _post(url, iter([one]), LANE)  # no Content-Length: not read by the lane
    assert (chunked.status_code, chunked.content) == (599, one)
    probe = httpx.get(url, timeout=30)
    assert probe.status_code == 599
    with db(app) as session:
        assert session.scalars(select(InboundReport)).all() == []  # the lane wrote nothing


def test_a_database_failure_in_the_lane_is_logged_and_answered_under_one_request_id(
    settings: Settings, make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses connections: the lane logs why it hands the POST on, the view
    answers 503, and the log line, the answer and the caller share one request id."""
    app = make_app(settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/gone")
    server = serve(app)
    body = DELIVERED
    url = f"{server.url}/notify/ivr/{NOTIFY_TOKEN}"
    try:
        with caplog.at_level("WARNING", logger="app.web.notify_lane"):
            presented = _post(url, body, {**LANE, "X-Request-ID": "lane-outage-1"})
            chosen = _post(url, body, LANE)
    finally:
        server.stop()
    assert (presented.status_code, chosen.status_code) == (503, 503)
    assert presented.headers["Retry-After"]
    ids = [presented.headers["X-Request-ID"], chosen.headers["X-Request-ID"]]
    assert ids[0] == "lane-outage-1"
    assert len(ids[1]) == 32  # made up around the lane, kept by the view
    warnings = [r for r in caplog.records if r.name == "app.web.notify_lane"]
    assert [r.getMessage() for r in warnings] == [
        "fast report path failed, taking the general one: OperationalError"
    ] * 2
    assert [getattr(r, "request_id", None) for r in warnings] == ids


def _history(app: Flask, message_id: str) -> list[tuple[Any, ...]]:
    with db(app) as session:
        rows = session.scalars(
            select(CallEvent)
            .where(CallEvent.message_id == message_id, CallEvent.source == "report")
            .order_by(CallEvent.occurred_at, CallEvent.status_name)
        )  # a batch inserts in key order: compare by time
        return [
            (e.call_id is not None, e.applied, e.reason, e.duplicates, e.status_name, e.outcome,
             e.occurred_at, e.duration, e.raw["status"], e.inbound_report_id is not None)
            for e in rows
        ]  # fmt: skip


def _call_state(app: Flask, message_id: str) -> tuple[Any, ...]:
    with db(app) as session:
        c = session.scalars(select(Call).where(Call.message_id == message_id)).one()
        return (c.status_name, c.status_final, c.status_occurred_at, c.outcome, c.duration,
                c.charged_duration, c.price_per_second, c.ended_at, c.answered_by)  # fmt: skip


def test_the_lane_and_the_view_answer_and_store_the_same(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http, also=(SECOND,))
    steps = [
        (1, 3, "PENDING_WAITING_DELIVERY", "2036-04-02T07:00:10.000+0000"),  # applied
        (1, 7, "PENDING_ENROUTE", "2036-04-02T07:00:05.000+0000"),  # late
        (2, 97, "BUSY", "2036-04-02T07:00:20.000+0000"),  # applied, final
        (2, 97, "BUSY", "2036-04-02T07:00:20.000+0000"),  # duplicate
        (1, 7, "PENDING_ENROUTE", "2036-04-02T07:00:30.000+0000"),  # after_final
        (3, 5, "DELIVERED_TO_HANDSET", "2036-04-02T07:00:25.000+0000"),  # final, later
        (2, 96, "NO_ANSWER", "2036-04-02T07:00:25.000+0000"),  # final, same time: late
    ]
    url = f"{live.url}/notify/ivr/{NOTIFY_TOKEN}"
    for group, status_id, name, at in steps:
        answers = []
        for message_id, headers in ((FIRST, LANE), (SECOND, VIEW)):
            result = report(message_id, group, status_id, name, at)
            answer = _post(url, json.dumps({"results": [result]}).encode(), headers)
            assert answer.status_code == 200, answer.text
            answers.append(answer.text.replace(message_id, "<id>"))
        assert answers[0] == answers[1], (name, at)
    unmatched = []
    for headers, name in ((LANE, "BUSY"), (VIEW, "NO_ANSWER")):
        body = json.dumps({"results": [report(STRANGER, 2, 97, name, AT)]}).encode()
        unmatched.append(_post(url, body, headers).text)
    assert unmatched[0] == unmatched[1]
    batches = []
    for message_id, headers in ((FIRST, LANE), (SECOND, VIEW)):
        results = [report(message_id, 2, 96, "NO_ANSWER", "2036-04-02T07:01:00.000+0000"),
                   report(message_id, 1, 7, "PENDING_ENROUTE", "2036-04-02T07:02:00.000+0000"),
                   {"messageId": message_id, "status": "bad"}]  # fmt: skip
        answer = _post(url, json.dumps({"results": results}).encode(), headers)
        batches.append(answer.text.replace(message_id, "<id>"))
    assert batches[0] == batches[1]
    assert json.loads(unmatched[0])["items"][0]["result"] == "unmatched"
    assert _history(app, FIRST) == _history(app, SECOND)
    assert [row[:4] for row in _history(app, FIRST)] == [
        (True, False, "late", 0), (True, True, None, 0), (True, True, None, 1),
        (True, True, None, 0), (True, False, "late", 0), (True, False, "after_final", 0),
        (True, True, None, 0), (True, False, "after_final", 0),
    ]  # fmt: skip
    assert _call_state(app, FIRST) == _call_state(app, SECOND)
    parked = [row[:4] for row in _history(app, STRANGER)]
    assert parked == [(False, False, "unmatched", 0)] * 2
