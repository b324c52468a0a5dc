"""What the hostile-input sweeps share: a call recorded first, and the error shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from app.models import Call, CallEvent, Campaign
from tests.conftest import DATA
from tests.reliability.support import JSON_TYPE, Stack, count_rows, flat_launch


@dataclass
class Recorded:
    """A call launched and answered before the sweep, as the API and the database show it."""

    message_id: str
    view: dict[str, Any]
    counts: dict[str, int]
    launches: int


def row_counts(stack: Stack) -> dict[str, int]:
    """Count campaigns, calls and events."""
    with stack.sessions() as session:
        return {m.__name__: count_rows(session, m) for m in (Campaign, Call, CallEvent)}


def record_answered_call(stack: Stack) -> Recorded:
    """Launch one call, record an answered report for it, and keep how it looks."""
    launched = stack.launch(flat_launch("keep", ["385981112233"]))
    assert launched.status_code == 201, launched.text
    message_id = launched.json()["messages"][0]["messageId"]
    report = json.loads((DATA / "report-v2-answered.json").read_text())
    report["results"][0]["messageId"] = message_id
    answer = stack.notify(json.dumps(report).encode(), JSON_TYPE)
    assert answer.json()["applied"] == 1, answer.text
    view = stack.get(f"/api/v1/calls/{message_id}").json()
    assert view["status"]["name"] == "DELIVERED_TO_HANDSET"
    assert len(view["history"]) == 2
    return Recorded(message_id, view, row_counts(stack), stack.simulator.launch_count)


def assert_unchanged(stack: Stack, before: Recorded) -> None:
    """Check the recorded call's status and history, the row counts and Infobip's requests."""
    assert stack.get(f"/api/v1/calls/{before.message_id}").json() == before.view
    assert row_counts(stack) == before.counts
    assert stack.simulator.launch_count == before.launches


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check the common error shape and return its error object."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert all(set(d) == {"path", "message"} for d in error["details"])
    return error  # type: ignore[no-any-return]
