"""The one recording path: every change to a call's history and current status.

DESIGN.md "One recording path": screen the candidates, lock their calls, decide in one
pure function (built on app.infobip.codes.supersedes), store, and build every item's
result here. Reports posted, pulled or replayed, parked reports re-matched and
Infobip's answers to submissions all come through `record`. Never commits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.infobip.codes import submit_outcome, supersedes
from app.reports import store_pg, store_sqlite
from app.reports.events import (
    APPLIED,
    DUPLICATE,
    INVALID,
    NOT_APPLIED,
    UNMATCHED,
    CallState,
    CallUpdate,
    Candidate,
    Decision,
    unstorable_value,
)
from app.reports.inbound import Inbound, store_inbound
from app.reports.items import InvalidItem

log = logging.getLogger(__name__)

UNMATCHED_REASON = "no call has this messageId"


@dataclass(frozen=True)
class ItemResult:
    """What happened to one candidate (one result of a POST)."""

    index: int
    message_id: str | None
    result: str
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Serialize for the notify answer."""
        return {
            "index": self.index,
            "messageId": self.message_id,
            "result": self.result,
            "reason": self.reason,
        }


@dataclass
class Decided:
    """Every decision of a set of candidates, with the calls' updates and repeat counts."""

    decisions: list[Decision] = field(default_factory=list)
    updates: list[CallUpdate] = field(default_factory=list)
    repeats: Counter[str] = field(default_factory=Counter)


def decide(
    states: dict[str, CallState], candidates: Sequence[Candidate], stored: set[str]
) -> Decided:
    """Decide, in order, which candidates are new and which move their call's status.

    `states` are the locked calls by messageId (updated in place), `stored` the keys
    already in call_events. A call without a status takes its outcome from its
    submit state (DESIGN.md "Looking up": not_sent, unknown, pending).
    """
    decided = Decided()
    seen: set[str] = set()
    updates: dict[int, CallUpdate] = {}
    for candidate in candidates:
        key = candidate.key
        if key is not None and (key in stored or key in seen):
            decided.repeats[key] += 1
            decided.decisions.append(Decision(candidate, None, False, DUPLICATE))
            continue
        if key is not None:
            seen.add(key)
        state = states.get(candidate.message_id)
        if state is None:
            decided.decisions.append(Decision(candidate, None, True, UNMATCHED))
            continue
        reason = candidate.keeps_status or supersedes(
            candidate.final, candidate.occurred_at, state.final, state.occurred_at
        )
        update = updates.setdefault(state.id, CallUpdate(state.id))
        if reason is None:
            state.final, state.occurred_at = candidate.final, candidate.occurred_at
            state.has_status = candidate.event["status_group_id"] is not None
            update.winner = candidate
        if candidate.submit_state is not None:
            update.submit = candidate
        decided.decisions.append(Decision(candidate, state.id, True, reason))
    for state in states.values():
        found = updates.get(state.id)
        if found is None:
            continue
        if found.submit is not None and found.submit.submit_state and not state.has_status:
            found.outcome = submit_outcome(found.submit.submit_state).value
        decided.updates.append(found)
    return decided


def screen(
    candidates: Sequence[Candidate], *, text_checked: bool = False
) -> tuple[list[Candidate], list[ItemResult]]:
    """Set aside the candidates whose values the database cannot hold (they are invalid)."""
    kept: list[Candidate] = []
    refused: list[ItemResult] = []
    for candidate in candidates:
        problem = unstorable_value(candidate.event, text_checked=text_checked)
        if problem is None:
            kept.append(candidate)
        else:
            refused.append(ItemResult(candidate.index, candidate.message_id, INVALID, problem))
    return kept, refused


def invalid_results(items: Sequence[InvalidItem]) -> list[ItemResult]:
    """Give the results of the items a parser could not read as reports."""
    results = []
    for item in items:
        raw_id = item.raw.get("messageId") if isinstance(item.raw, dict) else None
        results.append(
            ItemResult(item.index, str(raw_id) if raw_id else None, INVALID, item.reason)
        )
    return results


def result_of(decision: Decision) -> ItemResult:
    """Build one candidate's result from its decision (the one place results are made)."""
    candidate = decision.candidate
    if not decision.new:
        return ItemResult(candidate.index, candidate.message_id, DUPLICATE)
    if decision.reason is None:
        return ItemResult(candidate.index, candidate.message_id, APPLIED)
    if decision.reason == UNMATCHED:
        return ItemResult(candidate.index, candidate.message_id, UNMATCHED, UNMATCHED_REASON)
    return ItemResult(candidate.index, candidate.message_id, NOT_APPLIED, decision.reason)


class NeedsTransaction(Exception):
    """An autocommitted connection was given more than one statement's worth of recording."""


def _store(session: Session) -> ModuleType:
    """Return the store module of the session's database."""
    return store_pg if session.get_bind().dialect.name == "postgresql" else store_sqlite


