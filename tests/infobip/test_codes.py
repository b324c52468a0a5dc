"""Outcomes (INFOBIP.md §5, every rule in order), finality and precedence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.infobip.codes import (
    Error,
    Outcome,
    Status,
    derive_outcome,
    is_final,
    submit_outcome,
    supersedes,
)

OK = Error(0, 10000, "NORMAL_HANGUP")


@pytest.mark.parametrize(
    ("status", "error", "answered_by", "outcome"),
    [
        # rule 1: no status, PENDING, DELIVERED_TO_OPERATOR
        (None, None, None, Outcome.PENDING),
        (Status(None), None, None, Outcome.PENDING),
        (Status(1, 26, "PENDING_ACCEPTED"), None, None, Outcome.PENDING),
        (Status(1, 3, "PENDING_WAITING_DELIVERY"), Error(1, 5002, "EC_VOICE_USER_BUSY"), None,
         Outcome.PENDING),
        (Status(3, 2, "DELIVERED_TO_OPERATOR"), None, None, Outcome.PENDING),
        # rule 2: DELIVERED
        (Status(3, 5, "DELIVERED_TO_HANDSET"), OK, "MACHINE", Outcome.ANSWERED_MACHINE),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), Error(0, 5001, "VOICE_ANSWERED_MACHINE"), None,
         Outcome.ANSWERED_MACHINE),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), Error(0, 10002, "MACHINE_DETECTED"), "HUMAN",
         Outcome.ANSWERED_MACHINE),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), None, None, Outcome.ANSWERED_HUMAN),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), OK, "HUMAN", Outcome.ANSWERED_HUMAN),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), Error(0, 5000, "VOICE_ANSWERED"), None,
         Outcome.ANSWERED_HUMAN),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), Error(0, 10003, "HUMAN_DETECTED"), None,
         Outcome.ANSWERED_HUMAN),
        (Status(3, 5, "DELIVERED_TO_HANDSET"), Error(1, 10102, "DEVICE_UNAVAILABLE"), None,
         Outcome.UNKNOWN),
        # rule 3: busy
        (Status(2, 97, "BUSY"), None, None, Outcome.BUSY),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 5002, "EC_VOICE_USER_BUSY"), None,
         Outcome.BUSY),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 10201, "BUSY"), None, Outcome.BUSY),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 5999, "VOICE_BUSY"), None,
         Outcome.BUSY),
        # rule 4: no answer
        (Status(2, 96, "NO_ANSWER"), None, None, Outcome.NO_ANSWER),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 5003, "EC_VOICE_NO_ANSWER"), None,
         Outcome.NO_ANSWER),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 10200, "NO_ANSWER"), None,
         Outcome.NO_ANSWER),
        (Status(4, 15, "EXPIRED_EXPIRED"), Error(2, 5998, "VOICE_NO_ANSWER"), None,
         Outcome.NO_ANSWER),
        # rule 5: declined
        (Status(2, 98, "CANCELLED"), None, None, Outcome.DECLINED),
        (Status(5, 99, "REJECTED"), None, None, Outcome.DECLINED),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 5603, "EC_DECLINE"), None,
         Outcome.DECLINED),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 10202, "CANCELLED"), None,
         Outcome.DECLINED),
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(2, 10203, "REJECTED"), None,
         Outcome.DECLINED),
        # rule 6: expired
        (Status(4, 15, "EXPIRED_EXPIRED"), None, None, Outcome.EXPIRED),
        (Status(4, 29, "EXPIRED_DLR_UNKNOWN"), Error(1, 10102, "DEVICE_UNAVAILABLE"), None,
         Outcome.EXPIRED),
        # rule 7: rejected
        (Status(5, 52, "REJECTED_DESTINATION"), None, None, Outcome.REJECTED),
        (Status(5, 12, "REJECTED_NOT_ENOUGH_CREDITS"), Error(3, 4000, "X"), None,
         Outcome.REJECTED),
        # rule 8: undeliverable
        (Status(2, 9, "UNDELIVERABLE_NOT_DELIVERED"), Error(1, 10102, "DEVICE_UNAVAILABLE"), None,
         Outcome.FAILED),
        (Status(2, 4, "UNDELIVERABLE_REJECTED_OPERATOR"), Error(3, 5480, "X"), None,
         Outcome.FAILED),
        (Status(2, 31, "UNDELIVERABLE_NOT_SENT"), None, None, Outcome.FAILED),
        # rule 9: an unknown group
        (Status(9, 1, "NEW_GROUP"), None, None, Outcome.UNKNOWN),
        # statuses are keyed on group, id and name together (INFOBIP.md §5): an id alone
        # in another group, or under another name, is not BUSY, NO_ANSWER or declined
        (Status(5, 97, "REJECTED_OTHER"), None, None, Outcome.REJECTED),
        (Status(2, 97, "UNDELIVERABLE_OTHER"), None, None, Outcome.FAILED),
        (Status(4, 96, "EXPIRED_OTHER"), None, None, Outcome.EXPIRED),
        (Status(2, 99, "REJECTED"), None, None, Outcome.FAILED),
        (Status(5, 98, "CANCELLED"), None, None, Outcome.REJECTED),
        (Status(2, 97, "busy"), None, None, Outcome.BUSY),  # names compared in upper case
    ],
)  # fmt: skip
def test_derive_outcome_follows_the_ordered_rules(
    status: Status | None, error: Error | None, answered_by: str | None, outcome: Outcome
) -> None:
    assert derive_outcome(status, error, answered_by) is outcome


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (None, False),
        (Status(1, 26), False),
        (Status(2, 97), True),
        (Status(3, 2), False),
        (Status(3, 5), True),
        (Status(4, 15), True),
        (Status(5, 23), True),
        (Status(7, 1), False),
    ],
)
def test_is_final(status: Status | None, final: bool) -> None:
    assert is_final(status) is final


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        ("queued", Outcome.PENDING),
        ("submitting", Outcome.PENDING),
        ("accepted", Outcome.PENDING),
        ("rejected", Outcome.NOT_SENT),
        ("failed", Outcome.NOT_SENT),
        ("unknown", Outcome.UNKNOWN),
    ],
)
def test_submit_outcome(state: str, outcome: Outcome) -> None:
    assert submit_outcome(state) is outcome


EARLY = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)
LATE = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("new_final", "new_time", "current_final", "current_time", "reason"),
    [
        (True, EARLY, False, LATE, None),
        (True, None, False, LATE, None),
        (False, LATE, True, EARLY, "after_final"),
        (True, LATE, True, EARLY, None),
        (True, EARLY, True, LATE, "late"),
        (True, EARLY, True, EARLY, "late"),
        (True, None, True, EARLY, "late"),
        (False, LATE, False, EARLY, None),
        (False, EARLY, False, LATE, "late"),
        (False, LATE, False, None, None),
        (False, None, False, None, "late"),
    ],
)
def test_supersedes(
    new_final: bool,
    new_time: datetime | None,
    current_final: bool,
    current_time: datetime | None,
    reason: str | None,
) -> None:
    assert supersedes(new_final, new_time, current_final, current_time) == reason
