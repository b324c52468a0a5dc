"""The request scope: one id per request (logs and answer) and one metric sample per request,
whether the notify lane or a Flask view answers."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from app.logs import install_record_factory, request_id
from app.web.middleware import RequestScope
from tests.conftest import NOTIFY_TOKEN, LiveServer, serve
from tests.reports.test_reports import FIRST, launch_seed, report

AT = "2036-04-02T07:00:10.000+0000"
LANE = {"Content-Type": "application/json"}
SERVER_SIDE = ("werkzeug", "sqlalchemy")
VIEW = {"Content-Type": "application/json; charset=ISO-8859-1"}  # the lane hands it on


def request_samples() -> dict[tuple[str, ...], float]:
    """Every request counter and duration count of this process, by name and label values."""
    samples = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name in (
                "ivrdesk_http_requests_total",
                "ivrdesk_http_request_duration_seconds_count",
            ):
                labels = [value for _, value in sorted(sample.labels.items())]
                samples[(sample.name, *labels)] = sample.value
    return samples


def added(before: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    """The samples that grew since `before`, by how much."""
    after = request_samples()
    grown = {key: value - before.get(key, 0.0) for key, value in after.items()}
    return {key: value for key, value in grown.items() if value}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_lane_and_view_requests_are_counted_once_under_one_id(
    http: httpx.Client, live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    launch_seed(http)
    url = f"{live.url}/notify/ivr/{NOTIFY_TOKEN}"
    body = json.dumps({"results": [report(FIRST, 3, 5, "DELIVERED_TO_HANDSET", AT)]}).encode()
    cases = [
        ("the lane", "POST", url, LANE, "lane-1", ("webhooks.receive", "POST", "200")),
        ("lane, then view", "POST", url, VIEW, None, ("webhooks.receive", "POST", "200")),
        ("a view", "GET", f"{live.url}/readyz", {}, "view-1", ("ops.readyz", "GET", "200")),
    ]
    for label, method, target, headers, presented, labels in cases:
        caplog.clear()
        before = request_samples()
        extra = {"X-Request-ID": presented} if presented else {}
        with (
            caplog.at_level(logging.INFO, logger="sqlalchemy.engine"),
            caplog.at_level(logging.INFO, logger="werkzeug"),
        ):
            answer = httpx.request(method, target, content=body if method == "POST" else None,
                                   headers={**headers, **extra}, timeout=30)  # fmt: skip
        assert answer.status_code == 200, (label, answer.text)
        endpoint, verb, status = labels
        assert added(before) == {
            ("ivrdesk_http_requests_total", endpoint, verb, status): 1,
            ("ivrdesk_http_request_duration_seconds_count", endpoint): 1,
        }, label
        answered = answer.headers.get_list("X-Request-ID")
        if presented:
            assert answered == [presented], label
        else:
            assert len(answered) == 1, label
            assert re.fullmatch(r"[0-9a-f]{32}", answered[0]), label
        # The server's line for it and any SQL it ran (the lane's goes round SQLAlchemy).
        logged = [r.request_id for r in caplog.records if r.name.startswith(SERVER_SIDE)]
        assert logged, label
        assert set(logged) == set(answered), label


def _raising(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    raise RuntimeError("boom")


def _own_header(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("204 No Content", [("X-Request-ID", "forged"), ("x-request-id", "forged")])
    logging.getLogger("app.tests").warning("answering")
    yield b""


def _server_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "werkzeug" and r.levelno == logging.ERROR]


def _endpoint(environ: dict[str, Any]) -> str:
    return "tests.plain"


@pytest.fixture
def plain() -> Iterator[LiveServer]:
    """Two plain WSGI apps in the request scope: /raise raises, anything else answers 204."""

    def route(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        app = _raising if environ["PATH_INFO"] == "/raise" else _own_header
        return app(environ, start_response)

    server = serve(RequestScope(route, _endpoint))  # type: ignore[arg-type]
    yield server
    server.stop()


def test_an_application_error_is_counted_as_a_500_once_and_logged_under_its_id(
    plain: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    install_record_factory()  # as configure_logging does
    before = request_samples()
    with caplog.at_level(logging.ERROR, logger="werkzeug"):
        answer = httpx.get(f"{plain.url}/raise", headers={"X-Request-ID": "crash-1"})
        deadline = time.monotonic() + 10  # the server logs the error after answering
        while not _server_errors(caplog) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert answer.status_code == 500
    errors = _server_errors(caplog)
    assert [r.request_id for r in errors] == ["crash-1"]  # the server's line about it
    assert added(before) == {
        ("ivrdesk_http_requests_total", "tests.plain", "GET", "500"): 1,
        ("ivrdesk_http_request_duration_seconds_count", "tests.plain"): 1,
    }


def test_the_answer_carries_one_request_id_and_so_do_its_log_lines(
    plain: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    install_record_factory()  # as configure_logging does
    with caplog.at_level(logging.WARNING, logger="app.tests"):
        answer = httpx.get(plain.url, headers={"X-Request-ID": "mine-1"})
    assert answer.headers.get_list("X-Request-ID") == ["mine-1"]
    assert [r.request_id for r in caplog.records if r.name == "app.tests"] == ["mine-1"]
    logging.getLogger("app.tests").warning("outside")
    assert caplog.records[-1].request_id == request_id() == "-"
