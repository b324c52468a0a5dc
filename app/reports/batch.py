"""Record a whole POST of reports in a few statements; never commits.

The same rules as app/calls.py (DESIGN.md "Receiving delivery reports", steps 3-5),
applied to all results of a POST at once so that the cost of a POST is a handful of
statements whatever its size: lock the calls it names (in id order, so concurrent
POSTs cannot deadlock), decide each result in memory in (messageId, key) order as a
sequential replay would, insert the new events in that order (a repeated key is
skipped by the unique constraint and counted), then move the winning statuses.
On PostgreSQL each of these is one set-based statement (app/ingest_sets.py); on
SQLite, local and single-writer, plain statements and executemany.
Any database error here is raised: the caller rolls back and falls back to
calls.record_items, which isolates every item in its own savepoint.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.infobip.codes import supersedes
from app.models import Call, CallEvent, EventSource
from app.reports import store_pg as ingest_sets
from app.reports.parse import DeliveryReport, InvalidItem, ParsedItem
from app.reports.record import (
    APPLIED,
    DUPLICATE,
    INVALID,
    NOT_APPLIED,
    UNMATCHED,
    Change,
    ItemResult,
    change_from_report,
    event_values,
    unstorable_value,
)


@dataclass
class _State:
    """A locked call as the results of this POST leave it, with the one that won."""

    id: int
    final: bool
    occurred_at: datetime | None
    winner: Change | None = None
    winner_key: str | None = None


def _lock_calls(session: Session, message_ids: set[str]) -> dict[str, _State]:
    """Lock the calls these results name, in id order; return them by messageId."""
    if not message_ids:
        return {}
    if _on_postgresql(session):
        rows = ingest_sets.lock_calls(session, message_ids)
    else:  # SQLite: the writer holds the whole database (BEGIN IMMEDIATE)
        rows = list(session.execute(
            select(Call.id, Call.message_id, Call.status_final, Call.status_occurred_at)
            .where(Call.message_id.in_(message_ids))
            .order_by(Call.id)
        ))  # fmt: skip
    return {row[1]: _State(row[0], row[2], row[3]) for row in rows}


def _on_postgresql(session: Session) -> bool:
    """Say whether the session runs on PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def _store(
    session: Session,
    rows: list[dict[str, Any]],
    states: dict[str, _State],
    inbound_report_id: int | None,
    at: datetime,
) -> set[str]:
    """Insert the events, then move the statuses; return the keys inserted."""
    if _on_postgresql(session):
        # Events first: their foreign-key checks then find the calls as locked above,
        # not as just updated by this transaction (which would lock each row again);
        # and each call then takes its status from its winning event's row.
        inserted = ingest_sets.insert_events(session, rows)
        winners = [(state.id, state.winner_key, state.final) for state in states.values()
                   if state.winner_key is not None]  # fmt: skip
        ingest_sets.move_statuses(session, winners, at)
        return inserted
    inserted = _insert_events(session, rows, inbound_report_id, at)
    _move_statuses(session, _moves(states, at))
    return inserted


def _insert_events(
    session: Session, rows: list[dict[str, Any]], inbound_report_id: int | None, at: datetime
) -> set[str]:
    """Insert events (SQLite), skipping keys already stored; return the keys inserted."""
    if not rows:
        return set()
    table: Table = CallEvent.__table__  # type: ignore[assignment]
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    connection = session.connection()
    if len(rows) == 1 or inbound_report_id is None:
        returning = statement.returning(table.c.dedupe_key)
        return {key for row in rows for key in connection.execute(returning, row).scalars()}
    # Many rows: a plain executemany and one query for what it inserted.
    connection.execute(statement, rows)
    inserted = select(table.c.dedupe_key).where(
        table.c.inbound_report_id == inbound_report_id, table.c.received_at == at
    )
    return set(connection.execute(inserted).scalars())


def _moves(states: dict[str, _State], now: datetime) -> list[dict[str, Any]]:
    """Return the status each call moves to (its winning result), in id order (SQLite)."""
    return [
        {"id": state.id, **state.winner.columns, "updated_at": now}
        for state in sorted(states.values(), key=lambda state: state.id)
        if state.winner is not None
    ]


