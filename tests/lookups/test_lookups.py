"""Looking up over real HTTP: call search, campaign lists, CSV export, parked results, CLI."""

from __future__ import annotations

import base64
import csv
import io
import json
import sqlite3
from datetime import timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import event, select, update
from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import utcnow
from app.launch.campaigns import create_campaign, fingerprint, get_campaign
from app.launch.request import parse_launch
from app.lookups.reporting import iter_campaign_csv
from app.models import Call, Campaign
from app.simulator.server import Simulator
from tests.conftest import NOTIFY_TOKEN, LiveServer, db, make_token, serve, state

JSON_TYPE = {"Content-Type": "application/json"}
SCENARIO = "6298AA7707903A4ED680B436929681AD"
# Infobip's answers for each outcome (INFOBIP.md §5): status, error, answeredBy.
Code = tuple[int, str, int, str]
HANDSET_ERRORS = (1, "HANDSET_ERRORS")
TO_HANDSET = (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET")
OUTCOMES: dict[str, tuple[Code, Code | None, str | None]] = {
    "answered_human": (TO_HANDSET, (0, "OK", 10000, "NORMAL_HANGUP"), "HUMAN"),
    "answered_machine": (TO_HANDSET, (0, "OK", 10002, "MACHINE_DETECTED"), "MACHINE"),
    "busy": ((2, "UNDELIVERABLE", 97, "BUSY"), (*HANDSET_ERRORS, 10201, "BUSY"), None),
    "no_answer": (
        (2, "UNDELIVERABLE", 96, "NO_ANSWER"),
        (*HANDSET_ERRORS, 10200, "NO_ANSWER"),
        None,
    ),
    "declined": ((2, "UNDELIVERABLE", 98, "CANCELLED"), (*HANDSET_ERRORS, 10203, "REJECTED"), None),
    "failed": (
        (2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED"),
        (3, "OPERATOR_ERRORS", 10102, "DEVICE_UNAVAILABLE"),
        None,
    ),
    "expired": ((4, "EXPIRED", 15, "EXPIRED_EXPIRED"), None, None),
    "rejected": ((5, "REJECTED", 6, "REJECTED_NETWORK"), None, None),
}


def numbers(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:04d}" for n in range(count)]


def launch(
    http: httpx.Client, bulk_id: str, *messages: tuple[list[str], str | None], **fields: Any
) -> list[str]:
    """Launch one message per (numbers, callbackData); return the messageIds in launch order."""
    body = {
        "bulkId": bulk_id,
        "messages": [
            {
                "scenarioId": SCENARIO,
                "destinations": [{"to": to} for to in tos],
                **({"callbackData": data} if data is not None else {}),
                **fields,
            }
            for tos, data in messages
        ],
    }
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    return [m["messageId"] for m in response.json()["messages"]]


def result(
    message_id: str,
    outcome: str,
    *,
    end: str | None = "2026-04-02T07:00:41.000+0000",
    sent: str = "2026-04-02T07:00:01.000+0000",
    duration: int | None = None,
    charged: int | None = None,
    price: tuple[float, str] | None = None,
    collected: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build one Infobip v2 report result that leads to this outcome."""
    status, error, answered_by = OUTCOMES[outcome]
    names = ("groupId", "groupName", "id", "name")
    report: dict[str, Any] = {
        "messageId": message_id,
        "sentAt": sent,
        "voiceCall": {
            "endTime": end,
            "duration": duration,
            "chargedDuration": charged,
            "answeredBy": answered_by,
            "ivr": {"collectedDtmfs": json.dumps(collected) if collected else None},
        },
        "status": dict(zip(names, status, strict=True)),
        "error": {**dict(zip(names, error, strict=True)), "permanent": True} if error else None,
    }
    if price is not None:
        report["price"] = {"pricePerSecond": price[0], "currency": price[1]}
    return report


def notify(live: LiveServer, *results: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"results": list(results)}).encode()
    response = httpx.post(
        f"{live.url}/notify/ivr/{NOTIFY_TOKEN}", content=body, headers=JSON_TYPE, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def pages(http: httpx.Client, url: str, **params: Any) -> list[dict[str, Any]]:
    """Follow `next` to the end; return every page's answer."""
    answers = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = http.get(url, params=query)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        cursor = answers[-1]["next"]
        if cursor is None:
            return answers


def problem(response: httpx.Response, status: int = 400) -> tuple[str, str]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    return error["code"], error["details"][0]["path"] if error["details"] else ""


# Call search


def test_lookup_calls_by_number_is_normalised_like_launch(http: httpx.Client) -> None:
    (croatian,) = launch(http, "hr", (["385911234567"], "crm-1"))
    launch(http, "ch", (["41793026727"], "crm-2"))
    for written in ("+385 91 123 4567", "00385911234567", "385-91-123-4567", "385911234567"):
        found = http.get("/api/v1/calls", params={"to": written}).json()
        assert [c["messageId"] for c in found["items"]] == [croatian], written
        assert found["next"] is None
        assert "history" not in found["items"][0]
    assert http.get("/api/v1/calls", params={"to": "41793026731"}).json()["items"] == []
    code, path = problem(http.get("/api/v1/calls", params={"to": "0911234567"}))
    assert (code, path) == ("validation_error", "to")
    assert problem(http.get("/api/v1/calls", params={"to": "call me"}))[1] == "to"


def test_lookup_calls_filters(http: httpx.Client, live: LiveServer) -> None:
    first = launch(http, "one", (numbers("4179302", 2), "crm-a"), (numbers("4179303", 1), "crm-b"))
    second = launch(http, "two", (numbers("4179304", 2), "crm-a"))
    notify(live, result(first[0], "busy"), result(second[1], "busy"))
    notify(live, result(second[0], "answered_human"))

    def ids(**params: str) -> list[str]:
        response = http.get("/api/v1/calls", params=params)
        assert response.status_code == 200, response.text
        return [c["messageId"] for c in response.json()["items"]]

    assert ids() == list(reversed(first + second))  # newest first
    assert ids(callbackData="crm-a") == [second[1], second[0], first[1], first[0]]
    assert ids(bulkId="one") == list(reversed(first))
    assert ids(outcome="busy") == [second[1], first[0]]
    assert ids(outcome="busy", bulkId="two") == [second[1]]
    assert ids(callbackData="crm-a", outcome="answered_human") == [second[0]]
    assert ids(status="UNDELIVERABLE") == [second[1], first[0]]
    assert ids(to="", callbackData="") == ids()  # empty parameters do not filter
    busy = http.get("/api/v1/calls", params={"outcome": "busy", "bulkId": "two"}).json()
    assert busy["items"][0] == {
        k: v for k, v in http.get(f"/api/v1/calls/{second[1]}").json().items() if k != "history"
    }
    assert problem(http.get("/api/v1/calls", params={"outcome": "answered"}))[1] == "outcome"
    assert problem(http.get("/api/v1/calls", params={"bulkId": "nope"}), 404)[0] == "not_found"


def test_lookup_calls_pagination_edges(http: httpx.Client) -> None:
    launched = launch(http, "seven", (numbers("4179302", 7), None))
    newest_first = list(reversed(launched))
    exact = http.get("/api/v1/calls", params={"limit": 7}).json()
    assert [c["messageId"] for c in exact["items"]] == newest_first
    assert exact["next"] is None
    answers = pages(http, "/api/v1/calls", limit=3)
    assert [len(a["items"]) for a in answers] == [3, 3, 1]
    assert [c["messageId"] for a in answers for c in a["items"]] == newest_first
    by_six = pages(http, "/api/v1/calls", limit=6)
    assert [len(a["items"]) for a in by_six] == [6, 1]
    assert len(http.get("/api/v1/calls").json()["items"]) == 7  # default 50
    for bad in ("0", "501", "-1", "ten", "1.5", " 5"):
        assert problem(http.get("/api/v1/calls", params={"limit": bad})) == (
            "validation_error",
            "limit",
        ), bad
    assert len(http.get("/api/v1/calls", params={"limit": 500}).json()["items"]) == 7


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"id": 3}').decode(),
        base64.urlsafe_b64encode(b'["calls", "3"]').decode(),
        base64.urlsafe_b64encode(b'["calls", 3, 4]').decode(),
        base64.urlsafe_b64encode(b'["campaigns", 3]').decode(),
        "x" * 600,
    ],
)
def test_lookup_bad_cursor_is_400(http: httpx.Client, cursor: str) -> None:
    launch(http, "few", (numbers("4179302", 3), None))
    good = http.get("/api/v1/calls", params={"limit": 1}).json()["next"]
    assert http.get("/api/v1/calls", params={"cursor": good}).status_code == 200
    assert problem(http.get("/api/v1/calls", params={"cursor": cursor})) == (
        "validation_error",
        "cursor",
    )
    # A cursor of one list is refused by another.
    assert problem(http.get("/api/v1/campaigns", params={"cursor": good}))[1] == "cursor"


