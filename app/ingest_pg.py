"""The common case on PostgreSQL: one report in one POST, recorded in one statement.

Storing the raw body, moving the call's status and appending the event are one
statement of data-modifying CTEs, so the POST costs one round trip and one durable
commit, like the plainest app that does one INSERT and one UPDATE. The rules are those
of app/calls.py: the UPDATE's condition is the precedence of DESIGN.md step 4, checked
under the row lock (a compare-and-set), and the unique key skips a repeated report.
Only when the status did not move does a second query find out why. Never commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import cast

from sqlalchemy import Table, TextClause, select, text, update
from sqlalchemy.orm import Session

from app.calls import (
    APPLIED,
    DUPLICATE,
    NOT_APPLIED,
    UNMATCHED,
    ItemResult,
    change_from_report,
    event_values,
    unstorable_value,
)
from app.ingest_sets import count_duplicates
from app.models import Call, CallEvent, EventSource
from app.notify import DeliveryReport
from app.status import supersedes

_CALLS = cast(Table, Call.__table__)
_EVENTS = cast(Table, CallEvent.__table__)
# The event's own columns travel as one JSON object (`:event`, expanded by
# json_populate_record on the server): one parameter to adapt instead of forty, which
# is most of the client's cost of the statement. The call takes the shared ones.
_EVENT_COLUMNS = [
    c.name for c in _EVENTS.columns
    if c.name not in ("id", "call_id", "applied", "inbound_report_id", "submit_state",
                      "reason", "duplicates")
]  # fmt: skip
_SHARED_COLUMNS = [
    "status_group_id", "status_group_name", "status_id", "status_name", "status_description",
    "error_group_id", "error_group_name", "error_id", "error_name", "error_description",
    "error_permanent", "duration", "charged_duration", "price_per_second", "currency",
    "answered_by", "dtmf", "collected", "outcome", "sent_at", "answered_at", "ended_at",
]  # fmt: skip


# DESIGN.md step 4 per row of `ev` (its `final` says whether the new status is final):
# a final status replaces a non-final one, a non-final never replaces a final one,
# otherwise the later time wins and a missing or equal time keeps the current status.
_PRECEDENCE = """
    CASE WHEN ev.final THEN NOT calls.status_final OR {later}
         ELSE NOT calls.status_final AND {later} END
""".format(
    later="(ev.occurred_at IS NOT NULL AND (calls.status_occurred_at IS NULL"
    " OR calls.status_occurred_at < ev.occurred_at))"
)


@cache
def _statement() -> TextClause:
    shared = ", ".join(_SHARED_COLUMNS)
    from_event = ", ".join(f"ev.{name}" for name in _SHARED_COLUMNS)
    columns = ", ".join(_EVENT_COLUMNS)
    from_row = ", ".join(f"ev.{name}" for name in _EVENT_COLUMNS)
    # `ev`: one row per report (position, final flag and the event's columns); the
    # bodies, their media types and the messageIds come as arrays in the same order
    # (the messageIds again so that the calls are found through their index: the
    # planner cannot see how few rows the JSON holds). Calls are locked
    # in id order and events inserted in (messageId, key) order, as app/ingest.py does,
    # so concurrent statements cannot deadlock. The messageIds of one call are distinct.
    return text(f"""
        WITH doc AS (
            SELECT value AS j, ordinality AS pos
            FROM json_array_elements(CAST(:events AS json)) WITH ORDINALITY
        ), ev AS (
            SELECT doc.pos, (doc.j ->> 'final')::boolean AS final, r.*
            FROM doc, json_populate_record(NULL::call_events, doc.j) AS r
        ), inbound AS (
            INSERT INTO inbound_reports (received_at, content_type, peer, body, size, items)
            SELECT ev.received_at, (CAST(:content_types AS text[]))[ev.pos],
                   (CAST(:peers AS text[]))[ev.pos], (CAST(:bodies AS bytea[]))[ev.pos],
                   length((CAST(:bodies AS bytea[]))[ev.pos]), 1
            FROM ev ORDER BY ev.pos
            RETURNING id
        ), inbound_ids AS (
            SELECT id, row_number() OVER (ORDER BY id) AS pos FROM inbound
        ), locked AS (
            SELECT calls.id FROM calls
            WHERE calls.message_id = ANY (CAST(:message_ids AS text[]))
            ORDER BY calls.id FOR NO KEY UPDATE
        ), moved AS (
            UPDATE calls SET ({shared}, status_final, status_occurred_at, updated_at) =
                ({from_event}, ev.final, ev.occurred_at, ev.received_at)
            FROM ev
            WHERE calls.message_id = ANY (CAST(:message_ids AS text[]))
              AND calls.message_id = ev.message_id
              AND calls.id IN (SELECT id FROM locked) AND {_PRECEDENCE}
            RETURNING calls.id, calls.message_id
        ), event AS (
            INSERT INTO call_events ({columns}, call_id, applied, inbound_report_id, duplicates)
            SELECT {from_row}, moved.id, moved.id IS NOT NULL, inbound_ids.id, 0
            FROM ev JOIN inbound_ids USING (pos) LEFT JOIN moved USING (message_id)
            ORDER BY ev.message_id, ev.dedupe_key
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id, dedupe_key
        )
        SELECT ev.pos, moved.id, event.id
        FROM ev LEFT JOIN moved USING (message_id) LEFT JOIN event USING (dedupe_key)
        ORDER BY ev.pos
    """)  # noqa: S608 (only column names of our own tables are formatted in)


def _json_value(value: object) -> str:
    """Write what json cannot: datetimes (ISO 8601 with offset) and decimals (exact)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in an event")