def record(
    session: Session | Connection,
    candidates: Sequence[Candidate],
    *,
    inbound: Inbound | None = None,
    text_checked: bool = False,
) -> list[ItemResult]:
    """Record candidate events of any number; return one result per candidate, by index.

    inbound: a raw body to keep in the same transaction; the candidates then take its
    id. An autocommitted Connection instead of a session (the notify lane's, on
    PostgreSQL) takes one report with its body, as one statement; anything else raises
    NeedsTransaction before writing. text_checked: no text of the candidates holds a
    NUL or a lone surrogate. When the database refuses part of the set, it is split
    in halves, each in a savepoint, and the same code runs again; a candidate refused
    alone is `invalid`.
    OperationalError (the database is gone, a lock conflict) is raised for the caller.
    """
    kept, results = screen(candidates, text_checked=text_checked)
    if isinstance(session, Connection):
        one = inbound is not None and len(kept) == 1 and not results and kept[0].key is not None
        if not one or session.dialect.name != "postgresql" or inbound is None:
            raise NeedsTransaction("an autocommitted connection records one report with its body")
        return [result_of(store_pg.record_one(session, kept[0], inbound))]
    store = _store(session)
    if inbound is not None:
        inbound_id = store_inbound(session, inbound)
        for candidate in kept:
            candidate.event["inbound_report_id"] = inbound_id
    # Decided per call in arrival order (as one report per POST would be); the calls
    # themselves are locked in id order.
    kept.sort(key=lambda candidate: (candidate.message_id, candidate.index))
    results.extend(_record_isolated(session, store, kept))
    return sorted(results, key=lambda result: result.index)


class _Stored(Exception):
    """Keys the set took for new were stored already, and one moved a call: decide again."""

    def __init__(self, keys: set[str]) -> None:
        """Keep the keys found stored."""
        super().__init__(f"{len(keys)} key(s) stored already")
        self.keys = keys


def _record_isolated(
    session: Session,
    store: ModuleType,
    candidates: list[Candidate],
    stored: frozenset[str] = frozenset(),
) -> list[ItemResult]:
    """Record a set in a savepoint; when the database refuses it, split it and try again."""
    if not candidates:
        return []
    try:
        with store.savepoint(session):
            decisions = _record_set(session, store, candidates, stored)
            return [result_of(decision) for decision in decisions]
    except _Stored as found:
        return _record_isolated(session, store, candidates, stored | found.keys)
    except OperationalError:
        raise
    except DBAPIError as exc:
        if len(candidates) == 1:
            candidate = candidates[0]
            log.warning("report item %d not stored: %s", candidate.index, type(exc).__name__)
            reason = f"could not be stored: {type(exc).__name__}"
            return [ItemResult(candidate.index, candidate.message_id, INVALID, reason)]
        half = len(candidates) // 2
        return _record_isolated(session, store, candidates[:half], stored) + _record_isolated(
            session, store, candidates[half:], stored
        )


def _record_set(
    session: Session, store: ModuleType, candidates: list[Candidate], stored: frozenset[str]
) -> list[Decision]:
    """Lock, decide, insert the new events, move the calls, count the repeats.

    The candidates are taken for new but those `stored` says are not; the INSERT skips
    a key stored already and tells which it inserted. A repeat that moved nothing is
    simply counted; one that moved a call makes the set be decided again (_Stored).
    """
    states = store.lock_calls(session, {candidate.message_id for candidate in candidates})
    decided = decide(states, candidates, set(stored))
    rows = []
    for decision in decided.decisions:
        if decision.new:
            event = decision.candidate.event
            # A submit answer that moved the status keeps Infobip's refusal as its reason.
            event["reason"] = decision.reason or decision.candidate.submit_error
            event["applied"] = decision.reason is None and decision.call_id is not None
            event["call_id"] = decision.call_id
            rows.append(event)
    inserted = store.insert_events(session, rows)
    repeated = {
        decision.candidate.key: decision
        for decision in decided.decisions
        if decision.new and decision.candidate.key is not None
        and decision.candidate.key not in inserted
    }  # fmt: skip
    if any(decision.reason is None for decision in repeated.values()):
        raise _Stored(set(repeated))
    for key, decision in repeated.items():
        decision.new = False
        decided.repeats[key] += 1
    store.update_calls(session, decided.updates, utcnow())
    if decided.repeats:
        store.count_duplicates(session, decided.repeats)
    return decided.decisions


ANSWER_ITEMS = 1000  # items listed in one answer at most; the counts are always whole


# The notify answer's count of each result (DESIGN.md "Receiving delivery reports", step 6).
COUNT_NAMES = {
    APPLIED: "applied",
    NOT_APPLIED: "notApplied",
    DUPLICATE: "duplicates",
    UNMATCHED: "unmatched",
    INVALID: "invalid",
}


def summarise(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Build the notify answer: exact counts per result, and the first ANSWER_ITEMS items.

    `itemsOmitted` says how many items a longer answer left out (0 for most).
    """
    counts = Counter(item.result for item in results)
    answer: dict[str, Any] = {name: counts[result] for result, name in COUNT_NAMES.items()}
    answer["items"] = [item.as_json() for item in results[:ANSWER_ITEMS]]
    answer["itemsOmitted"] = max(0, len(results) - ANSWER_ITEMS)
    return answer


def describe_counts(answer: dict[str, Any]) -> str:
    """Say an answer's counts in one line: `applied 1, notApplied 0, ...`."""
    return ", ".join(f"{name} {answer[name]}" for name in COUNT_NAMES.values())
