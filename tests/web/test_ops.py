"""Operations: health, readiness, metrics (also under gunicorn), request ids, hardening."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import metrics
from app.config import ConfigError, Settings, load_settings
from app.db import make_engine, utcnow
from app.infobip.client import FailureKind, ProviderError
from app.migrate import alembic_config, upgrade
from app.reports.events import APPLIED, DUPLICATE
from app.reports.record import ItemResult
from app.web.ops import migrations_head
from tests.conftest import NOTIFY_TOKEN, POSTGRES_URL, Databases, LiveServer, serve, state
from tests.launch.test_launch import flat_body
from tests.servers import gunicorn

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"
METRICS_TOKEN = "metrics-token-0123456789"


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Fetch /metrics and index every sample by name and labels."""
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_of(samples: dict, endpoint: str, status: str = "200") -> float:  # type: ignore[type-arg]
    key = (
        "ivrdesk_http_requests_total",
        (("endpoint", endpoint), ("method", "GET"), ("status", status)),
    )
    return samples.get(key, 0.0)  # type: ignore[no-any-return]


Key = tuple[str, tuple[tuple[str, str], ...]]
HEALTHZ: Key = (
    "ivrdesk_http_requests_total",
    (("endpoint", "ops.healthz"), ("method", "GET"), ("status", "200")),
)
LAUNCHED: Key = (
    "ivrdesk_http_requests_total",
    (("endpoint", "api.launch"), ("method", "POST"), ("status", "201")),
)
LAUNCH_TIME: Key = ("ivrdesk_http_request_duration_seconds_count", (("endpoint", "api.launch"),))


def in_process(name: str, labels: tuple[tuple[str, str], ...]) -> float:
    """Read a sample from this process's registry (the one the in-process server serves)."""
    return REGISTRY.get_sample_value(name, dict(labels)) or 0.0