@dataclass(frozen=True)
class SingleReport:
    """A POST that carried exactly one report, with what its inbound row keeps."""

    report: DeliveryReport
    body: bytes
    content_type: str
    peer: str | None


def record_singles(
    session: Session, posts: Sequence[SingleReport], *, received_at: datetime
) -> list[ItemResult | None]:
    """Store the bodies and record their reports in one statement; their messageIds differ.

    Returns one result per post; None (nothing done) for a report with a value its
    column cannot hold: the general path stores that body and explains the refusal.
    """
    events, changes, taken = [], [], []
    for post in posts:
        change = change_from_report(post.report)
        values = event_values(post.report, change, received_at, None, EventSource.REPORT)
        if unstorable_value(values) is not None:
            continue
        taken.append(post)
        event = {name: values.get(name) for name in _EVENT_COLUMNS}
        event["final"] = change.final
        events.append(event)
        changes.append((change, values["dedupe_key"]))
    if not taken:
        return [None] * len(posts)
    params = {
        "events": json.dumps(events, default=_json_value),
        "content_types": [post.content_type[:200] for post in taken],
        "peers": [post.peer for post in taken],
        "bodies": [post.body for post in taken],
        "message_ids": [post.report.message_id for post in taken],
    }
    rows = session.execute(_statement(), params).all()
    results: dict[int, ItemResult] = {}
    repeats: dict[str, int] = {}
    for (_, moved_id, event_id), post, (change, key) in zip(rows, taken, changes, strict=True):
        report = post.report
        if event_id is None:
            repeats[key] = repeats.get(key, 0) + 1
            result = ItemResult(report.index, report.message_id, DUPLICATE)
        elif moved_id is not None:
            result = ItemResult(report.index, report.message_id, APPLIED)
        else:
            result = _explain(session, report, change.final, change.occurred_at, event_id)
        results[id(post)] = result
    if repeats:
        count_duplicates(session, repeats)
    return [results.get(id(post)) for post in posts]


def _explain(
    session: Session,
    report: DeliveryReport,
    final: bool,
    occurred_at: datetime | None,
    event_id: int,
) -> ItemResult:
    """Say why the status did not move (unmatched, late, after_final), on the event too."""
    row = session.execute(
        select(_CALLS.c.id, _CALLS.c.status_final, _CALLS.c.status_occurred_at).where(
            _CALLS.c.message_id == report.message_id
        )
    ).first()
    if row is None:
        reason, call_id = UNMATCHED, None
    else:
        reason = supersedes(final, occurred_at, row[1], row[2]) or "late"
        call_id = row[0]
    session.execute(
        update(_EVENTS).where(_EVENTS.c.id == event_id).values(call_id=call_id, reason=reason)
    )
    if reason == UNMATCHED:
        return ItemResult(report.index, report.message_id, UNMATCHED, "no call has this messageId")
    return ItemResult(report.index, report.message_id, NOT_APPLIED, reason)
