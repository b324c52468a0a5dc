"""Group commit: concurrent notify POSTs recorded together, each getting its own answer."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from app.group_commit import GroupCommitter
from app.models import Call, CallEvent, InboundReport
from app.notify import parse_report_body
from app.web.webhooks import NotifyPost, record_group
from tests.conftest import LiveServer, db, state
from tests.test_reports import FIRST, SECOND, STRANGER, launch_seed, report

THIRD = "third-call-in-the-group"


def test_a_lone_submission_is_a_group_of_one() -> None:
    groups: list[list[int]] = []

    def process(work: Sequence[int]) -> list[int]:
        groups.append(list(work))
        return [n * 10 for n in work]

    committer: GroupCommitter[int, int] = GroupCommitter(process)
    assert committer.submit(1) == 10
    assert committer.submit(2) == 20
    assert groups == [[1], [2]]


def test_submissions_arriving_during_a_group_form_the_next_one() -> None:
    groups: list[list[int]] = []
    first_started, queued = threading.Event(), threading.Event()

    def process(work: Sequence[int]) -> list[int | BaseException]:
        groups.append(list(work))
        if work == [0]:
            first_started.set()
            assert queued.wait(10)  # hold the first group until the others wait
        return [ValueError(f"bad {n}") if n == 3 else n * 10 for n in work]

    committer: GroupCommitter[int, int] = GroupCommitter(process)
    answers: dict[int, object] = {}

    def submit(n: int) -> None:
        try:
            answers[n] = committer.submit(n)
        except ValueError as exc:
            answers[n] = str(exc)

    leader = threading.Thread(target=submit, args=(0,))
    leader.start()
    assert first_started.wait(10)
    others = [threading.Thread(target=submit, args=(n,)) for n in (1, 2, 3, 4)]
    for thread in others:
        thread.start()
    while len(committer._queue) < 4:  # all four are waiting behind the first group
        threading.Event().wait(0.005)
    queued.set()
    for thread in [leader, *others]:
        thread.join(10)
    assert groups[0] == [0]
    assert sorted(groups[1]) == [1, 2, 3, 4]  # one transaction for the four
    assert answers == {0: 0, 1: 10, 2: 20, 3: "bad 3", 4: 40}


def test_a_failing_group_fails_each_member_and_the_next_group_runs() -> None:
    calls = 0

    def process(work: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return list(work)

    committer: GroupCommitter[int, int] = GroupCommitter(process)
    with pytest.raises(RuntimeError, match="database gone"):
        committer.submit(1)
    assert committer.submit(2) == 2


def post(results: list[dict[str, Any]]) -> NotifyPost:
    body = json.dumps({"results": results}).encode()
    items = parse_report_body(body, "application/json")
    return NotifyPost(body, "application/json", "192.0.2.7", items)


def at(clock: str) -> str:
    return f"2036-04-02T{clock}.000+0000"


def test_a_group_is_recorded_as_its_posts_in_some_serial_order(
    http: httpx.Client, live: LiveServer, app: Flask
) -> None:
    launch_seed(http, also=(THIRD,))
    busy = report(FIRST, 2, 97, "BUSY", at("07:00:10"))
    nul = {**report(FIRST, 3, 5, "DELIVERED_TO_HANDSET", at("07:00:40")), "callbackData": "a\0b"}
    posts = [
        post([busy]),
        post([report(FIRST, 2, 96, "NO_ANSWER", at("07:00:20"))]),  # same call: a later round
        post([report(SECOND, 1, 3, "PENDING_WAITING_DELIVERY", at("07:00:10"))]),
        post(
            [
                report(THIRD, 3, 5, "DELIVERED_TO_HANDSET", at("07:00:10")),
                report(SECOND, 2, 96, "NO_ANSWER", at("07:00:30")),
            ]
        ),
        post([report(STRANGER, 2, 97, "BUSY", at("07:00:10"))]),
        post([busy]),  # the first one again
        post([report(FIRST, 1, 3, "PENDING_WAITING_DELIVERY", at("07:00:50"))]),  # after final
        post([nul]),
    ]
    outcomes = record_group(state(app), posts)
    answers = [[(r.index, r.result, r.reason) for r in outcome] for outcome in outcomes]  # type: ignore[union-attr]
    assert answers == [
        [(0, "applied", None)],
        [(0, "applied", None)],
        [(0, "applied", None)],
        [(0, "applied", None), (1, "applied", None)],
        [(0, "unmatched", "no call has this messageId")],
        [(0, "duplicate", None)],
        [(0, "not_applied", "after_final")],
        [(0, "invalid", "callback_data contains a NUL character")],
    ]
    with db(app) as session:
        statuses = dict(session.execute(select(Call.message_id, Call.status_name)).all())
        assert statuses == {FIRST: "NO_ANSWER", SECOND: "NO_ANSWER",
                            THIRD: "DELIVERED_TO_HANDSET"}  # fmt: skip
        bodies = dict(session.execute(select(InboundReport.id, InboundReport.body)).all())
        stored = session.scalars(
            select(CallEvent).where(CallEvent.source == "report").order_by(CallEvent.id)
        ).all()
        recorded = sorted((e.message_id, e.status_name, e.applied, e.duplicates, e.reason)
                          for e in stored)  # fmt: skip
        assert recorded == sorted([
            (FIRST, "BUSY", True, 1, None),
            (FIRST, "NO_ANSWER", True, 0, None),
            (SECOND, "PENDING_WAITING_DELIVERY", True, 0, None),
            (SECOND, "NO_ANSWER", True, 0, None),
            (THIRD, "DELIVERED_TO_HANDSET", True, 0, None),
            (FIRST, "PENDING_WAITING_DELIVERY", False, 0, "after_final"),
            (STRANGER, "BUSY", False, 0, "unmatched"),
        ])  # fmt: skip
        for event in stored:  # each event points at the body it came in
            assert event.message_id.encode() in bodies[event.inbound_report_id]
        assert sum(p.body in bodies.values() for p in posts) == len(posts)
