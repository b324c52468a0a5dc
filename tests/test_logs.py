"""Logs: JSON or text lines with a request id; no secret or full phone number ever printed."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from app.config import Settings
from app.logs import redact
from app.simulator.server import ReportPlan, Simulator, SimulatorServer
from tests.conftest import DATA, NOTIFY_TOKEN, make_token, serve
from tests.servers import gunicorn

FIRST = "0f6c1d52-3b1e-4d55-9a34-2c1b7d9e0a11"
USERNAME = "ivr-user"
PASSWORD = "Pa55word-for-infobip-0042"
NUMBERS = ("385981112233", "385917654321", "38517771234")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ \S+ \[[A-Za-z0-9._-]+\] ")


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("POST /notify/ivr/abcDEF0123456789xyz HTTP/1.1", "POST /notify/ivr/*** HTTP/1.1"),
        ("https://h.example/notify/ivr/tok-en_1.2?x=1", "https://h.example/notify/ivr/***?x=1"),
        ("Authorization: Bearer ivr_Zx0-abc_defghij", "Authorization: Bearer ***"),
        ("{'Authorization': 'App 0123abcd-secret'}", "{'Authorization': 'App ***'}"),
        ("basic dXNlcjpwYXNzd29yZA==", "basic ***"),
        ('"authorization": "raw-secret-value"', '"authorization": "***"'),
        ("token ivr_AbCdEf0123456789_- made", "token ivr_*** made"),
        ("calling 41793026727 now", "calling *******6727 now"),
        ("to=+41793026727,", "to=+*******6727,"),
        ("+385 91 234 5678", "+*** ** *** 5678"),
        ("postgresql://ivr:s3cret@db/ivr", "postgresql://ivr:***@db/ivr"),
        # A number in a query parameter: the whole value, whatever its shape.
        ("GET /api/v1/calls?to=41-79-302-67-90 HTTP/1.1", "GET /api/v1/calls?to=*** HTTP/1.1"),
        ("/api/v1/calls?limit=5&to=%2B41+79+302+67+90&x=1", "/api/v1/calls?limit=5&to=***&x=1"),
        ("/admin/calls?to=41.79.302.67.90", "/admin/calls?to=***"),
        ("/admin/calls?to=(079)%20302", "/admin/calls?to=***"),
        ("/x?t%6F=12&q=44", "/x?t%6F=***&q=***"),
        ("/x?callbackData=079.302.67.90&limit=5", "/x?callbackData=***&limit=5"),
        ("/admin/login?next=%2Fadmin%2Fcalls%3Fto%3D12", "/admin/login?next=***"),
        (
            "/api/v1/calls?limit=5&cursor=MTIz&outcome=busy",
            "/api/v1/calls?limit=5&cursor=MTIz&outcome=busy",
        ),
        # Left alone: short numbers, ids with letters, long ids, times.
        ("batch 12 of 123456", "batch 12 of 123456"),
        ("id 0f6c1d52-3b1e-4d55-9a34-2c1b7d9e0a11", "id 0f6c1d52-3b1e-4d55-9a34-2c1b7d9e0a11"),
        ("messageId 2034072219640523072", "messageId 2034072219640523072"),
        ("at 2026-04-02T07:00:41.500+0000", "at 2026-04-02T07:00:41.500+0000"),
        ("the App started", "the App started"),
    ],
)
def test_redact_masks_secrets_and_numbers(raw: str, masked: str) -> None:
    assert redact(raw) == masked


def test_log_records_are_redacted_in_args_tracebacks_and_extras(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    log = logging.getLogger("app.tests")
    log.warning("sent to %s with %s", "41793026727", {"Authorization": "App key-0123456789"})
    try:
        raise RuntimeError(f"POST /notify/ivr/{NOTIFY_TOKEN} failed for 385981112233")
    except RuntimeError:
        log.exception("report failed", extra={"url": f"http://x/notify/ivr/{NOTIFY_TOKEN}"})
    output = capsys.readouterr().err
    assert "*******6727" in output
    assert "key-0123456789" not in output
    assert NOTIFY_TOKEN not in output
    assert "385981112233" not in output
    assert "RuntimeError: POST /notify/ivr/*** failed for ********2233" in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[-1]["url"] == "http://x/notify/ivr/***"
    assert lines[-1]["request_id"] == "-"


def test_production_quiets_the_request_url_loggers(settings: Settings, make_app: Any) -> None:
    make_app(settings, env="production")
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("werkzeug").level == logging.WARNING
    make_app(settings)
    assert logging.getLogger("httpx").level == logging.NOTSET


@pytest.fixture
def basic_simulator() -> Iterator[SimulatorServer]:
    """A fake Infobip that takes HTTP Basic credentials."""
    simulator = Simulator(username=USERNAME, password=PASSWORD, plan=ReportPlan(enabled=False))
    with SimulatorServer(simulator) as server:
        yield server
    simulator.close()


@pytest.fixture
def everything_logged() -> Iterator[None]:
    """Log at DEBUG, SQL statements and their parameters included, for one test."""
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    levels = root.level, sql.level
    root.setLevel(logging.DEBUG)
    sql.setLevel(logging.INFO)
    yield
    root.setLevel(levels[0])
    sql.setLevel(levels[1])


def launch_body() -> dict[str, Any]:
    body = json.loads((DATA / "launch-request.json").read_text())
    message = body["messages"][0]
    del message["sendAt"]
    message["destinations"][0]["messageId"] = FIRST
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_launch_report_lookup_cycle_logs_no_secret(
    log_format: str,
    settings: Settings,
    make_app: Any,
    basic_simulator: SimulatorServer,
    capsys: pytest.CaptureFixture[str],
    everything_logged: None,
) -> None:
    settings = replace(
        settings,
        infobip_base_url=basic_simulator.url,
        infobip_api_key=None,
        infobip_username=USERNAME,
        infobip_password=PASSWORD,
        log_format=log_format,
    )
    app = make_app(settings)
    token = make_token(app, "operator")
    server = serve(app)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            launched = client.post("/api/v1/campaigns", json=launch_body())
            assert launched.status_code == 201, launched.text
            report = (DATA / "report-v2-answered.json").read_bytes()
            notified = httpx.post(
                f"{server.url}/notify/ivr/{NOTIFY_TOKEN}",
                content=report,
                headers={"Content-Type": "application/json"},
            )
            assert notified.json()["applied"] == 1, notified.text
            looked_up = client.get(f"/api/v1/calls/{FIRST}")
            assert looked_up.json()["outcome"] == "answered_human"
            assert client.get("/api/v1/calls/41793026727").status_code == 404
            # A search puts a number into a logged SQL parameter (on PostgreSQL the
            # launch's own rows go in through COPY, which SQLAlchemy does not log).
            assert client.get("/api/v1/calls", params={"to": NUMBERS[0]}).status_code == 200
    finally:
        server.stop()
    output = capsys.readouterr().err
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert settings.secret_key is not None
    for secret in (token, NOTIFY_TOKEN, PASSWORD, basic, settings.secret_key, *NUMBERS):
        assert secret not in output, f"{secret!r} was logged"
    assert "41793026727" not in output
    assert "/notify/ivr/***" in output
    assert "********2233" in output  # the number was logged, masked (SQL parameters)
    lines = output.splitlines()
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert all("request_id" in record for record in records)
        submitted = [r for r in records if r["logger"] == "app.launch.submission"]
        assert submitted
        assert all(r["request_id"] != "-" for r in submitted)
    else:
        starts = [line for line in lines if TEXT_LINE.match(line)]
        assert len(starts) > len(lines) / 2
        assert any("app.launch.submission [" in line and " [-] " not in line for line in starts)


FORMATTED = ("41-79-302-67-90", "%2B41+79+302+67+90", "41.79.302.67.90", "(079)%20302%2067%2090")
ACCESS_FORMATS = {
    "shipped": None,
    "with the query atom": '%(h)s "%(r)s" %(s)s U=%(U)s q=%(q)s %({x-request-id}o)s',
}


@pytest.mark.parametrize("access_format", ACCESS_FORMATS)
def test_gunicorn_access_log_masks_numbers_of_any_shape(
    access_format: str, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "gunicorn.log"
    env = {"IVR_DATABASE_URL": database_url, "IVR_LOG_FORMAT": "text"}
    if ACCESS_FORMATS[access_format]:
        env["GUNICORN_ACCESS_LOG_FORMAT"] = ACCESS_FORMATS[access_format]
    with gunicorn(env, workers=1, log=log) as url, httpx.Client(base_url=url) as client:
        for number in FORMATTED:
            assert client.get(f"/api/v1/calls?limit=5&to={number}").status_code == 401
            assert client.get(f"/admin/calls?to={number}").status_code == 302
            # The login page's `next` carries the search, number included (encoded once more).
            assert client.get(f"/admin/calls?to={number}", follow_redirects=True).status_code
        assert client.get("/healthz", headers={"X-Request-ID": "last-of-the-numbers"})
        deadline = time.monotonic() + 10
        while "last-of-the-numbers" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    output = log.read_text()
    for digits in ("79-302", "79+302", "79.302", "302%20", "67-90", "67+90", "67.90", "%2090"):
        assert digits not in output, output
    assert "GET /api/v1/calls?limit=5&to=*** HTTP/1.1" in output
    assert "GET /admin/login?next=*** HTTP/1.1" in output
    if access_format != "shipped":
        assert "q=limit=5&to=*** " in output
