"""Launching over real HTTP against the fake Infobip: persist first, judge every call."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Batch, Call, CallEvent, Campaign
from app.simulator.server import Faults, Simulator
from tests.conftest import DATA, NOTIFY_TOKEN, LiveServer, db, serve, state


def seed_body() -> dict[str, Any]:
    body = json.loads((DATA / "launch-request.json").read_text())
    # The sample is scheduled in April 2026; keep it valid whenever the test runs.
    del body["messages"][0]["sendAt"]
    return body  # type: ignore[no-any-return]


def flat_body(*numbers: str, bulk_id: str = "flat-1") -> dict[str, Any]:
    return {
        "bulkId": bulk_id,
        "scenarioId": "6298AA7707903A4ED680B436929681AD",
        "from": "41793026700",
        "to": list(numbers),
        "parameters": {"foo": "bar"},
        "callbackData": "DLR callback data",
        "validityPeriod": 720,
    }


def count(app: Flask, model: type) -> int:
    with db(app) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def calls_by_state(app: Flask) -> dict[str, int]:
    with db(app) as session:
        rows = session.execute(select(Call.submit_state, func.count()).group_by(Call.submit_state))
        return {state: n for state, n in rows}


def test_launch_seed_request_is_stored_and_sent(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    response = http.post("/api/v1/campaigns", json=seed_body())
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["bulkId"] == "spring-reminders-2026-04"
    assert answer["name"] == "spring-reminders-2026-04"
    assert [m["submitState"] for m in answer["messages"]] == ["accepted", "accepted"]
    assert answer["messages"][1]["messageId"] == "caller-chosen-id-0002"
    assert answer["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
    assert answer["links"]["campaign"] == "/api/v1/campaigns/spring-reminders-2026-04"
    assert answer["clamped"] == []

    sent = simulator.requests[0]
    message = sent["messages"][0]
    assert sent["bulkId"] == "spring-reminders-2026-04"
    assert message["notifyUrl"] == f"http://127.0.0.1:9/notify/ivr/{NOTIFY_TOKEN}"
    assert message["parameters"] == {"clinic": "Zagreb East", "slot": "09:30"}
    assert message["retry"] == {"minPeriod": 5, "maxPeriod": 30, "maxCount": 3}
    assert message["sendingSpeed"] == {"speed": 20, "timeUnit": "minute"}
    assert message["record"] is False
    assert [d["to"] for d in message["destinations"]] == ["385981112233", "385917654321"]
    assigned = answer["messages"][0]["messageId"]
    assert message["destinations"][0]["messageId"] == assigned

    with db(app) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.client_notify_urls == ["https://crm.example.org/hooks/ivr"]
        events = session.scalars(select(CallEvent).order_by(CallEvent.id)).all()
        assert [(e.source, e.submit_state, e.outcome) for e in events] == [
            ("submit", "accepted", "pending"),
            ("submit", "accepted", "pending"),
        ]


def test_launch_flat_form_is_one_message(http: httpx.Client, simulator: Simulator) -> None:
    response = http.post("/voice/ivr/1/messages", json=flat_body("41793026727", "41793026731"))
    assert response.status_code == 201, response.text
    assert [m["to"] for m in response.json()["messages"]] == ["41793026727", "41793026731"]
    (message,) = simulator.requests[0]["messages"]
    assert message["scenarioId"] == "6298AA7707903A4ED680B436929681AD"
    assert message["callbackData"] == "DLR callback data"


def test_launch_persists_before_sending(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    seen: list[set[str]] = []

    def look(body: dict[str, Any]) -> None:
        with db(app) as session:
            ids = [d["messageId"] for m in body["messages"] for d in m["destinations"]]
            stored = session.scalars(select(Call.message_id).where(Call.message_id.in_(ids)))
            seen.append(set(stored))
            states = set(session.scalars(select(Call.submit_state).where(Call.message_id.in_(ids))))
            assert states == {"submitting"}

    simulator.on_launch = look
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727", "41793026731"))
    assert response.status_code == 201
    assert len(seen) == 1
    assert len(seen[0]) == 2


SENDER_PROBLEM = "must be a numeric sender of 3 to 14 digits, without + or spaces"


@pytest.mark.parametrize(
    ("sender", "sent"),
    [
        pytest.param("123", "123", id="3-digits"),
        pytest.param("41793026700", "41793026700", id="11-digits"),
        pytest.param("1" * 14, "1" * 14, id="14-digits"),
        pytest.param(38517771234, "38517771234", id="json-integer"),
    ],
)
def test_launch_accepts_a_numeric_sender(
    http: httpx.Client, simulator: Simulator, sender: object, sent: str
) -> None:
    body = flat_body("41793026727")
    body["from"] = sender
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    (message,) = simulator.requests[0]["messages"]
    assert message["from"] == sent


@pytest.mark.parametrize(
    ("sender", "problem"),
    [
        pytest.param("12", SENDER_PROBLEM, id="2-digits"),
        pytest.param("1" * 15, SENDER_PROBLEM, id="15-digits"),
        pytest.param("InfoSMS", SENDER_PROBLEM, id="alphanumeric"),
        pytest.param("+41793026700", SENDER_PROBLEM, id="plus"),
        pytest.param("4179 302 67", SENDER_PROBLEM, id="spaces"),
        pytest.param("", SENDER_PROBLEM, id="empty"),
        pytest.param("\u0663\u0663\u0663", SENDER_PROBLEM, id="arabic-indic-digits"),
        pytest.param(12, SENDER_PROBLEM, id="short-integer"),
        pytest.param(True, "must be a string", id="boolean"),
        pytest.param(-123, "must be a string", id="negative-integer"),
    ],
)
@pytest.mark.parametrize("form", ["flat", "messages"])
def test_launch_refuses_a_sender_that_is_not_3_to_14_digits(
    http: httpx.Client, app: Flask, simulator: Simulator, sender: object, problem: str, form: str
) -> None:
    if form == "flat":
        body, path = flat_body("41793026727"), "from"
        body["from"] = sender
    else:
        body, path = seed_body(), "messages[0].from"
        body["messages"][0]["from"] = sender
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 400, response.text
    details = response.json()["error"]["details"]
    assert [d["path"] for d in details] == [path]
    assert details[0]["message"].startswith(problem)
    assert count(app, Campaign) == 0
    assert simulator.launch_count == 0


def test_launch_invalid_body_lists_every_problem_and_stores_nothing(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    body = seed_body()
    body["messages"][0]["destinations"].append({"to": "0981112233"})
    body["messages"][0]["from"] = "12"
    body["messages"][0]["notifyContentType"] = "text/plain"
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    paths = {d["path"] for d in error["details"]}
    assert {
        "messages[0].destinations[2].to",
        "messages[0].from",
        "messages[0].notifyContentType",
    } <= paths
    assert count(app, Campaign) == 0
    assert count(app, Call) == 0
    assert simulator.launch_count == 0


def test_launch_flat_form_errors_use_flat_paths(http: httpx.Client) -> None:
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727", "abc"))
    assert response.status_code == 400
    assert [d["path"] for d in response.json()["error"]["details"]] == ["to[1]"]


def test_launch_reports_clamps(http: httpx.Client, simulator: Simulator) -> None:
    body = flat_body("41793026727")
    body["validityPeriod"] = 5000
    body["retry"] = {"minPeriod": 1, "maxPeriod": 5, "maxCount": 9}
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201
    assert response.json()["clamped"] == [
        {"path": "validityPeriod", "from": 5000, "to": 2880},
        {"path": "retry.maxCount", "from": 9, "to": 4},
    ]
    message = simulator.requests[0]["messages"][0]
    assert message["validityPeriod"] == 2880
    assert message["retry"]["maxCount"] == 4


@pytest.mark.parametrize(
    ("content_type", "raw", "status", "code"),
    [
        ("text/plain", b"{}", 415, "unsupported_media_type"),
        ("application/json", b"{not json", 400, "invalid_json"),
        ("application/json", b'{"to": "\xff"}', 400, "invalid_json"),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
    ],
)
def test_launch_unreadable_bodies_are_refused(
    http: httpx.Client, content_type: str, raw: bytes, status: int, code: str
) -> None:
    response = http.post("/api/v1/campaigns", content=raw, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_launch_rejected_destination_in_a_200(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.reject_prefixes = ("4179302673",)
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727", "41793026731"))
    assert response.status_code == 201
    states = {m["to"]: m["submitState"] for m in response.json()["messages"]}
    assert states == {"41793026727": "accepted", "41793026731": "rejected"}
    with db(app) as session:
        rejected = session.scalars(select(Call).where(Call.to_number == "41793026731")).one()
        assert rejected.outcome == "not_sent"
        assert rejected.status_name == "REJECTED_DESTINATION"
        assert rejected.submit_error == "REJECTED_DESTINATION"


@pytest.mark.parametrize(
    ("faults", "status", "state", "requests", "code"),
    [
        (Faults(mode="401"), 502, "rejected", 1, "infobip_rejected"),
        (Faults(mode="500"), 503, "failed", 3, "infobip_unavailable"),
        (Faults(mode="429"), 503, "failed", 3, "infobip_unavailable"),
        (Faults(mode="429", retry_after=60), 503, "failed", 1, "infobip_unavailable"),
        (Faults(mode="hang", hang_seconds=1.5), 504, "unknown", 1, "infobip_timeout"),
        (Faults(mode="drop"), 504, "unknown", 1, "infobip_timeout"),
    ],
)
def test_launch_infobip_failures_are_recorded_and_never_hidden(
    settings: Any,
    make_app: Any,
    simulator: Simulator,
    faults: Faults,
    status: int,
    state: str,
    requests: int,
    code: str,
) -> None:
    app = make_app(settings, infobip_timeout=0.5)
    from tests.conftest import make_token

    token = make_token(app, "operator")
    simulator.faults = faults
    server = serve(app)
    try:
        response = httpx.post(
            f"{server.url}/api/v1/campaigns",
            json=flat_body("41793026727", "41793026731"),
            headers={"Authorization": f"App {token}"},
            timeout=30,
        )
    finally:
        server.stop()
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"]["code"] == code
    assert {m["submitState"] for m in answer["messages"]} == {state}
    assert simulator.launch_count == requests
    assert calls_by_state(app) == {state: 2}
    with db(app) as session:
        outcomes = set(session.scalars(select(Call.outcome)))
        assert outcomes == ({"unknown"} if state == "unknown" else {"not_sent"})
        assert set(session.scalars(select(CallEvent.submit_state))) == {state}


def test_launch_retries_after_a_500_and_recovers(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.faults = Faults(mode="500", count=1)
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727"))
    assert response.status_code == 201
    assert simulator.launch_count == 2
    assert calls_by_state(app) == {"accepted": 1}


def test_launch_honours_a_short_retry_after(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    simulator.faults = Faults(mode="429", retry_after=1, count=2)
    response = http.post("/api/v1/campaigns", json=flat_body("41793026727"))
    assert response.status_code == 201
    assert simulator.launch_count == 3


def test_launch_in_batches_shares_the_bulk_id(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    numbers = [f"4179302{n:04d}" for n in range(7)]
    response = http.post("/api/v1/campaigns", json=flat_body(*numbers))
    assert response.status_code == 201
    assert len(simulator.requests) == 3  # batch size 3 in the test settings
    assert {r["bulkId"] for r in simulator.requests} == {"flat-1"}
    assert count(app, Batch) == 3


def test_launch_repost_is_idempotent(http: httpx.Client, app: Flask, simulator: Simulator) -> None:
    body = flat_body("41793026727")
    first = http.post("/api/v1/campaigns", json=body)
    again = http.post("/api/v1/campaigns", json=copy.deepcopy(body))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["messages"] == first.json()["messages"]
    assert simulator.launch_count == 1
    body["parameters"] = {"foo": "other"}
    conflict = http.post("/api/v1/campaigns", json=body)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["details"][0]["path"] == "bulkId"
    assert simulator.launch_count == 1
    assert count(app, Campaign) == 1


def test_launch_message_id_used_by_another_call_is_409(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    first = seed_body()
    assert http.post("/api/v1/campaigns", json=first).status_code == 201
    second = seed_body()
    second["bulkId"] = "another"
    response = http.post("/api/v1/campaigns", json=second)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == [
        {
            "path": "messages[0].destinations[1].messageId",
            "message": "messageId 'caller-chosen-id-0002' is already used by another call",
        }
    ]
    assert count(app, Campaign) == 1
    assert simulator.launch_count == 1


def test_launch_not_configured_is_503_and_stores_nothing(
    settings: Any, make_app: Any, simulator: Simulator
) -> None:
    from tests.conftest import make_token

    app = make_app(settings, infobip_base_url=None)
    token = make_token(app, "operator")
    server = serve(app)
    try:
        response = httpx.post(
            f"{server.url}/api/v1/campaigns",
            json=flat_body("41793026727"),
            headers={"Authorization": f"Bearer {token}"},
        )
        lookup = httpx.get(
            f"{server.url}/api/v1/campaigns/flat-1", headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        server.stop()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_configured"
    assert "IVR_INFOBIP_BASE_URL" in error["message"]
    assert lookup.status_code == 404  # lookups keep working
    assert count(app, Campaign) == 0
    assert simulator.launch_count == 0


def test_launch_auth_and_roles(live: LiveServer, viewer_token: str, operator_token: str) -> None:
    url = f"{live.url}/api/v1/campaigns"
    body = flat_body("41793026727")
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer ivr_wrong"})
    assert wrong.status_code == 401
    viewer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {viewer_token}"})
    assert viewer.status_code == 403
    assert viewer.json()["error"]["code"] == "forbidden"
    operator = httpx.post(url, json=body, headers={"Authorization": f"App {operator_token}"})
    assert operator.status_code == 201
    seen = httpx.get(f"{url}/flat-1", headers={"Authorization": f"Bearer {viewer_token}"})
    assert seen.status_code == 200


def test_lookup_call_and_campaign_shapes(http: httpx.Client) -> None:
    launched = http.post("/api/v1/campaigns", json=seed_body()).json()
    message_id = launched["messages"][0]["messageId"]
    call = http.get(f"/api/v1/calls/{message_id}").json()
    assert call["bulkId"] == "spring-reminders-2026-04"
    assert call["campaignId"] == launched["campaignId"]
    assert call["to"] == "385981112233"
    assert call["callbackData"] == "patient-batch-17"
    assert call["submitState"] == "accepted"
    assert call["outcome"] == "pending"
    assert call["status"]["groupName"] == "PENDING"
    assert call["error"] is None
    assert [h["source"] for h in call["history"]] == ["submit"]
    assert call["history"][0]["applied"] is True
    campaign = http.get("/api/v1/campaigns/spring-reminders-2026-04").json()
    assert campaign["totalCalls"] == 2
    assert campaign["submitStates"] == {"accepted": 2}
    assert campaign["statusGroups"] == {"PENDING": 2}
    assert campaign["outcomes"] == {"pending": 2}
    assert campaign["scenarioId"] == "A1B2C3D4E5F60718293A4B5C6D7E8F90"
    assert campaign["cost"] == {}
    missing = http.get("/api/v1/calls/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_launch_async_is_queued_then_dispatched(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    from app.launch.dispatch import dispatch_once

    response = http.post(
        "/api/v1/campaigns",
        json=flat_body("41793026727", "41793026731"),
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 202
    assert {m["submitState"] for m in response.json()["messages"]} == {"queued"}
    assert simulator.launch_count == 0
    assert dispatch_once(state(app).submitter("dispatch")) == 1
    assert calls_by_state(app) == {"accepted": 2}
    assert dispatch_once(state(app).submitter("dispatch")) == 0
    assert simulator.launch_count == 1


def test_launch_async_answers_202_when_the_dispatcher_was_quicker(
    http: httpx.Client, app: Flask, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dispatcher runs for real, in the moment between the campaign's commit and
    # the answer (found by bench/soak.py: 4 asynchronous launches in 268 got 201).
    from app.launch.answer import launch_answer
    from app.launch.dispatch import dispatch_once
    from app.web import api

    def dispatch_then_answer(session: Session, campaign: Campaign) -> dict[str, Any]:
        session.commit()  # SQLite: release the write lock the count of submit states took
        dispatch_once(state(app).submitter("dispatch"))
        return launch_answer(session, campaign)

    monkeypatch.setattr(api, "launch_answer", dispatch_then_answer)
    response = http.post(
        "/api/v1/campaigns",
        json=flat_body("41793026727", "41793026731"),
        headers={"Prefer": "respond-async"},
    )
    assert response.status_code == 202
    assert {m["submitState"] for m in response.json()["messages"]} == {"accepted"}
    assert simulator.launch_count == 1


def test_launch_above_sync_limit_is_asynchronous(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    numbers = [f"41793{n:06d}" for n in range(51)]  # sync limit 50 in the test settings
    response = http.post("/api/v1/campaigns", json=flat_body(*numbers))
    assert response.status_code == 202
    assert simulator.launch_count == 0
    assert calls_by_state(app) == {"queued": 51}