# Campaigns


def test_lookup_campaigns_newest_first_with_counts(http: httpx.Client, live: LiveServer) -> None:
    launched = {name: launch(http, name, (numbers("4179302", 2), None)) for name in "abc"}
    notify(live, result(launched["b"][0], "busy", duration=0))
    answer = http.get("/api/v1/campaigns").json()
    assert [c["bulkId"] for c in answer["items"]] == ["c", "b", "a"]
    assert answer["next"] is None
    assert answer["items"][1] == http.get("/api/v1/campaigns/b").json()
    assert answer["items"][1]["outcomes"] == {"busy": 1, "pending": 1}
    assert answer["items"][1]["statusGroups"] == {"UNDELIVERABLE": 1, "PENDING": 1}
    answers = pages(http, "/api/v1/campaigns", limit=2)
    assert [[c["bulkId"] for c in a["items"]] for a in answers] == [["c", "b"], ["a"]]


def test_lookup_campaigns_same_creation_time_pages_by_id(http: httpx.Client, app: Flask) -> None:
    for name in "abcde":
        launch(http, name, (numbers("4179302", 1), None))
    with db(app) as session:
        session.execute(update(Campaign).values(created_at=utcnow() - timedelta(days=1)))
        session.commit()
    answers = pages(http, "/api/v1/campaigns", limit=2)
    assert [[c["bulkId"] for c in a["items"]] for a in answers] == [["e", "d"], ["c", "b"], ["a"]]