def _move_statuses(session: Session, rows: list[dict[str, Any]]) -> None:
    """Set each call to its winning status (SQLite)."""
    if not rows:
        return
    table = Call.__table__
    columns = [name for name in rows[0] if name != "id"]
    session.connection().execute(
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == bindparam("pk"))
        .values({name: bindparam(name) for name in columns}),
        [{**row, "pk": row["id"]} for row in rows],
    )


def _count_duplicates(session: Session, counts: Counter[str]) -> None:
    """Add each key's repeats to the duplicates of its stored event."""
    if not counts:
        return
    if _on_postgresql(session):
        ingest_sets.count_duplicates(session, counts)
        return
    session.connection().execute(
        update(CallEvent.__table__)  # type: ignore[arg-type]
        .where(CallEvent.__table__.c.dedupe_key == bindparam("key"))
        .values(duplicates=CallEvent.__table__.c.duplicates + bindparam("n")),
        [{"key": key, "n": n} for key, n in counts.items()],
    )


def record_batch(
    session: Session,
    items: list[ParsedItem],
    *,
    received_at: datetime,
    inbound_report_id: int | None,
    source: EventSource = EventSource.REPORT,
    text_checked: bool = False,
) -> list[ItemResult]:
    """Record every result of a POST; raise on any database error (see the module doc).

    text_checked: no text of the items holds a NUL or a lone surrogate (see
    calls.unstorable_value).
    """
    results: list[ItemResult] = []
    reports: list[tuple[str, DeliveryReport, Change, dict[str, Any]]] = []
    for item in items:
        if isinstance(item, InvalidItem):
            raw_id = item.raw.get("messageId") if isinstance(item.raw, dict) else None
            results.append(ItemResult(item.index, str(raw_id) if raw_id else None, INVALID,
                                      item.reason))  # fmt: skip
            continue
        change = change_from_report(item)
        values = event_values(item, change, received_at, inbound_report_id, source)
        too_long = unstorable_value(values, text_checked=text_checked)
        if too_long is not None:
            results.append(ItemResult(item.index, item.message_id, INVALID, too_long))
            continue
        reports.append((values["dedupe_key"], item, change, values))
    reports.sort(key=lambda entry: (entry[1].message_id, entry[0]))
    states = _lock_calls(session, {report.message_id for _, report, _, _ in reports})
    rows: list[dict[str, Any]] = []
    repeats: Counter[str] = Counter()
    decided: dict[str, str | None] = {}
    for key, report, change, values in reports:
        if key in decided:
            repeats[key] += 1
            continue
        state = states.get(report.message_id)
        if state is None:
            reason: str | None = UNMATCHED
        else:
            reason = supersedes(change.final, change.occurred_at, state.final, state.occurred_at)
            values["call_id"] = state.id
            if reason is None:
                state.final, state.occurred_at, state.winner, state.winner_key = (
                    change.final, change.occurred_at, change, key,
                )  # fmt: skip
        values["applied"], values["reason"] = reason is None, reason
        decided[key] = reason
        rows.append(values)
    inserted = _store(session, rows, states, inbound_report_id, received_at)
    stored_before = Counter({key: 1 for key in decided if key not in inserted})
    _count_duplicates(session, repeats + stored_before)
    seen: set[str] = set()
    for key, report, _, _ in reports:
        if key not in inserted or key in seen:
            results.append(ItemResult(report.index, report.message_id, DUPLICATE))
            continue
        seen.add(key)
        reason = decided[key]
        if reason is None:
            results.append(ItemResult(report.index, report.message_id, APPLIED))
        elif reason == UNMATCHED:
            results.append(ItemResult(report.index, report.message_id, UNMATCHED,
                                      "no call has this messageId"))  # fmt: skip
        else:
            results.append(ItemResult(report.index, report.message_id, NOT_APPLIED, reason))
    return sorted(results, key=lambda result: result.index)
