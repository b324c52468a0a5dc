"""One precedence table through every path that records a report, on both databases.

DESIGN.md "One recording path": one report per POST (on PostgreSQL the notify lane's
single statement), several results for one call in one POST, a batch, a batch the
database refuses part of (split in savepoints), a parked report re-matched at launch,
a replayed stored body (the path pulled bodies take), an entry of Infobip's voice logs
(the reconciliation's), and a submit answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, select, text

from app.db import utcnow
from app.infobip.client import LogEntry
from app.infobip.codes import Status, is_final, supersedes
from app.models import Call, CallEvent, InboundReport
from app.reports.reconcile import log_candidate
from app.reports.record import record
from app.reports.replay import replay_inbound
from tests.conftest import LiveServer, db, state
from tests.reports.test_reports import (
    FIRST,
    JSON_TYPE,
    call,
    events,
    launch_seed,
    notify,
    post_results,
    sample,
)

STATUSES = {
    "PENDING_WAITING_DELIVERY": (1, 3),
    "PENDING_ENROUTE": (1, 7),
    "DELIVERED_TO_OPERATOR": (3, 2),
    "DELIVERED_TO_HANDSET": (3, 5),
    "BUSY": (2, 97),
    "NO_ANSWER": (2, 96),
}
# (first report, second report) as (status name, end time or None); the winner and the
# second one's reason follow from app.infobip.codes.supersedes, asserted below as well.
TABLE = [
    (("DELIVERED_TO_HANDSET", "07:00:10"), ("PENDING_WAITING_DELIVERY", "07:00:20")),
    (("PENDING_WAITING_DELIVERY", "07:00:20"), ("BUSY", "07:00:10")),
    (("DELIVERED_TO_OPERATOR", "07:00:30"), ("NO_ANSWER", "07:00:10")),
    (("BUSY", "07:00:20"), ("DELIVERED_TO_HANDSET", "07:00:10")),
    (("BUSY", "07:00:10"), ("DELIVERED_TO_HANDSET", "07:00:20")),
    (("BUSY", "07:00:10"), ("NO_ANSWER", "07:00:10")),
    (("PENDING_ENROUTE", "07:00:20"), ("PENDING_WAITING_DELIVERY", "07:00:10")),
    (("PENDING_ENROUTE", "07:00:10"), ("PENDING_WAITING_DELIVERY", "07:00:20")),
    (("BUSY", "07:00:10"), ("NO_ANSWER", None)),
    (("BUSY", None), ("NO_ANSWER", "07:00:20")),
]
EXPECTED = {
    0: ("DELIVERED_TO_HANDSET", "after_final"),
    1: ("BUSY", None),
    2: ("NO_ANSWER", None),
    3: ("BUSY", "late"),
    4: ("DELIVERED_TO_HANDSET", None),
    5: ("BUSY", "late"),
    6: ("PENDING_ENROUTE", "late"),
    7: ("PENDING_WAITING_DELIVERY", None),
    8: ("BUSY", "late"),
    9: ("NO_ANSWER", None),
}
PATHS = ["single", "one_post", "batch", "refused_part", "parked", "replay", "logs"]
REFUSED = "refused-by-the-database"  # a callbackData the test's constraint refuses
OTHERS = tuple(f"other-call-{n}" for n in range(3))


def report(message_id: str, spec: tuple[str, str | None], **extra: Any) -> dict[str, Any]:
    name, clock = spec
    group, status_id = STATUSES[name]
    end = f"2036-04-02T{clock}.000+0000" if clock else None  # after the submit event
    return {
        "messageId": message_id,
        "voiceCall": {"endTime": end, "duration": 5},
        "status": {"groupId": group, "groupName": "X", "id": status_id, "name": name},
        **extra,
    }


def test_table_agrees_with_supersedes() -> None:
    """The table's expectations are the rule's own answers (the rule is the source)."""
    for row, ((name1, clock1), (name2, clock2)) in enumerate(TABLE):
        first, second = Status(*STATUSES[name1], name1), Status(*STATUSES[name2], name2)
        reason = supersedes(is_final(second), clock2, is_final(first), clock1)  # type: ignore[arg-type]
        assert reason == EXPECTED[row][1], row
        assert EXPECTED[row][0] == (name2 if reason is None else name1), row


@pytest.fixture
def refusing(app: Flask) -> Iterator[None]:
    """Make the database itself refuse an event whose callbackData is REFUSED."""
    engine: Engine = create_engine(state(app).settings.database_url)
    sqlite = engine.dialect.name == "sqlite"
    create = (
        "CREATE TRIGGER test_refuse BEFORE INSERT ON call_events "
        f"WHEN NEW.callback_data = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        if sqlite
        else "ALTER TABLE call_events ADD CONSTRAINT ck_test_refuse "
        f"CHECK (callback_data IS DISTINCT FROM '{REFUSED}')"
    )
    drop = (
        "DROP TRIGGER test_refuse"
        if sqlite
        else "ALTER TABLE call_events DROP CONSTRAINT ck_test_refuse"
    )
    with engine.begin() as connection:
        connection.execute(text(create))
    yield
    with engine.begin() as connection:
        connection.execute(text(drop))
    engine.dispose()


def _record(
    path: str, http: httpx.Client, live: LiveServer, app: Flask, first: Any, second: Any
) -> dict[str, Any] | None:
    """Record both reports by `path`; return the second's item result (None: see history)."""
    if path == "single":
        assert post_results(live, first)["items"][0]["result"] == "applied"
        return post_results(live, second)["items"][0]  # type: ignore[no-any-return]
    if path == "one_post":
        return post_results(live, first, second)["items"][1]  # type: ignore[no-any-return]
    if path == "batch":
        fillers = [report(other, ("BUSY", "07:00:05")) for other in OTHERS]
        answer = post_results(live, fillers[0], first, fillers[1], second, fillers[2])
        assert answer["unmatched"] == 3
        return answer["items"][3]  # type: ignore[no-any-return]
    if path == "refused_part":
        refused = report(OTHERS[0], ("BUSY", "07:00:05"), callbackData=REFUSED)
        answer = post_results(live, refused, first, second)
        assert answer["items"][0]["result"] == "invalid"
        assert answer["items"][0]["reason"].startswith("could not be stored")
        return answer["items"][2]  # type: ignore[no-any-return]
    if path == "parked":
        assert post_results(live, first, second)["unmatched"] == 2
        launch_seed(http)
        return None
    if path == "logs":
        assert post_results(live, first)["items"][0]["result"] == "applied"
        return _record_log_entry(app, second)
    assert path == "replay"
    body = json.dumps({"results": [first, second]}).encode()
    with db(app) as session:
        inbound = InboundReport(
            received_at=utcnow(), content_type="application/json", peer="pull",
            body=body, size=len(body), items=2,
        )  # fmt: skip
        session.add(inbound)
        session.flush()
        summary = replay_inbound(session, inbound)
        session.commit()
    return summary["items"][1]  # type: ignore[no-any-return]


