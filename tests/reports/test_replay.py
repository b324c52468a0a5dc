"""A shuffled, duplicated replay leaves every call where a sorted replay would."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from flask import Flask
from lxml import etree
from sqlalchemy import func, select

from app.infobip.codes import Status, is_final, supersedes
from app.models import Call, CallEvent
from tests.conftest import LiveServer, db
from tests.reports.test_reports import JSON_TYPE, XML_TYPE, notify

STATUSES = [
    (1, "PENDING", 3, "PENDING_WAITING_DELIVERY"),
    (1, "PENDING", 7, "PENDING_ENROUTE"),
    (3, "DELIVERED", 2, "DELIVERED_TO_OPERATOR"),
    (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET"),
    (2, "UNDELIVERABLE", 97, "BUSY"),
    (2, "UNDELIVERABLE", 96, "NO_ANSWER"),
    (4, "EXPIRED", 15, "EXPIRED_EXPIRED"),
]


def make_reports(message_ids: list[str], rng: random.Random) -> list[dict[str, Any]]:
    base = datetime.now(UTC) + timedelta(days=1)  # after every submit event
    reports = []
    for number, message_id in enumerate(message_ids):
        offsets = rng.sample(range(1, 600), rng.randint(2, 8))  # distinct times: no ties
        for offset in offsets:
            group, group_name, status_id, name = rng.choice(STATUSES)
            moment = base + timedelta(minutes=number, seconds=offset)
            reports.append(
                {
                    "bulkId": "replay",
                    "messageId": message_id,
                    "sentAt": base.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                    "voiceCall": {
                        "endTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
                        "duration": offset,
                    },
                    "status": {
                        "groupId": group,
                        "groupName": group_name,
                        "id": status_id,
                        "name": name,
                    },
                }
            )
    return reports


def sorted_replay(reports: list[dict[str, Any]], submitted: datetime) -> dict[str, str]:
    """Apply the reports of each call in time order with the precedence rules."""
    current: dict[str, tuple[bool, datetime, str]] = {}
    for report in sorted(reports, key=lambda r: r["voiceCall"]["endTime"]):
        status = report["status"]
        final = is_final(Status(status["groupId"], status["id"], status["name"]))
        when = datetime.strptime(report["voiceCall"]["endTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
        now_final, now_time, _ = current.get(report["messageId"], (False, submitted, "submit"))
        if supersedes(final, when, now_final, now_time) is None:
            current[report["messageId"]] = (final, when, status["name"])
    return {message_id: name for message_id, (_, _, name) in current.items()}


def as_xml(results: list[dict[str, Any]]) -> bytes:
    root = etree.Element("reportResponse")
    wrapper = etree.SubElement(root, "results")

    def fill(element: etree._Element, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                fill(etree.SubElement(element, key), inner)
        elif value is not None:
            element.text = str(value)

    for result in results:
        fill(etree.SubElement(wrapper, "result"), result)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_replay_shuffled_and_doubled_matches_a_sorted_replay(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    rng = random.Random(20261127)
    numbers = [f"4179302{n:04d}" for n in range(45)]  # under the sync limit of the test settings
    launched = http.post("/api/v1/campaigns", json={"bulkId": "replay", "scenarioId": "S",
                                                    "to": numbers}).json()  # fmt: skip
    message_ids = [m["messageId"] for m in launched["messages"]]
    reports = make_reports(message_ids, rng)
    assert len(reports) > 150
    with db(app) as session:
        submitted = max(session.scalars(select(Call.status_occurred_at)))
    expected = sorted_replay(reports, submitted)

    deliveries = reports + reports
    rng.shuffle(deliveries)
    posts: list[tuple[bytes, dict[str, str]]] = []
    while deliveries:
        size = rng.choice([1, 1, 1, 3, 10])
        chunk, deliveries = deliveries[:size], deliveries[size:]
        if rng.random() < 0.3:
            posts.append((as_xml(chunk), XML_TYPE))
        else:
            posts.append((json.dumps({"results": chunk}).encode(), JSON_TYPE))
    failures: list[str] = []

    def worker(share: list[tuple[bytes, dict[str, str]]]) -> None:
        for body, headers in share:
            response = notify(live, body, headers)
            if response.status_code != 200 or response.json()["invalid"]:
                failures.append(response.text)

    threads = [threading.Thread(target=worker, args=(posts[k::4],)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    with db(app) as session:
        got = dict(session.execute(select(Call.message_id, Call.status_name)).all())
        for message_id in message_ids:
            assert got[message_id] == expected.get(message_id, "PENDING_ACCEPTED"), message_id
        stored = session.scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.source == "report")
        )
        duplicates = session.scalar(select(func.sum(CallEvent.duplicates)))
    assert stored == len(reports)
    assert duplicates == len(reports)
