"""Infobip status groups, finality, precedence between statuses, and outcomes.

Pure functions, no database. The codes and the ordered outcome rules are those of
INFOBIP.md §5; the precedence rules are DESIGN.md "Receiving delivery reports", step 4.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Outcome(enum.StrEnum):
    """What happened to a call, in ivrdesk's words (DESIGN.md "Looking up")."""

    PENDING = "pending"
    ANSWERED_HUMAN = "answered_human"
    ANSWERED_MACHINE = "answered_machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    NOT_SENT = "not_sent"
    UNKNOWN = "unknown"


# Status groups (INFOBIP.md §5).
PENDING = 1
UNDELIVERABLE = 2
DELIVERED = 3
EXPIRED = 4
REJECTED = 5
FINAL_GROUPS = frozenset({UNDELIVERABLE, DELIVERED, EXPIRED, REJECTED})
GROUP_NAMES = {
    PENDING: "PENDING",
    UNDELIVERABLE: "UNDELIVERABLE",
    DELIVERED: "DELIVERED",
    EXPIRED: "EXPIRED",
    REJECTED: "REJECTED",
}
DELIVERED_TO_OPERATOR = 2
ERROR_GROUP_OK = 0

# Statuses the outcome rules name, each keyed on group, id and name together: an id alone
# can mean two things (INFOBIP.md §5, id 87).
STATUS_NO_ANSWER = (UNDELIVERABLE, 96, "NO_ANSWER")
STATUS_BUSY = (UNDELIVERABLE, 97, "BUSY")
STATUS_CANCELLED = (UNDELIVERABLE, 98, "CANCELLED")
STATUS_REJECTED = (REJECTED, 99, "REJECTED")
STATUS_DUPLICATE_MESSAGE_ID = (REJECTED, 23, "REJECTED_DUPLICATE_MESSAGE_ID")

# Error codes, legacy 5xxx and current 10xxx families (INFOBIP.md §5 table).
MACHINE_ERRORS = frozenset({5001, 10002})
BUSY_ERRORS = frozenset({5002, 10201})
NO_ANSWER_ERRORS = frozenset({5003, 10200})
DECLINED_ERRORS = frozenset({5603, 10202, 10203})


@dataclass(frozen=True)
class Status:
    """Infobip's status object, reduced to what decisions need."""

    group_id: int | None
    id: int | None = None
    name: str | None = None

    def is_(self, code: tuple[int, int, str]) -> bool:
        """Say whether this is the status keyed by (group, id, name)."""
        return (self.group_id, self.id, (self.name or "").upper()) == code


@dataclass(frozen=True)
class Error:
    """Infobip's error object, reduced to what decisions need."""

    group_id: int | None
    id: int | None = None
    name: str | None = None


def is_final(status: Status | None) -> bool:
    """Say whether a status is final: groups 2-5, except DELIVERED_TO_OPERATOR."""
    if status is None or status.group_id not in FINAL_GROUPS:
        return False
    return not (status.group_id == DELIVERED and status.id == DELIVERED_TO_OPERATOR)


def is_accepted_at_submit(status: Status, *, retry: bool) -> bool:
    """Judge one destination of Infobip's 200 answer (DESIGN.md "Launching", step 4)."""
    if status.group_id in (PENDING, DELIVERED):
        return True
    return retry and is_already_accepted(status)


def is_already_accepted(status: Status) -> bool:
    """Say whether Infobip refused a destination because it has its messageId (status 23)."""
    return status.is_(STATUS_DUPLICATE_MESSAGE_ID)


def derive_outcome(status: Status | None, error: Error | None, answered_by: str | None) -> Outcome:
    """Apply the ordered rules of INFOBIP.md §5 to one report."""
    if status is None or status.group_id is None or status.group_id == PENDING:
        return Outcome.PENDING
    if status.group_id == DELIVERED and status.id == DELIVERED_TO_OPERATOR:
        return Outcome.PENDING
    error_id = error.id if error else None
    error_name = (error.name or "").upper() if error else ""
    if status.group_id == DELIVERED:
        if (answered_by or "").upper() == "MACHINE" or error_id in MACHINE_ERRORS:
            return Outcome.ANSWERED_MACHINE
        if error is None or error.group_id == ERROR_GROUP_OK:
            return Outcome.ANSWERED_HUMAN
        return Outcome.UNKNOWN
    if status.is_(STATUS_BUSY) or error_id in BUSY_ERRORS or "BUSY" in error_name:
        return Outcome.BUSY
    if status.is_(STATUS_NO_ANSWER) or error_id in NO_ANSWER_ERRORS or "NO_ANSWER" in error_name:
        return Outcome.NO_ANSWER
    declined = status.is_(STATUS_CANCELLED) or status.is_(STATUS_REJECTED)
    if declined or error_id in DECLINED_ERRORS:
        return Outcome.DECLINED
    if status.group_id == EXPIRED:
        return Outcome.EXPIRED
    if status.group_id == REJECTED:
        return Outcome.REJECTED
    if status.group_id == UNDELIVERABLE:
        return Outcome.FAILED
    return Outcome.UNKNOWN


def submit_outcome(submit_state: str) -> Outcome:
    """Give the outcome of a call that has no report yet, from its submit state."""
    if submit_state in ("rejected", "failed"):
        return Outcome.NOT_SENT
    if submit_state == "unknown":
        return Outcome.UNKNOWN
    return Outcome.PENDING


AFTER_FINAL = "after_final"
LATE = "late"
LATER_WINS = "later_wins"
# Which status wins, by (the new one is final, the current one is final) (DESIGN.md
# "Receiving delivery reports", step 4): None replaces, a reason keeps the current one,
# LATER_WINS compares the times. supersedes() reads this table, and the PostgreSQL
# statement of app.reports.store_pg is generated from it.
PRECEDENCE: dict[tuple[bool, bool], str | None] = {
    (True, False): None,  # a final status always replaces a non-final one
    (False, True): AFTER_FINAL,  # a non-final status never replaces a final one
    (True, True): LATER_WINS,
    (False, False): LATER_WINS,
}


def supersedes(
    new_final: bool,
    new_time: datetime | None,
    current_final: bool,
    current_time: datetime | None,
) -> str | None:
    """Decide whether a new status replaces the current one; None if it does, else the reason.

    Between two finals or two non-finals the later time wins; an equal or missing time
    keeps the current status (``late``).
    """
    rule = PRECEDENCE[(new_final, current_final)]
    if rule != LATER_WINS:
        return rule
    if new_time is not None and (current_time is None or new_time > current_time):
        return None
    return LATE