def _record_log_entry(app: Flask, posted: dict[str, Any]) -> dict[str, Any]:
    """Record a report as the reconciliation records Infobip's log entry of it (flat, doneAt)."""
    entry = LogEntry.read(
        {
            "bulkId": "seed", "messageId": posted["messageId"], "to": "41793026727",
            "sentAt": None, "doneAt": posted["voiceCall"]["endTime"],
            "duration": posted["voiceCall"]["duration"], "mccMnc": None, "price": None,
            "status": posted["status"], "error": None,
        }
    )  # fmt: skip
    assert entry is not None
    candidate = log_candidate(entry, now=utcnow())
    assert candidate is not None
    with db(app) as session:
        (result,) = record(session, [candidate])
        session.commit()
    return result.as_json()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("row", range(len(TABLE)))
@pytest.mark.usefixtures("refusing")
def test_every_path_follows_the_precedence_table(
    http: httpx.Client, live: LiveServer, app: Flask, path: str, row: int
) -> None:
    if path != "parked":
        launch_seed(http)
    first_spec, second_spec = TABLE[row]
    winner, reason = EXPECTED[row]
    item = _record(path, http, live, app, report(FIRST, first_spec), report(FIRST, second_spec))
    if item is not None:
        assert item["result"] == ("applied" if reason is None else "not_applied")
        assert item["reason"] == reason
    assert call(app, FIRST).status_name == winner
    reports = [e for e in events(app, FIRST) if e.source != "submit"]
    assert reports[-1].source == {"logs": "reconcile", "replay": "pull"}.get(path, "report")
    assert [(e.status_name, e.applied) for e in reports][-1] == (second_spec[0], reason is None)
    assert reports[-1].reason == reason


@pytest.mark.parametrize(
    ("name", "clock", "submit_applies", "reason"),
    [
        ("BUSY", "07:00:10", False, "after_final"),  # a final report before the answer
        ("PENDING_ENROUTE", "2026-01-01", True, None),  # an earlier pending one: the answer wins
        ("PENDING_ENROUTE", "07:00:10", False, "late"),  # a later pending one (2036)
    ],
)
def test_submit_answer_follows_the_precedence(
    http: httpx.Client, live: LiveServer, app: Flask, name: str, clock: str,
    submit_applies: bool, reason: str | None,
) -> None:  # fmt: skip
    """A report recorded before the submit answer: the answer is non-final, at submission."""
    body = json.loads(sample("launch-request.json"))
    del body["messages"][0]["sendAt"]
    body["messages"][0]["destinations"][0]["messageId"] = FIRST
    spec = (name, clock) if len(clock) == 8 else (name, None)
    first = report(FIRST, spec)
    if len(clock) != 8:
        first["voiceCall"]["endTime"] = f"{clock}T00:00:00.000+0000"
    assert post_results(live, first)["unmatched"] == 1  # parked until the launch below
    assert http.post("/api/v1/campaigns", json=body).status_code == 201
    history = events(app, FIRST)
    submit = [e for e in history if e.source == "submit"][-1]
    assert (submit.applied, submit.reason) == (submit_applies, reason)
    found = call(app, FIRST)
    assert found.submit_state == "accepted"
    assert found.status_name == ("PENDING_ACCEPTED" if submit_applies else name)


def test_refused_part_keeps_the_raw_body_and_the_good_items(
    live: LiveServer, http: httpx.Client, app: Flask, refusing: None
) -> None:
    launch_seed(http)
    good = report(FIRST, ("BUSY", "07:00:10"))
    bad = report(OTHERS[1], ("BUSY", "07:00:10"), callbackData=REFUSED)
    response = notify(live, json.dumps({"results": [bad, good]}).encode(), JSON_TYPE)
    assert response.status_code == 200
    assert [i["result"] for i in response.json()["items"]] == ["invalid", "applied"]
    with db(app) as session:
        assert session.scalar(select(InboundReport.items)) == 2
        stored = session.scalars(select(CallEvent.message_id).where(CallEvent.source == "report"))
        assert list(stored) == [FIRST]
        assert session.scalars(select(Call.outcome).where(Call.message_id == FIRST)).one() == "busy"