def test_lookup_campaign_list_queries_do_not_grow_with_the_page(
    http: httpx.Client, app: Flask
) -> None:
    for name in "abcdef":
        launch(http, name, (numbers("4179302", 2), None))
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = state(app).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert len(http.get("/api/v1/campaigns", params={"limit": 2}).json()["items"]) == 2
        small = len(statements)
        statements.clear()
        assert len(http.get("/api/v1/campaigns", params={"limit": 6}).json()["items"]) == 6
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == small


def test_lookup_campaign_calls_filters_and_pages(http: httpx.Client, live: LiveServer) -> None:
    ids = launch(http, "camp", (numbers("4179302", 5), "crm"))
    launch(http, "other", (numbers("4179303", 2), "crm"))
    notify(
        live,
        result(ids[0], "busy"),
        result(ids[1], "answered_human"),
        result(ids[2], "no_answer"),
        result(ids[3], "answered_machine"),
    )
    url = "/api/v1/campaigns/camp/calls"

    def found(**params: Any) -> list[str]:
        return [c["messageId"] for a in pages(http, url, **params) for c in a["items"]]

    assert found() == ids  # launch order
    assert [len(a["items"]) for a in pages(http, url, limit=2)] == [2, 2, 1]
    assert found(limit=1) == ids
    assert found(outcome="busy") == [ids[0]]
    assert found(status="BUSY") == [ids[0]]  # a status name
    assert found(status="UNDELIVERABLE") == [ids[0], ids[2]]  # a group name
    assert found(status="delivered") == [ids[1], ids[3]]
    assert found(status="PENDING_ACCEPTED") == [ids[4]]
    assert found(status="DELIVERED", outcome="answered_machine") == [ids[3]]
    assert found(status="NO_SUCH_STATUS") == []
    missing = http.get("/api/v1/campaigns/nope/calls")
    assert problem(missing, 404)[0] == "not_found"
    assert "nope" in missing.json()["error"]["message"]
    assert problem(http.get(url, params={"outcome": "bogus"}))[1] == "outcome"
    assert problem(http.get(url, params={"limit": "0"}))[1] == "limit"


