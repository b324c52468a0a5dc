"""1,000 reports for 300 calls, delivered three times in shuffled order through gunicorn.

Whatever the order, the copies and the workers that receive them, the history holds each
distinct report once (the copies counted), every call ends where a sorted replay puts it,
and report_campaign_summary counts what the winning reports say.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

from sqlalchemy import select, text

from app.infobip.codes import Outcome
from app.models import Call
from tests.reliability.support import (
    Spec,
    Stack,
    calls_by_message_id,
    chunk_posts,
    deliver,
    event_identity,
    flat_launch,
    make_specs,
    report_events,
    sorted_winners,
    spec_identity,
)

CALLS_PER_CAMPAIGN = 150
REPORTS = 1000
COPIES = 3
POST_SIZES = (1, 1, 1, 2, 5, 10, 25)
CLIENT_THREADS = 6
GROUP_COLUMNS = {1: "pending", 2: "undeliverable", 3: "delivered", 4: "expired", 5: "rejected"}
OUTCOME_COLUMNS = {
    Outcome.ANSWERED_HUMAN: "answered_human",
    Outcome.ANSWERED_MACHINE: "answered_machine",
    Outcome.BUSY: "busy",
    Outcome.NO_ANSWER: "no_answer",
    Outcome.DECLINED: "declined",
    Outcome.FAILED: "failed",
    Outcome.NOT_SENT: "not_sent",
    Outcome.UNKNOWN: "unknown",
    Outcome.EXPIRED: "outcome_expired",
    Outcome.REJECTED: "outcome_rejected",
    Outcome.PENDING: "outcome_pending",
}


def launch_two_campaigns(stack: Stack) -> dict[str, str]:
    """Launch two campaigns through gunicorn; return each call's bulkId by messageId."""
    bulk_of: dict[str, str] = {}
    for prefix, bulk_id in (("4179301", "replay-a"), ("4179302", "replay-b")):
        numbers = [f"{prefix}{n:04d}" for n in range(CALLS_PER_CAMPAIGN)]
        response = stack.launch(flat_launch(bulk_id, numbers))
        assert response.status_code == 201, response.text
        messages = response.json()["messages"]
        assert {m["submitState"] for m in messages} == {"accepted"}
        bulk_of.update((m["messageId"], bulk_id) for m in messages)
    return bulk_of


def expected_summary(
    winners: dict[str, Spec], bulk_of: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Count, per campaign, the calls by the winning report's status group and outcome."""
    expected: dict[str, dict[str, Any]] = {}
    for bulk_id in sorted(set(bulk_of.values())):
        row: dict[str, Any] = dict.fromkeys([*GROUP_COLUMNS.values(), *OUTCOME_COLUMNS.values()], 0)
        row.update(total_calls=0, total_duration_s=0)
        expected[bulk_id] = row
    for message_id, bulk_id in bulk_of.items():
        row = expected[bulk_id]
        row["total_calls"] += 1
        winner = winners[message_id]
        row[GROUP_COLUMNS[winner.group_id]] += 1
        row[OUTCOME_COLUMNS[winner.outcome]] += 1
        row["total_duration_s"] += winner.duration
    return expected


def test_shuffled_tripled_replay_through_gunicorn_matches_a_sorted_replay(stack: Stack) -> None:
    rng = random.Random(6_2026)
    bulk_of = launch_two_campaigns(stack)
    message_ids = sorted(bulk_of)
    with stack.sessions() as session:
        submitted = {c.message_id: c.status_occurred_at for c in session.scalars(select(Call))}
    specs = make_specs(message_ids, REPORTS, rng)
    assert len({spec_identity(s) for s in specs}) == REPORTS
    assert len(set(Counter(s.outcome for s in specs))) == len(OUTCOME_COLUMNS) - 1  # not not_sent
    assert {s.version for s in specs} == {1, 2}
    winners = sorted_winners(specs, submitted)
    assert set(winners) == set(message_ids)

    deliveries = specs * COPIES
    rng.shuffle(deliveries)
    posts = chunk_posts(deliveries, rng, POST_SIZES, xml_share=0.3)
    started = time.monotonic()
    answers = deliver(stack.url, posts, threads=CLIENT_THREADS, deadline=started + 90)

    assert len(answers) == len(posts)
    refused = [(a.status, a.body) for a in answers if a.status != 200 or a.body["invalid"]]
    assert refused == []
    totals = Counter[str]()
    for answer in answers:
        totals.update({key: answer.body[key] for key in ("applied", "notApplied", "duplicates",
                                                         "unmatched", "invalid")})  # fmt: skip
    assert totals["applied"] + totals["notApplied"] == REPORTS
    assert totals["duplicates"] == (COPIES - 1) * REPORTS
    assert totals["unmatched"] == 0

    with stack.sessions() as session:
        events = report_events(session)
        assert sorted(event_identity(e) for e in events) == sorted(spec_identity(s) for s in specs)
        assert sum(e.duplicates for e in events) == (COPIES - 1) * REPORTS
        assert sum(e.applied for e in events) == totals["applied"]
        calls = calls_by_message_id(session)
        moved = {m: (c.status_name, c.status_occurred_at) for m, c in calls.items()}
        wanted = {m: (w.status_name, w.occurred_at) for m, w in winners.items()}
        assert moved == wanted
        assert {m: c.outcome for m, c in calls.items()} == {
            m: w.outcome.value for m, w in winners.items()
        }
        columns = ["bulk_id", "total_calls", *GROUP_COLUMNS.values(), *OUTCOME_COLUMNS.values(),
                   "total_duration_s"]  # fmt: skip
        rows = session.execute(text(f"SELECT {', '.join(columns)} FROM report_campaign_summary"))
        summary = {row.bulk_id: {c: int(getattr(row, c)) for c in columns[1:]} for row in rows}
    assert summary == expected_summary(winners, bulk_of)
