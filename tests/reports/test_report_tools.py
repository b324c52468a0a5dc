"""Operator tools for reports: replay a stored body, pull what Infobip kept; outages."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from app.models import Call, CallEvent, InboundReport
from app.simulator.server import ReportPlan, Simulator
from tests.conftest import LiveServer, db, serve
from tests.reports.test_reports import FIRST, JSON_TYPE, launch_seed, notify, sample


def test_reports_replay_reprocesses_a_stored_body(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    assert notify(live, sample("report-v2-answered.json"), JSON_TYPE).json()["applied"] == 1
    runner = app.test_cli_runner()
    again = runner.invoke(args=["reports", "replay", "1"])
    assert again.exit_code == 0, again.output
    assert "report 1: applied 0, notApplied 0, duplicates 1" in again.output
    missing = runner.invoke(args=["reports", "replay", "999"])
    assert missing.exit_code == 1
    assert "no stored report has id 999" in missing.output


def test_reports_replay_applies_a_body_that_failed_before(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    with db(app) as session:  # a body stored while its items could not be applied
        body = sample("report-v2-answered.json")
        session.add(
            InboundReport(
                content_type="application/json", peer="127.0.0.1", body=body, size=len(body)
            )
        )
        session.commit()
        inbound_id = session.scalar(select(func.max(InboundReport.id)))
    result = app.test_cli_runner().invoke(args=["reports", "replay", str(inbound_id)])
    assert result.exit_code == 0, result.output
    assert "applied 1" in result.output
    with db(app) as session:
        answered = session.scalars(select(Call).where(Call.message_id == FIRST)).one()
        assert answered.outcome == "answered_human"


@pytest.mark.parametrize("reports_mode", ["pull"])
def test_reports_pull_stores_then_applies_until_empty(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    # Pull mode: calls are sent without a notifyUrl, so Infobip keeps their reports and
    # `reports pull` fetches them.
    simulator.plan = ReportPlan(delay=0.01, mix={"busy": 1.0})
    numbers = [f"4179302{n:04d}" for n in range(5)]
    assert (
        http.post("/api/v1/campaigns", json={"scenarioId": "S", "to": numbers}).status_code == 201
    )
    assert simulator.wait_idle(10)
    result = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert result.exit_code == 0, result.output
    assert "pulled 5 report(s): applied 5" in result.output
    with db(app) as session:
        assert set(session.scalars(select(Call.outcome))) == {"busy"}
        sources = session.scalars(select(CallEvent.source).where(CallEvent.source != "submit"))
        assert set(sources) == {"pull"}
        assert session.scalars(select(InboundReport.peer)).all() == ["pull"]
    again = app.test_cli_runner().invoke(args=["reports", "pull"])
    assert "pulled 0 report(s)" in again.output


def test_notify_poisoned_item_leaves_the_others_applied(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    numbers = [f"4179302{n:04d}" for n in range(20)]
    launched = http.post("/api/v1/campaigns", json={"scenarioId": "S", "to": numbers}).json()
    results: list[Any] = []
    for index, message in enumerate(launched["messages"]):
        item: dict[str, Any] = {
            "messageId": message["messageId"],
            "voiceCall": {"endTime": "2036-01-01T10:00:00.000+0000"},
            "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 97, "name": "BUSY"},
        }
        if index == 7:
            item["voiceCall"]["endTime"] = "not a time"
        if index == 11:
            item["callbackData"] = "x" * 5000  # longer than the column: cannot be stored
        results.append(item)
    results.append("not an object")
    response = notify(live, json.dumps({"results": results}).encode(), JSON_TYPE)
    assert response.status_code == 200
    answer = response.json()
    assert answer["applied"] == 18
    assert answer["invalid"] == 3
    invalid = {i["index"]: i["reason"] for i in answer["items"] if i["result"] == "invalid"}
    assert set(invalid) == {7, 11, 20}
    assert "endTime" in invalid[7]
    with db(app) as session:
        outcomes = session.execute(select(Call.outcome, func.count()).group_by(Call.outcome))
        assert dict(outcomes.all()) == {"busy": 18, "pending": 2}


def test_notify_database_unavailable_is_503_with_retry_after(settings: Any, make_app: Any) -> None:
    app = make_app(settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    server = serve(app)
    try:
        response = notify(server, sample("report-v2-answered.json"), JSON_TYPE)
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "unavailable"


def test_dispatcher_sweep_applies_parked_reports(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    from app.launch.dispatch import sweep_parked
    from tests.conftest import state

    launch_seed(http)
    with db(app) as session:  # as if the call had been imported after its report arrived
        session.execute(update(Call).where(Call.message_id == FIRST).values(message_id="moved"))
        session.commit()
    assert notify(live, sample("report-v2-answered.json"), JSON_TYPE).json()["unmatched"] == 1
    with db(app) as session:
        session.execute(update(Call).where(Call.message_id == "moved").values(message_id=FIRST))
        session.commit()
    assert sweep_parked(state(app).sessions) == 1
    assert sweep_parked(state(app).sessions) == 0
    with db(app) as session:
        answered = session.scalars(select(Call).where(Call.message_id == FIRST)).one()
        assert answered.outcome == "answered_human"


def test_notify_out_of_range_numbers_are_invalid_on_both_databases(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    result = {
        "messageId": FIRST,
        "voiceCall": {"endTime": "2036-01-01T10:00:00.000+0000", "duration": 3_000_000_000},
        "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 97, "name": "BUSY"},
    }
    answer = notify(live, json.dumps({"results": [result]}).encode(), JSON_TYPE).json()
    assert answer["invalid"] == 1
    assert answer["items"][0]["reason"] == "duration is out of range: 3000000000"


def test_notify_falls_back_to_item_by_item_when_the_database_refuses_one(
    http: httpx.Client, live: LiveServer, app: Flask, engine: Any
) -> None:
    from sqlalchemy import text

    numbers = [f"4179302{n:04d}" for n in range(5)]
    launched = http.post("/api/v1/campaigns", json={"scenarioId": "S", "to": numbers}).json()
    poisoned = launched["messages"][2]["messageId"]
    # A trigger stands in for any refusal the checks before the database cannot foresee.
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.message_id = '{poisoned}' AND NEW.source = 'report' THEN "
                "RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ))  # fmt: skip
            connection.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON call_events "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            ))  # fmt: skip
        else:
            connection.execute(text(
                "CREATE TRIGGER poison BEFORE INSERT ON call_events "
                f"WHEN NEW.message_id = '{poisoned}' AND NEW.source = 'report' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            ))  # fmt: skip
    try:
        results = [
            {
                "messageId": m["messageId"],
                "voiceCall": {"endTime": "2036-01-01T10:00:00.000+0000"},
                "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 97, "name": "BUSY"},
            }
            for m in launched["messages"]
        ]
        answer = notify(live, json.dumps({"results": results}).encode(), JSON_TYPE).json()
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER poison" + (
                " ON call_events" if engine.dialect.name == "postgresql" else "")))  # fmt: skip
            if engine.dialect.name == "postgresql":
                connection.execute(text("DROP FUNCTION refuse_poison()"))
    assert (answer["applied"], answer["invalid"]) == (4, 1)
    assert answer["items"][2]["reason"].startswith("could not be stored")
    with db(app) as session:
        assert session.scalar(select(func.count()).select_from(InboundReport)) == 1
        outcomes = session.execute(select(Call.outcome, func.count()).group_by(Call.outcome))
        assert dict(outcomes.all()) == {"busy": 4, "pending": 1}


def test_notify_nul_characters_are_invalid_on_both_databases(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http)
    result = {
        "messageId": FIRST,
        "callbackData": "a\u0000b",
        "voiceCall": {"endTime": "2036-01-01T10:00:00.000+0000"},
        "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 97, "name": "BUSY"},
    }
    answer = notify(live, json.dumps({"results": [result]}).encode(), JSON_TYPE).json()
    assert answer["invalid"] == 1
    assert answer["items"][0]["reason"] == "callback_data contains a NUL character"


def test_ids_with_nul_are_not_found(http: httpx.Client, live: LiveServer, app: Flask) -> None:
    assert http.get("/api/v1/calls/a%00b").status_code == 404
    assert http.get("/api/v1/campaigns/a%00b").status_code == 404