# CSV export


def test_lookup_csv_is_spreadsheet_safe(http: httpx.Client, live: LiveServer) -> None:
    nasty = [
        '=HYPERLINK("http://x")',
        "+cmd",
        "-2+3",
        "@SUM(A1)",
        "\tTAB",
        "\rCR",
        'plain, "quoted"',
    ]
    messages = [([f"41793026{n:03d}"], data) for n, data in enumerate(nasty)]
    ids = launch(http, "csv", *messages)
    notify(live, result(ids[0], "answered_human", duration=30, charged=60, price=(0.0012, "EUR")))
    response = http.get("/api/v1/campaigns/csv/calls.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="csv-calls.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["callback_data"] for r in rows] == [
        "'=HYPERLINK(\"http://x\")", "'+cmd", "'-2+3", "'@SUM(A1)", "'\tTAB", "'\rCR",
        "plain, \"quoted\"",
    ]  # fmt: skip
    first = rows[0]
    assert first["message_id"] == ids[0]
    assert first["outcome"] == "answered_human"
    assert (first["duration_s"], first["charged_duration_s"]) == ("30", "60")
    assert (first["cost"], first["currency"]) == ("0.072", "EUR")
    assert first["ended_at"] == "2026-04-02T07:00:41.000Z"
    assert rows[1]["cost"] == ""
    assert problem(http.get("/api/v1/campaigns/nope/calls.csv"), 404)[0] == "not_found"


def test_lookup_csv_is_safe_where_the_list_separator_is_not_a_comma(http: httpx.Client) -> None:
    inside = ["x;=1+1;", "a,@SUM(A1)", "tab\t-2+3", "line\n=1", "cr\r+1", "a;b,c - d", "1;;=2"]
    messages = [([f"41793026{n:03d}"], data) for n, data in enumerate(inside)]
    launch(http, "semicolons", *messages)
    text = http.get("/api/v1/campaigns/semicolons/calls.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["callback_data"] for r in rows] == [
        "x;'=1+1;", "a,'@SUM(A1)", "tab\t'-2+3", "line\n'=1", "cr\r'+1", "a;b,c - d", "1;;'=2",
    ]  # fmt: skip
    # Read as a spreadsheet set to another list separator reads it (a bare CR ends a line).
    for separator in (";", "\t"):
        lines = io.StringIO(text, newline=None)
        cells = [cell for row in csv.reader(lines, delimiter=separator) for cell in row]
        assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")], separator
        assert separator != ";" or "'=1+1" in cells


def seed_large_campaign(app: Flask, bulk_id: str, count: int) -> None:
    """Store a campaign of `count` queued calls through the domain functions (no sending)."""
    body = {
        "bulkId": bulk_id,
        "scenarioId": SCENARIO,
        "to": [f"41793{n:06d}" for n in range(count)],
    }
    with db(app) as session:
        request = parse_launch(body, now=utcnow())
        create_campaign(
            session,
            request,
            digest=fingerprint(body),
            batch_size=1000,
            asynchronous=True,
            now=utcnow(),
        )
        session.commit()


