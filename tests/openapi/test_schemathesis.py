"""Property-based runs of the OpenAPI document against ivrdesk over real HTTP (schemathesis).

Every documented operation gets a bounded, deterministic set of generated
requests; the answers must never be a 5xx, must carry a documented status and
must fit their schema. Lookups go with a viewer token, everything else with an
operator token; launches reach the fake Infobip.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.openapi.document import build_document
from app.simulator.server import Simulator
from tests.conftest import NOTIFY_TOKEN, LiveServer
from tests.reports.test_reports import FIRST, launch_seed, sample

SEEDED_BULK_ID = "spring-reminders-2026-04"  # tests/data/launch-request.json
# Text that databases treat differently (PostgreSQL refuses NUL in text), or that is blank.
AWKWARD = ["a\x00b", "\x00", " ", "\t", "\u00e9\u0301", "\U0001f4de"]
AWKWARD_KEYS = [
    "query.callbackData",
    "query.status",
    "query.to",
    "query.cursor",
    "body.scenarioId",
    "body.callbackData",
    "body.name",
    "body.from",
    "body.messages[*].scenarioId",
    "body.messages[*].callbackData",
    "body.messages[*].from",
    "body.results[*].messageId",
    "body.results[*].callbackData",
]
NUMBERS = ["41793026727", "+385 91 555 0101", "0044 20 7946 0958", 38598123456]
# No 5xx, a documented status and content type, a body that fits its schema; nothing else.
CHECKS = {
    "enabled": False,
    "not_a_server_error": {"enabled": True},
    "status_code_conformance": {"enabled": True},
    "content_type_conformance": {"enabled": True},
    "response_schema_conformance": {"enabled": True},
}


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260705,
        "checks": CHECKS,
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        # Half of the generated ids are the seeded campaign's and call's, and numbers are
        # often callable ones, so requests also reach the code behind a 200 or a 201
        # instead of stopping at a 404 or a 400. The notify token is always the real one.
        "dictionaries": {
            "bulk": {"values": [SEEDED_BULK_ID]},
            "call": {"values": [FIRST]},
            "bulk-filter": {"values": [SEEDED_BULK_ID, "a\x00b"]},
            "numbers": {"values": NUMBERS},
            "awkward": {"values": AWKWARD},
        },
        "parameters": {
            "path.bulkId": {"dictionary": "bulk", "probability": 0.5},
            "query.bulkId": {"dictionary": "bulk-filter", "probability": 0.5},
            "path.messageId": {"dictionary": "call", "probability": 0.5},
            "body.to": {"dictionary": "numbers", "probability": 0.5},
            "body.to[*]": {"dictionary": "numbers", "probability": 0.8},
            "body.messages[*].destinations[*].to": {"dictionary": "numbers", "probability": 0.8},
            "path.token": NOTIFY_TOKEN,
            **{key: {"dictionary": "awkward", "probability": 0.2} for key in AWKWARD_KEYS},
        },
    }
)
# The document is built without a server (app/openapi.py): the same one the app serves.
schema = schemathesis.openapi.from_dict(build_document(), config=CONFIG)


@pytest.fixture
def seeded(live: LiveServer, http: httpx.Client) -> LiveServer:
    """Serve ivrdesk with one launched campaign whose first call has a report."""
    launch_seed(http)
    posted = http.post(
        f"/notify/ivr/{NOTIFY_TOKEN}",
        content=sample("report-v2-answered.json"),
        headers={"Content-Type": "application/json"},
    )
    assert posted.status_code == 200, posted.text
    return live


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_keeps_its_documented_contract(
    case: schemathesis.Case, seeded: LiveServer, operator_token: str, viewer_token: str
) -> None:
    token = viewer_token if case.method in ("GET", "HEAD") else operator_token
    case.call_and_validate(
        base_url=seeded.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


# What schemathesis found, kept as plain regression tests on both databases.

NUL_LOOKUPS = [  # PostgreSQL answered 500: it refuses NUL in text parameters
    ("/api/v1/calls?callbackData=a%00b", 400, "callbackData"),
    ("/api/v1/calls?status=%00", 400, "status"),
    ("/api/v1/calls?bulkId=a%00b", 400, "bulkId"),
    ("/api/v1/campaigns/x/calls?callbackData=%00", 400, "callbackData"),
    ("/api/v1/campaigns/a%00b", 404, None),
    ("/api/v1/campaigns/a%00b/calls", 404, None),
    ("/api/v1/campaigns/a%00b/calls.csv", 404, None),
    ("/api/v1/calls/a%00b", 404, None),
]


def test_lookups_refuse_nul_characters(http: httpx.Client) -> None:
    for url, status, parameter in NUL_LOOKUPS:
        response = http.get(url)
        assert response.status_code == status, (url, response.text)
        details = response.json()["error"]["details"]
        assert [detail["path"] for detail in details] == ([parameter] if parameter else []), url


def test_launch_refuses_nul_characters_and_blank_scenario_ids(
    http: httpx.Client, simulator: Simulator
) -> None:
    nul = {"scenarioId": "a\x00b", "parameters": {"k\x00": "v"}, "to": ["41793026727"]}
    blank = {"messages": [{"scenarioId": " ", "destinations": [{"to": "41793026727"}]}]}
    for body, problems in (
        (
            nul,
            {
                "scenarioId": "must not contain NUL characters",
                "parameters.k\\u0000": "names must not contain NUL characters",
            },
        ),
        (blank, {"messages[0].scenarioId": "must not be blank"}),  # Infobip refused it: 502
    ):
        response = http.post("/api/v1/campaigns", json=body)
        assert response.status_code == 400, response.text
        details = response.json()["error"]["details"]
        assert {detail["path"]: detail["message"] for detail in details} == problems
    assert http.get("/api/v1/campaigns").json()["items"] == []
    assert simulator.launch_count == 0