@pytest.fixture
def offline(make_app: object, tmp_path: Path) -> Iterator[LiveServer]:
    """ivrdesk whose database nothing listens for."""
    settings = Settings(database_url=UNREACHABLE, env="development", instance_path=tmp_path)
    server = serve(make_app(settings))  # type: ignore[operator]
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def older_database_url(
    request: pytest.FixtureRequest, databases: Databases, tmp_path: Path
) -> Iterator[str]:
    """A database migrated to the revision before the head (or not at all if there is one)."""
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    head = script.get_revision(migrations_head())
    older = head.down_revision if head is not None else None
    assert older is None or isinstance(older, str)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'older.sqlite3'}"
    else:
        databases.url("postgresql")  # skips (or fails in CI) without PostgreSQL
        name = f"ivrdesk_older_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    if older is not None:
        upgrade(engine, older)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_healthz_answers_without_a_database(offline: LiveServer) -> None:
    response = httpx.get(f"{offline.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_after_migration(live: LiveServer) -> None:
    response = httpx.get(f"{live.url}/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "revision": migrations_head()}


def test_readyz_is_503_on_an_older_schema(
    older_database_url: str, settings: Settings, make_app: object
) -> None:
    server = serve(make_app(settings, database_url=older_database_url))  # type: ignore[operator]
    try:
        response = httpx.get(f"{server.url}/readyz")
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert f"expected {migrations_head()}" in response.json()["reason"]


def test_readyz_is_503_when_the_database_is_unreachable(offline: LiveServer) -> None:
    response = httpx.get(f"{offline.url}/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unreachable")
    assert "127.0.0.1" not in body["reason"]


def test_metrics_count_requests_and_calls_by_submit_state(
    http: httpx.Client, live: LiveServer
) -> None:
    # Read "before" in-process: a scrape now would cache the calls gauge for 30 s.
    before = {key: in_process(*key) for key in (HEALTHZ, LAUNCHED, LAUNCH_TIME)}
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727", "41793026731"))
    assert response.status_code == 201, response.text
    for _ in range(3):
        assert httpx.get(f"{live.url}/healthz").status_code == 200
    after = scrape(live.url)
    assert after[HEALTHZ] - before[HEALTHZ] == 3
    assert after[LAUNCHED] - before[LAUNCHED] == 1
    assert after[LAUNCH_TIME] - before[LAUNCH_TIME] == 1
    assert after[("ivrdesk_calls", (("submit_state", "accepted"),))] == 2
    assert after[("ivrdesk_calls", (("submit_state", "rejected"),))] == 0


def test_metrics_helpers_count_reports_and_infobip_calls(live: LiveServer) -> None:
    before = scrape(live.url)
    now = utcnow()
    results = [ItemResult(0, "a", APPLIED), ItemResult(1, "a", DUPLICATE)]
    metrics.count_report_results(results)
    metrics.observe_report_delays([ItemResult(0, "a", APPLIED)], now)  # no occurred_at: skipped
    metrics.observe_report_delay(now - timedelta(seconds=42), now)
    with metrics.timed_infobip_call("launch"):
        pass
    with pytest.raises(ProviderError), metrics.timed_infobip_call("launch"):
        raise ProviderError(FailureKind.TIMEOUT, "no answer in time")
    after = scrape(live.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("ivrdesk_reports_received_total") == 2
    assert delta("ivrdesk_reports_total", result="applied") == 1
    assert delta("ivrdesk_reports_total", result="duplicate") == 1
    assert delta("ivrdesk_report_delay_seconds_count") == 1
    assert delta("ivrdesk_report_delay_seconds_bucket", le="60.0") == 1
    assert delta("ivrdesk_report_delay_seconds_bucket", le="30.0") == 0
    assert delta("ivrdesk_infobip_requests_total", operation="launch", result="ok") == 1
    assert delta("ivrdesk_infobip_requests_total", operation="launch", result="timeout") == 1
    assert delta("ivrdesk_infobip_request_duration_seconds_count", operation="launch") == 2


def test_metrics_answer_without_the_calls_gauge_when_the_database_is_down(
    offline: LiveServer,
) -> None:
    assert httpx.get(f"{offline.url}/healthz").status_code == 200
    samples = scrape(offline.url)
    assert not any(name == "ivrdesk_calls" for name, _ in samples)
    assert any(name == "ivrdesk_http_requests_total" for name, _ in samples)


def test_metrics_token_is_required_when_set(settings: Settings, make_app: object) -> None:
    server = serve(make_app(settings, metrics_token=METRICS_TOKEN))  # type: ignore[operator]
    try:
        url = f"{server.url}/metrics"
        missing = httpx.get(url)
        wrong = httpx.get(url, headers={"Authorization": "Bearer not-the-token"})
        other_scheme = httpx.get(url, headers={"Authorization": f"App {METRICS_TOKEN}"})
        right = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    finally:
        server.stop()
    for refused in (missing, wrong, other_scheme):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert "ivrdesk_http_requests_total" in right.text


def test_metrics_in_production_need_the_token(
    settings: Settings, make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    closed = serve(make_app(settings, env="production"))
    token = serve(make_app(settings, env="production", metrics_token=METRICS_TOKEN))
    try:
        refused = httpx.get(f"{closed.url}/metrics")
        missing = httpx.get(f"{token.url}/metrics")
        right = httpx.get(
            f"{token.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
    finally:
        closed.stop()
        token.stop()
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden",
        "message": "/metrics needs IVR_METRICS_TOKEN in production",
        "details": [],
    }
    assert "ivrdesk_http" not in refused.text
    assert "IVR_METRICS_TOKEN is not set: /metrics answers 403 in production" in caplog.text
    assert missing.status_code == 401
    assert right.status_code == 200
    assert "ivrdesk_http_requests_total" in right.text


def test_metrics_add_up_across_gunicorn_workers(database_url: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    env = {"IVR_DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with gunicorn(env, workers=2) as url:
        before = requests_of(scrape(url), "ops.readyz")
        sent = 0
        # No keep-alive: every request is a new connection, which any worker may accept.
        fresh = httpx.Limits(max_keepalive_connections=0)
        client = httpx.Client(base_url=url, timeout=10, limits=fresh)

        def ready(_: int) -> int:
            return client.get("/readyz").status_code

        deadline = time.monotonic() + 30
        with client, ThreadPoolExecutor(8) as pool:
            while True:
                assert set(pool.map(ready, range(16))) == {200}
                sent += 16
                pids = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}
                if len(pids) >= 2 or time.monotonic() > deadline:
                    break
        assert len(pids) >= 2, "every request went to one worker"
        for _ in range(4):  # whichever worker answers, the sum is the same
            samples = scrape(url)
            assert requests_of(samples, "ops.readyz") - before == sent
        assert ("ivrdesk_calls", (("submit_state", "accepted"),)) in samples


def test_gunicorn_access_log_masks_the_notify_token(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    env = {"IVR_DATABASE_URL": database_url, "IVR_NOTIFY_TOKENS": NOTIFY_TOKEN}
    with gunicorn(env, workers=1, log=log) as url:
        notify = f"{url}/notify/ivr/{NOTIFY_TOKEN}?x=1"
        headers = {"X-Request-ID": "masked-check-1", "Content-Type": "application/json"}
        posted = httpx.post(notify, content=b"{}", headers=headers)
        assert posted.status_code == 400, posted.text
        assert httpx.get(notify.replace(NOTIFY_TOKEN, "wrong-token-0123456789")).status_code == 401
        deadline = time.monotonic() + 10
        while "masked-check-1" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    output = log.read_text()
    assert NOTIFY_TOKEN not in output
    assert "wrong-token-0123456789" not in output
    assert re.search(r'POST /notify/ivr/\*\*\*\?x=1 HTTP/1.1\\?" 400', output), output
    assert '"path": "/notify/ivr/***"' in output


def test_security_headers_on_html_and_nosniff_everywhere(live: LiveServer) -> None:
    page = httpx.get(f"{live.url}/no-such-page")
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    api = httpx.get(f"{live.url}/healthz")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in api.headers


@pytest.mark.parametrize(
    ("presented", "echoed"),
    [
        ("req-42.abc_DEF", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("bad id", False),
        ("<script>", False),
        (None, False),
    ],
)
def test_request_id_is_echoed_when_sane(
    live: LiveServer, presented: str | None, echoed: bool
) -> None:
    headers = {"X-Request-ID": presented} if presented is not None else {}
    answer = httpx.get(f"{live.url}/healthz", headers=headers).headers["X-Request-ID"]
    if echoed:
        assert answer == presented
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", answer)


def test_request_id_is_on_error_answers_too(live: LiveServer) -> None:
    response = httpx.post(f"{live.url}/notify/ivr/unknown", headers={"X-Request-ID": "r-1"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "r-1"


@pytest.mark.parametrize(
    "key", ["change-me", "change-me-to-a-long-random-string", "CHANGEME-please-0000", "secret"]
)
def test_placeholder_secret_key_is_refused_in_production(key: str) -> None:
    with pytest.raises(ConfigError, match="IVR_SECRET_KEY is an example placeholder"):
        load_settings({"IVR_ENV": "production", "IVR_SECRET_KEY": key})
    if len(key) >= 16:  # development tolerates it
        assert load_settings({"IVR_ENV": "development", "IVR_SECRET_KEY": key}).secret_key == key


def test_real_secret_key_is_accepted_in_production() -> None:
    settings = load_settings({"IVR_ENV": "production", "IVR_SECRET_KEY": "q8Zr2-" * 8})
    assert settings.secret_key == "q8Zr2-" * 8


def test_empty_notify_tokens_warn_at_start(
    settings: Settings, make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.config"):
        app: Flask = make_app(settings, notify_tokens=())  # type: ignore[operator]
    assert "IVR_NOTIFY_TOKENS is empty: every delivery report will be refused" in caplog.text
    assert state(app).settings.notify_tokens == ()