def test_lookup_csv_streams_a_large_campaign(
    live: LiveServer, app: Flask, viewer_token: str
) -> None:
    seed_large_campaign(app, "big", 3000)
    headers = {"Authorization": f"Bearer {viewer_token}"}
    with httpx.stream(
        "GET", f"{live.url}/api/v1/campaigns/big/calls.csv", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        pieces = list(response.iter_bytes())
    assert len(pieces) > 1
    lines = b"".join(pieces).decode().splitlines()
    assert lines[0].startswith("message_id,to_number,callback_data,submit_state,")
    assert len(lines) == 3001
    assert len({line.split(",")[0] for line in lines[1:]}) == 3000
    assert lines[1].split(",")[1] == "41793000000"
    assert lines[-1].split(",")[1] == "41793002999"


def test_lookup_csv_reads_in_chunks(app: Flask) -> None:
    seed_large_campaign(app, "before", 5)
    seed_large_campaign(app, "chunks", 7)
    seed_large_campaign(app, "after", 5)
    with db(app) as session:
        campaign_id = get_campaign(session, "chunks").id
        ours = set(session.scalars(select(Call.message_id).where(Call.campaign_id == campaign_id)))
    pieces = list(iter_campaign_csv(state(app).sessions, campaign_id, chunk=3))
    assert len(pieces) == 4  # the header, then 3 + 3 + 1 rows, none of the other campaigns
    assert [piece.count("\r\n") for piece in pieces] == [1, 3, 3, 1]
    exported = {line.split(",")[0] for piece in pieces[1:] for line in piece.splitlines()}
    assert exported == ours


# Parked results


def test_lookup_unmatched_lists_parked_results(http: httpx.Client, live: LiveServer) -> None:
    (known,) = launch(http, "known", (["41793026727"], None))
    strangers = [f"stranger-{n}" for n in range(3)]
    for stranger in strangers:
        notify(live, result(stranger, "busy"))
    notify(live, result(known, "busy"))
    answer = http.get("/api/v1/reports/unmatched").json()
    assert [i["messageId"] for i in answer["items"]] == list(reversed(strangers))
    item = answer["items"][0]
    assert set(item) == {
        "messageId", "receivedAt", "status", "error", "outcome", "occurredAt", "callbackData",
        "inboundReportId",
    }  # fmt: skip
    assert item["status"]["name"] == "BUSY"
    assert item["error"]["id"] == 10201
    assert item["outcome"] == "busy"
    assert item["occurredAt"] == "2026-04-02T07:00:41.000Z"
    assert isinstance(item["inboundReportId"], int)
    answers = pages(http, "/api/v1/reports/unmatched", limit=2)
    assert [len(a["items"]) for a in answers] == [2, 1]
    assert problem(http.get("/api/v1/reports/unmatched", params={"limit": "x"}))[1] == "limit"


def test_lookup_unmatched_disappears_when_the_call_appears(
    http: httpx.Client, live: LiveServer
) -> None:
    notify(live, result("late-call", "busy"))
    assert len(http.get("/api/v1/reports/unmatched").json()["items"]) == 1
    body = {"bulkId": "late", "scenarioId": SCENARIO, "to": "41793026731", "messageId": "late-call"}
    assert http.post("/api/v1/campaigns", json=body).status_code == 201
    assert http.get("/api/v1/reports/unmatched").json() == {"items": [], "next": None}
    assert http.get("/api/v1/calls/late-call").json()["outcome"] == "busy"


# Authentication


GETS = [
    "/api/v1/calls",
    "/api/v1/campaigns",
    "/api/v1/campaigns/auth/calls",
    "/api/v1/campaigns/auth/calls.csv",
    "/api/v1/reports/unmatched",
]


def test_lookup_lists_need_a_token_and_a_viewer_is_enough(
    http: httpx.Client, live: LiveServer, viewer_token: str
) -> None:
    launch(http, "auth", (["41793026727"], None))
    for path in GETS:
        anonymous = httpx.get(live.url + path)
        assert problem(anonymous, 401)[0] == "unauthorized", path
        wrong = httpx.get(live.url + path, headers={"Authorization": "Bearer ivr_wrong"})
        assert wrong.status_code == 401, path
        seen = httpx.get(live.url + path, headers={"Authorization": f"Bearer {viewer_token}"})
        assert seen.status_code == 200, path
    # Listing is read-only: a viewer still cannot launch.
    refused = httpx.post(
        f"{live.url}/api/v1/campaigns",
        json={"scenarioId": SCENARIO, "to": "41793026731"},
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert problem(refused, 403)[0] == "forbidden"


# Command line


# The call's detail


def _far_from_utc(url: str) -> str:
    """The same database, with PostgreSQL's sessions in UTC+05:45 (SQLite has no time zone)."""
    if not url.startswith("postgresql"):
        return url
    options = {"options": "-c TimeZone=Asia/Kathmandu"}
    return make_url(url).update_query_dict(options).render_as_string(hide_password=False)


def test_call_detail_shows_its_history_oldest_first_in_utc(
    settings: Settings, make_app: Any
) -> None:
    app = make_app(settings, database_url=_far_from_utc(settings.database_url))
    if app.extensions["ivrdesk"].engine.dialect.name == "postgresql":
        with state(app).engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW TimeZone").scalar() == "Asia/Kathmandu"
    server = serve(app)
    headers = {"Authorization": f"Bearer {make_token(app, 'operator')}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            (message_id,) = launch(http, "zoned", (["385911234567"], "crm-1"))
            notify(
                server,
                result(
                    message_id,
                    "busy",
                    duration=0,
                    charged=0,
                    end="2026-04-02T07:00:41.500+0000",
                    price=(0.0125, "EUR"),
                ),
            )
            with db(app) as session:  # a call without any event: an empty history
                call = session.scalars(select(Call).where(Call.message_id == message_id)).one()
                session.add(
                    Call(
                        campaign_id=call.campaign_id,
                        message_index=1,
                        message_id="no-events-yet",
                        to_number="385911234568",
                    )
                )
                session.commit()
            detail = http.get(f"/api/v1/calls/{message_id}")
            bare = http.get("/api/v1/calls/no-events-yet")
    finally:
        server.stop()
    assert detail.status_code == 200, detail.text
    shown = detail.json()
    assert [(h["source"], h["submitState"], h["applied"]) for h in shown["history"]] == [
        ("submit", "accepted", True), ("report", None, True),
    ]  # fmt: skip
    received = [h["receivedAt"] for h in shown["history"]]
    assert received == sorted(received)
    assert all(t.endswith("Z") for t in received)
    report = shown["history"][1]
    assert report["occurredAt"] == "2026-04-02T07:00:41.500Z"
    assert report["status"]["name"] == "BUSY"
    assert report["error"]["permanent"] is True
    assert (shown["status"]["name"], shown["outcome"], shown["callbackData"]) == (
        "BUSY", "busy", "crm-1",
    )  # fmt: skip
    assert shown["updatedAt"].endswith("Z")
    assert shown["price"] == {"pricePerSecond": 0.0125, "currency": "EUR"}
    assert bare.status_code == 200, bare.text
    assert bare.json()["history"] == []
    assert bare.json()["submitState"] == "queued"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_get_requests_read_without_a_transaction(app: Flask, live: LiveServer) -> None:
    """GETs read autocommitted on PostgreSQL; a token's last use and writes stay transactional."""
    engine = state(app).engine
    headers = {"Authorization": f"Bearer {make_token(app, 'viewer')}"}
    seen: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _note(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        driver = connection.connection.driver_connection
        seen.append((statement.split()[0], driver.autocommit))

    listed = httpx.get(f"{live.url}/api/v1/campaigns", headers=headers, timeout=30)
    assert listed.status_code == 200
    # (the token check itself runs as an app.db statement, which SQLAlchemy's events
    # do not see; the campaign list is read through the session)
    assert ("UPDATE", False) in seen  # the token's first use, in a transaction of its own
    reads = [autocommit for verb, autocommit in seen if verb == "SELECT"]
    assert reads
    assert all(reads)
    seen.clear()
    with state(app).sessions() as session:  # the same pooled connections, out of autocommit
        session.execute(update(Campaign).values(name="x"))
        session.rollback()
    assert seen == [("UPDATE", False)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_lookups_do_not_wait_for_a_writer(
    app: Flask, live: LiveServer, http: httpx.Client
) -> None:
    """GETs on SQLite take no write lock: they answer while another connection writes."""
    (message_id,) = launch(http, "locked", (["385911234567"], "crm-9"))  # token's use noted
    database = make_url(state(app).settings.database_url).database
    assert database
    writer = sqlite3.connect(database, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # held for the whole block: any writer would wait
    try:
        call = http.get(f"/api/v1/calls/{message_id}", timeout=10)
        assert call.status_code == 200, call.text
        assert call.json()["callbackData"] == "crm-9"
        found = http.get("/api/v1/calls", params={"to": "385911234567"}, timeout=10)
        assert [c["messageId"] for c in found.json()["items"]] == [message_id]
        export = http.get("/api/v1/campaigns/locked/calls.csv", timeout=10)
        assert export.status_code == 200
        assert message_id in export.text
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_cli_calls_show_prints_the_call_and_its_history(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    (message_id,) = launch(http, "cli", (["385911234567"], "crm-7"))
    notify(live, result(message_id, "busy", duration=0))
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["calls", "show", message_id])
    assert shown.exit_code == 0, shown.output
    assert f"messageId     {message_id}" in shown.output
    assert "callbackData  crm-7" in shown.output
    assert "outcome       busy" in shown.output
    assert "status        UNDELIVERABLE/BUSY (97)" in shown.output
    history = shown.output.split("history (times in UTC, oldest first)\n")[1].splitlines()
    assert history[0].split() == [
        "RECEIVED", "OCCURRED", "SOURCE", "SUBMIT", "STATUS", "ERROR", "OUTCOME", "APPLIED",
    ]  # fmt: skip
    assert set(history[1]) == {"-", " "}
    assert history[2].split()[4:7] == ["submit", "accepted", "PENDING/PENDING_ACCEPTED"]
    assert history[3].split()[4:7] == ["report", "-", "UNDELIVERABLE/BUSY"]
    assert history[3].split()[2:4] == ["2026-04-02", "07:00:41Z"]
    assert history[3].rstrip().endswith("yes")
    missing = runner.invoke(args=["calls", "show", "nope"])
    assert missing.exit_code == 1
    assert missing.output == "Error: no call has messageId 'nope'\n"


def test_cli_campaigns_list_and_show(http: httpx.Client, live: LiveServer, app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["campaigns", "list"]).output == "no campaigns yet\n"
    first = launch(http, "spring", (numbers("4179302", 3), None))
    launch(http, "summer", (numbers("4179303", 1), None))
    notify(
        live,
        result(first[0], "answered_human", duration=30, charged=60, price=(0.0012, "EUR")),
        result(first[1], "busy"),
    )
    listed = runner.invoke(args=["campaigns", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == [
        "CREATED", "BULK", "ID", "NAME", "CALLS", "PENDING", "HUMAN", "MACHINE", "BUSY", "NO",
        "ANSWER", "OTHER", "COST",
    ]  # fmt: skip
    assert lines[2].split()[2:] == ["summer", "summer", "1", "1", "0", "0", "0", "0", "0", "-"]
    spring = ["spring", "spring", "3", "1", "1", "0", "1", "0", "0", "0.072", "EUR"]
    assert lines[3].split()[2:] == spring
    assert lines[3].index("spring") == lines[1].index("  -") + 2 == lines[0].index("BULK ID")
    limited = runner.invoke(args=["campaigns", "list", "--limit", "1"])
    assert "summer" in limited.output
    assert "spring" not in limited.output
    assert "raise --limit" in limited.output
    shown = runner.invoke(args=["campaigns", "show", "spring"])
    assert shown.exit_code == 0, shown.output
    assert "calls       3" in shown.output
    assert "cost        0.072 EUR" in shown.output
    outcome_table = shown.output.split("OUTCOME")[1].splitlines()
    assert [row.split() for row in outcome_table[2:]] == [
        ["answered_human", "1", "33.3%"],
        ["busy", "1", "33.3%"],
        ["pending", "1", "33.3%"],
    ]
    missing = runner.invoke(args=["campaigns", "show", "nope"])
    assert (missing.exit_code, missing.output) == (1, "Error: no campaign has bulkId 'nope'\n")


def test_cli_calls_stuck_uses_each_message_validity(
    http: httpx.Client, live: LiveServer, app: Flask, simulator: Simulator
) -> None:
    short = launch(http, "short", (numbers("4179302", 3), None), validityPeriod=60)
    default = launch(http, "default", (numbers("4179303", 2), None))
    simulator.reject_prefixes = ("4179304",)
    refused, accepted = launch(
        http, "mixed", (["41793040000", "41793050000"], None), validityPeriod=60
    )
    notify(live, result(short[0], "busy"))
    two_hours_ago = utcnow() - timedelta(hours=2)
    with db(app) as session:
        session.execute(update(Call).values(created_at=two_hours_ago))
        session.commit()
    runner = app.test_cli_runner()
    stuck = runner.invoke(args=["calls", "stuck"])
    assert stuck.exit_code == 0, stuck.output
    lines = stuck.output.splitlines()
    header = ["MESSAGE", "ID", "BULK", "ID", "TO", "SUBMIT", "STATUS", "CREATED", "FINAL", "DUE"]
    assert lines[0].split() == header
    listed = {line.split()[0] for line in lines[2:-1]}
    # a final status, the default 2880-minute window and a call never dialled are left out
    assert listed == {short[1], short[2], accepted}
    assert refused not in stuck.output
    assert lines[-1] == "3 call(s) without a final status past their validity window"
    older = runner.invoke(args=["calls", "stuck", "--older-than", "90"])
    assert {line.split()[0] for line in older.output.splitlines()[2:-1]} == {
        short[1], short[2], accepted, *default,
    }  # fmt: skip
    younger = runner.invoke(args=["calls", "stuck", "--older-than", "180"])
    assert younger.output == "no call is still without a final status after 180 minute(s)\n"
    limited = runner.invoke(args=["calls", "stuck", "--older-than", "90", "--limit", "1"])
    assert "raise --limit" in limited.output
    bad = runner.invoke(args=["calls", "stuck", "--older-than", "0"])
    assert bad.exit_code == 2


def test_cli_calls_stuck_counts_from_send_at(app: Flask, http: httpx.Client) -> None:
    send_at = (utcnow() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    (scheduled,) = launch(http, "later", (["41793026727"], None), validityPeriod=60, sendAt=send_at)
    with db(app) as session:
        session.execute(update(Call).values(created_at=utcnow() - timedelta(hours=5)))
        session.commit()
    runner = app.test_cli_runner()
    assert "no call is still without" in runner.invoke(args=["calls", "stuck"]).output
    assert scheduled not in runner.invoke(args=["calls", "stuck", "--older-than", "60"]).output
