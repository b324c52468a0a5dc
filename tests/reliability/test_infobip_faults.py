"""Infobip failing in each documented way, seen through gunicorn (DESIGN.md "Launching", 4-6).

tests/test_launch.py covers the same rules over werkzeug's server; here each fault goes
through the shipped gunicorn configuration, briefly (IVR_INFOBIP_TIMEOUT is 0.5 s).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from app.models import Call, CallEvent, EventSource
from app.simulator.server import Faults
from tests.reliability.support import Stack, flat_launch

NUMBERS = ("41793026727", "41793026731")


@dataclass(frozen=True)
class Case:
    """A fault of the fake Infobip and what ivrdesk must make of it."""

    faults: Faults
    status: int
    states: dict[str, int]
    requests: int
    code: str | None = None
    reject_prefixes: tuple[str, ...] = ()
    at_least_seconds: float = 0.0


CASES = {
    "401": Case(Faults(mode="401"), 502, {"rejected": 2}, 1, "infobip_rejected"),
    "500": Case(Faults(mode="500"), 503, {"failed": 2}, 3, "infobip_unavailable"),
    "500-then-recovery": Case(Faults(mode="500", count=1), 201, {"accepted": 2}, 2),
    "429-no-retry-after": Case(Faults(mode="429"), 503, {"failed": 2}, 3, "infobip_unavailable"),
    "429-retry-after-60": Case(
        Faults(mode="429", retry_after=60), 503, {"failed": 2}, 1, "infobip_unavailable"
    ),
    "429-retry-after-1": Case(
        Faults(mode="429", retry_after=1, count=1), 201, {"accepted": 2}, 2, at_least_seconds=1.0
    ),
    "hang": Case(Faults(mode="hang", hang_seconds=1.5), 504, {"unknown": 2}, 1, "infobip_timeout"),
    "drop": Case(Faults(mode="drop"), 504, {"unknown": 2}, 1, "infobip_timeout"),
    "200-with-a-rejected-destination": Case(
        Faults(), 201, {"accepted": 1, "rejected": 1}, 1, reject_prefixes=("4179302673",)
    ),
}
OUTCOMES = {
    "accepted": "pending",
    "rejected": "not_sent",
    "failed": "not_sent",
    "unknown": "unknown",
}


@pytest.mark.parametrize("name", list(CASES))
def test_infobip_fault_through_gunicorn(stack: Stack, name: str) -> None:
    case = CASES[name]
    simulator = stack.simulator
    simulator.faults = dataclasses.replace(case.faults)  # the fake Infobip counts it down
    simulator.reject_prefixes = case.reject_prefixes
    started = time.monotonic()
    response = stack.launch(flat_launch(f"fault-{name}", NUMBERS))
    elapsed = time.monotonic() - started

    assert response.status_code == case.status, response.text
    answer = response.json()
    if case.code is None:
        assert "error" not in answer
    else:
        assert answer["error"]["code"] == case.code
        assert answer["error"]["message"]
    states = [m["submitState"] for m in answer["messages"]]
    assert {s: states.count(s) for s in states} == case.states
    assert simulator.launch_count == case.requests
    assert elapsed >= case.at_least_seconds
    with stack.sessions() as session:
        query = select(Call.submit_state, func.count()).group_by(Call.submit_state)
        stored = dict(session.execute(query).all())
        assert stored == case.states
        outcomes = dict(session.execute(select(Call.to_number, Call.outcome)).all())
        judged = dict(session.execute(select(Call.to_number, Call.submit_state)).all())
        assert outcomes == {to: OUTCOMES[state] for to, state in judged.items()}
        submit_events = session.scalars(
            select(CallEvent.submit_state).where(CallEvent.source == EventSource.SUBMIT.value)
        ).all()
        assert Counter(submit_events) == Counter(states)
    if name == "hang":
        # The fake Infobip goes on after its hang and accepts the calls: "unknown" was right.
        deadline = time.monotonic() + 5
        while len(simulator.message_counts) < len(NUMBERS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(simulator.message_counts.values()) == [1, 1]
