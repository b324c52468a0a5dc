"""The notify endpoint: raw first, exact history, precedence, duplicates, parking."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.db import json_may_hold_unstorable
from app.models import Call, CallEvent, InboundReport
from app.simulator.server import ReportPlan, Simulator
from tests.conftest import DATA, NOTIFY_TOKEN, LiveServer, db, state

FIRST = "0f6c1d52-3b1e-4d55-9a34-2c1b7d9e0a11"
SECOND = "caller-chosen-id-0002"
STRANGER = "4c1e8a90-77d2-4f0e-8d65-0b7a3c2e9f31"
JSON_TYPE = {"Content-Type": "application/json"}
XML_TYPE = {"Content-Type": "application/xml; charset=UTF-8"}


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def launch_seed(http: httpx.Client, *, also: tuple[str, ...] = ()) -> None:
    body = json.loads(sample("launch-request.json"))
    message = body["messages"][0]
    del message["sendAt"]
    message["destinations"][0]["messageId"] = FIRST
    for number, message_id in enumerate(also):
        message["destinations"].append({"to": f"38595555{number:04d}", "messageId": message_id})
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text


def notify(
    live: LiveServer, body: bytes, headers: dict[str, str], token: str = NOTIFY_TOKEN
) -> httpx.Response:
    return httpx.post(f"{live.url}/notify/ivr/{token}", content=body, headers=headers, timeout=30)


def call(app: Flask, message_id: str) -> Call:
    with db(app) as session:
        return session.scalars(select(Call).where(Call.message_id == message_id)).one()


def events(app: Flask, message_id: str) -> list[CallEvent]:
    with db(app) as session:
        query = select(CallEvent).where(CallEvent.message_id == message_id).order_by(CallEvent.id)
        return list(session.scalars(query))


def count(app: Flask, model: type) -> int:
    with db(app) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_notify_json_report_moves_the_call_and_keeps_history(
    http: httpx.Client, live: LiveServer, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    launch_seed(http)
    response = notify(live, sample("report-v2-answered.json"), JSON_TYPE)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "applied": 1, "notApplied": 0, "duplicates": 0, "unmatched": 0, "invalid": 0,
        "items": [{"index": 0, "messageId": FIRST, "result": "applied", "reason": None}],
        "itemsOmitted": 0,
    }  # fmt: skip
    answered = call(app, FIRST)
    assert answered.status_name == "DELIVERED_TO_HANDSET"
    assert answered.outcome == "answered_human"
    assert answered.duration == 32
    assert answered.charged_duration == 60
    assert answered.answered_by == "HUMAN"
    assert answered.collected is not None
    assert answered.collected["collectedDtmfs"] == {"confirm": "1"}
    detail = http.get(f"/api/v1/calls/{FIRST}").json()
    assert detail["cost"] == pytest.approx(0.072)
    assert detail["price"] == {"pricePerSecond": 0.0012, "currency": "EUR"}
    assert [(h["source"], h["applied"]) for h in detail["history"]] == [
        ("submit", True),
        ("report", True),
    ]
    assert detail["history"][1]["occurredAt"] == "2026-04-02T07:00:41.500Z"
    assert count(app, InboundReport) == 1
    assert "fell back" not in caplog.text  # the one-report path worked on its own


def test_notify_xml_report_is_the_same_event(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    assert notify(live, sample("report-v2.xml"), XML_TYPE).json()["applied"] == 1
    again = notify(live, sample("report-v2-answered.json"), JSON_TYPE).json()
    assert again["duplicates"] == 1
    reports = [e for e in events(app, FIRST) if e.source == "report"]
    assert len(reports) == 1
    assert reports[0].duplicates == 1
    assert call(app, FIRST).outcome == "answered_human"


def test_notify_v1_report_is_recorded(http: httpx.Client, live: LiveServer, app: Flask) -> None:
    launch_seed(http)
    result = notify(live, sample("report-v1.json"), JSON_TYPE).json()
    assert result["applied"] == 1
    answered = call(app, FIRST)
    assert answered.outcome == "answered_human"
    assert answered.error_id == 5000
    assert answered.collected == {
        "collectedDtmfs": {"confirm": "1"},
        "collectedMappedDtmfs": None,
        "spokenInput": None,
        "matchedSpokenInput": None,
    }


def test_notify_batch_parks_an_unknown_message_id_until_its_call_appears(
    http: httpx.Client, live: LiveServer, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    launch_seed(http)
    result = notify(live, sample("report-v2-batch.json"), JSON_TYPE).json()
    assert (result["applied"], result["unmatched"]) == (1, 1)
    assert result["items"][1]["result"] == "unmatched"
    assert call(app, SECOND).outcome == "no_answer"
    (parked,) = events(app, STRANGER)
    assert parked.call_id is None
    assert parked.reason == "unmatched"
    body = json.loads(sample("launch-request.json"))
    del body["messages"][0]["sendAt"]
    body["bulkId"] = "second-campaign"
    body["messages"][0]["destinations"] = [{"to": "385955550000", "messageId": STRANGER}]
    assert http.post("/api/v1/campaigns", json=body).status_code == 201
    matched = call(app, STRANGER)
    assert matched.outcome == "busy"
    # The submit answer (accepted, not final) comes after the final report: it sets the
    # submit state but not the status.
    history = [(e.source, e.applied, e.reason) for e in events(app, STRANGER)]
    assert history == [("report", True, None), ("submit", False, "after_final")]
    assert matched.submit_state == "accepted"
    assert "fell back" not in caplog.text  # the batch path worked on its own


def report(
    message_id: str, group: int, status_id: int, name: str, end: str | None
) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "sentAt": "2026-04-02T07:00:01.000+0000",
        "voiceCall": {"endTime": end, "duration": 5},
        "status": {"groupId": group, "groupName": "X", "id": status_id, "name": name},
    }


def post_results(live: LiveServer, *results: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"results": list(results)}).encode()
    response = notify(live, body, JSON_TYPE)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("first", "second", "winner", "reason"),
    [
        # a final always beats a non-final, whatever the times
        ((3, 5, "DELIVERED_TO_HANDSET", "07:00:10"), (1, 3, "PENDING_WAITING_DELIVERY", "07:00:20"),
         "DELIVERED_TO_HANDSET", "after_final"),
        ((1, 3, "PENDING_WAITING_DELIVERY", "07:00:20"), (2, 97, "BUSY", "07:00:10"),
         "BUSY", None),
        # DELIVERED_TO_OPERATOR is not final
        ((3, 2, "DELIVERED_TO_OPERATOR", "07:00:30"), (2, 96, "NO_ANSWER", "07:00:10"),
         "NO_ANSWER", None),
        # two finals: the later wins; an equal time keeps the current one
        ((2, 97, "BUSY", "07:00:20"), (3, 5, "DELIVERED_TO_HANDSET", "07:00:10"), "BUSY", "late"),
        ((2, 97, "BUSY", "07:00:10"), (3, 5, "DELIVERED_TO_HANDSET", "07:00:20"),
         "DELIVERED_TO_HANDSET", None),
        ((2, 97, "BUSY", "07:00:10"), (2, 96, "NO_ANSWER", "07:00:10"), "BUSY", "late"),
        # two non-finals: the later wins
        ((1, 7, "PENDING_ENROUTE", "07:00:20"), (1, 3, "PENDING_WAITING_DELIVERY", "07:00:10"),
         "PENDING_ENROUTE", "late"),
    ],
)  # fmt: skip
def test_notify_precedence(
    http: httpx.Client,
    live: LiveServer,
    app: Flask,
    first: tuple[int, int, str, str],
    second: tuple[int, int, str, str],
    winner: str,
    reason: str | None,
) -> None:
    launch_seed(http)

    def make(spec: tuple[int, int, str, str]) -> dict[str, Any]:
        group, status_id, name, clock = spec
        return report(
            FIRST, group, status_id, name, f"2036-04-02T{clock}.000+0000"
        )  # after the submit event

    assert post_results(live, make(first))["applied"] == 1
    second_result = post_results(live, make(second))["items"][0]
    assert second_result["result"] == ("applied" if reason is None else "not_applied")
    assert second_result["reason"] == reason
    assert call(app, FIRST).status_name == winner
    history = events(app, FIRST)
    assert len(history) == 3  # submit + both reports, applied or not
    assert history[-1].reason == reason


def test_notify_same_report_from_many_workers_is_recorded_once(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    body = sample("report-v2-answered.json")
    start = threading.Barrier(8)
    answers: list[dict[str, Any]] = []

    def post() -> None:
        start.wait()
        answers.append(notify(live, body, JSON_TYPE).json())

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a["applied"] for a in answers) == [0] * 7 + [1]
    assert sum(a["duplicates"] for a in answers) == 7
    (event,) = [e for e in events(app, FIRST) if e.source == "report"]
    assert event.duplicates == 7
    assert count(app, InboundReport) == 8


def test_notify_refusals(http: httpx.Client, live: LiveServer, app: Flask) -> None:
    launch_seed(http)
    body = sample("report-v2-answered.json")
    wrong = notify(live, body, JSON_TYPE, token="not-the-token-0123456789")
    assert wrong.status_code == 401
    assert count(app, InboundReport) == 0
    unsupported = notify(live, b"hello", {"Content-Type": "text/plain"})
    assert unsupported.status_code == 415
    garbage = notify(live, b"{not json", JSON_TYPE)
    assert garbage.status_code == 400
    assert garbage.json()["error"]["code"] == "invalid_report"
    with db(app) as session:
        stored = session.scalars(select(InboundReport).order_by(InboundReport.id)).all()
        assert [r.body for r in stored] == [b"hello", b"{not json"]
        assert stored[1].parse_error is not None
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r><results/></r>'
    assert notify(live, bomb, XML_TYPE).status_code == 400
    assert httpx.get(f"{live.url}/notify/ivr/{NOTIFY_TOKEN}").status_code == 200
    assert httpx.head(f"{live.url}/notify/ivr/{NOTIFY_TOKEN}").status_code == 200
    assert call(app, FIRST).outcome == "pending"


def test_notify_size_limit_and_rotation(settings: Any, make_app: Any, simulator: Simulator) -> None:
    from tests.conftest import serve

    app = make_app(
        settings, max_report_bytes=2048, notify_tokens=("new-token-0123456789", NOTIFY_TOKEN)
    )
    server = serve(app)
    try:
        big = notify(server, b"{" + b" " * 4096 + b"}", JSON_TYPE)
        assert big.status_code == 413
        old = notify(server, b'{"results": []}', JSON_TYPE)
        assert old.status_code == 200
        assert old.json()["items"] == []
    finally:
        server.stop()
    assert count(app, InboundReport) == 1


def test_notify_allowlist_uses_the_peer_address(settings: Any, make_app: Any) -> None:
    import ipaddress

    from tests.conftest import serve

    app = make_app(settings, notify_allow_cidrs=(ipaddress.ip_network("193.105.74.0/24"),))
    server = serve(app)
    try:
        forged = {**JSON_TYPE, "X-Forwarded-For": "193.105.74.10"}
        refused = notify(server, b'{"results": []}', forged)
    finally:
        server.stop()
    assert refused.status_code == 403
    assert count(app, InboundReport) == 0


def test_notify_end_to_end_with_duplicates_and_reordering(
    http: httpx.Client, live: LiveServer, app: Flask, simulator: Simulator
) -> None:
    state(app).settings = replace(state(app).settings, public_url=live.url)
    simulator.plan = ReportPlan(delay=0.05, duplicate_rate=0.5, reorder=True, batch_size=3, seed=7)
    numbers = [f"4179302{n:04d}" for n in range(30)]
    body = {"bulkId": "e2e", "scenarioId": "S1", "to": numbers}
    assert http.post("/api/v1/campaigns", json=body).status_code == 201
    assert simulator.wait_idle(30)
    with db(app) as session:
        outcomes = dict(
            session.execute(select(Call.outcome, func.count()).group_by(Call.outcome)).all()
        )
        assert "pending" not in outcomes
        assert sum(outcomes.values()) == 30
        reports = session.scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.source == "report")
        )
        duplicates = session.scalar(select(func.sum(CallEvent.duplicates)))
    sent = [json.loads(b) for _, _, b in simulator.reports_sent()]
    posted = [r for s in sent for r in s["results"]]
    distinct = {(r["messageId"], r["status"]["id"], r["voiceCall"]["endTime"]) for r in posted}
    assert reports == len(distinct)
    assert reports + (duplicates or 0) == len(posted)


def test_notify_batch_binds_message_ids_that_need_quoting(
    http: httpx.Client, live: LiveServer, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    # A batch binds its messageIds as one array literal (app.db.array_literal). A launch
    # takes only letters, digits and . _ : - (the word NULL among them), but Infobip
    # may name a call anything: a call renamed in the database stands for one. Quotes,
    # backslashes, braces, commas and spaces must round-trip, both for a call found and
    # for a report parked under exactly its own id.
    awkward = 'say "hi", {x} \\ y'
    launch_seed(http, also=("NULL", "renamed"))
    with db(app) as session:
        session.execute(update(Call).where(Call.message_id == "renamed").values(message_id=awkward))
        session.commit()
    ours = ("NULL", awkward)
    strangers = ('quo"te', "back\\slash", "{brace,comma}", " spaced ", "wörd")
    results = [report(message_id, 2, 97, "BUSY", "2036-04-02T07:00:10.000+0000")
               for message_id in ours + strangers]  # fmt: skip
    answer = post_results(live, *results)
    assert (answer["applied"], answer["unmatched"], answer["invalid"]) == (2, 5, 0)
    assert {call(app, message_id).outcome for message_id in ours} == {"busy"}
    for message_id in strangers:
        (parked,) = events(app, message_id)
        assert (parked.call_id, parked.reason) == (None, "unmatched")
    again = post_results(live, *results)  # every key stored: counted, not appended
    assert again["duplicates"] == len(results)
    assert [events(app, message_id)[-1].duplicates for message_id in ours + strangers] == [1] * 7
    assert "fell back" not in caplog.text  # the batch statements took them as they are


@pytest.mark.parametrize(
    ("escape", "reason"),
    [("a\\u0000b", "contains a NUL character"),
     ("\\ud800", "contains unpaired surrogates (not valid Unicode)"),
     ("\\uDFFF", "contains unpaired surrogates (not valid Unicode)")],
)  # fmt: skip
def test_notify_batch_refuses_only_the_result_with_unstorable_text(
    http: httpx.Client,
    live: LiveServer,
    app: Flask,
    caplog: pytest.LogCaptureFixture,
    escape: str,
    reason: str,
) -> None:
    # A UTF-8 JSON body without \u0000 or surrogate escapes skips the scan of every text
    # (app.db.json_may_hold_unstorable); one with them is scanned value by value.
    launch_seed(http, also=("good-one", "bad-one"))
    body = json.dumps({"results": [
        report("good-one", 2, 97, "BUSY", "2036-04-02T07:00:10.000+0000"),
        {**report("bad-one", 2, 97, "BUSY", "2036-04-02T07:00:10.000+0000"),
         "callbackData": "@@"},
        report(FIRST, 2, 97, "BUSY", "2036-04-02T07:00:10.000+0000"),
    ]}).replace('"@@"', f'"{escape}"').encode()  # fmt: skip
    answer = notify(live, body, JSON_TYPE).json()
    assert [item["result"] for item in answer["items"]] == ["applied", "invalid", "applied"]
    assert answer["items"][1]["reason"] == f"callback_data {reason}"
    assert call(app, "bad-one").outcome == "pending"
    assert {call(app, message_id).outcome for message_id in ("good-one", FIRST)} == {"busy"}
    assert "fell back" not in caplog.text  # found by the batch, not by a failed statement


def test_only_nul_and_surrogate_escapes_make_json_suspect() -> None:
    assert not json_may_hold_unstorable('{"a": "wörd 😀 \\u00e9 \\n \\\\ u0000"}'.encode())
    assert json_may_hold_unstorable(b'{"a": "\\u0000"}')
    assert json_may_hold_unstorable(b'{"a": "\\ud83d\\ude00"}')  # a pair: the scan decides
    assert json_may_hold_unstorable(b'{"a": "\\\\u0000"}')  # an escaped backslash: likewise
