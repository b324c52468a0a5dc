"""Caching headers over real HTTP: answers with call data are never stored by a cache."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from tests.reports.test_reports import FIRST, JSON_TYPE, launch_seed, notify, sample

SEEDED_BULK_ID = "spring-reminders-2026-04"  # tests/data/launch-request.json


def test_api_answers_are_not_stored_by_caches(http: httpx.Client, live: LiveServer) -> None:
    launch_seed(http)
    # A single JSON report: on PostgreSQL the notify lane answers it, on SQLite the view.
    reported = notify(live, sample("report-v2-answered.json"), JSON_TYPE)
    answers = {
        "notify": reported,
        "call": http.get(f"/api/v1/calls/{FIRST}"),
        "calls": http.get("/api/v1/calls"),
        "campaign": http.get(f"/api/v1/campaigns/{SEEDED_BULK_ID}"),
        "campaigns": http.get("/api/v1/campaigns"),
        "unmatched": http.get("/api/v1/reports/unmatched"),
        "export": http.get(f"/api/v1/campaigns/{SEEDED_BULK_ID}/calls.csv"),
        "not found": http.get("/api/v1/calls/nope"),
        "bad query": http.get("/api/v1/calls", params={"limit": "0"}),
        "no token": httpx.get(f"{live.url}/api/v1/calls"),
        "health": httpx.get(f"{live.url}/healthz"),
    }
    assert [answers["notify"].status_code, answers["call"].status_code] == [200, 200]
    assert answers["not found"].status_code == 404
    for name, response in answers.items():
        assert response.headers.get("Cache-Control") == "no-store", name


def test_static_files_stay_cacheable(live: LiveServer) -> None:
    css = httpx.get(f"{live.url}/static/admin.css")
    assert css.status_code == 200
    assert css.headers.get("Cache-Control") != "no-store"
