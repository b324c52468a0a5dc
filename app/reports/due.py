"""When a call was due to be dialled: its send attempt, its sendAt, its place in a paced bulk.

DESIGN.md "Reconciliation with Infobip": a call's report (or its absence from
Infobip's logs) is judged IVR_RECONCILE_AFTER minutes after the latest of its send
attempt (its batch's claim), its message's `sendAt`, and, when the message has a
`sendingSpeed`, its place in the message's queue at that speed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Call, Campaign
from app.reports.fields import parse_timestamp

R = TypeVar("R", bound="OpenRow")
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}


class OpenRow(Protocol):
    """What due_times needs of a selected call."""

    @property
    def id(self) -> int: ...
    @property
    def campaign_id(self) -> int: ...
    @property
    def message_index(self) -> int: ...
    @property
    def claimed_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime: ...


def due_times(
    session: Session, campaigns: Mapping[int, Campaign], rows: Sequence[R]
) -> dict[int, list[tuple[R, datetime]]]:
    """Give every row its due time, grouped by campaign id (rows keep their order)."""
    grouped: dict[int, list[tuple[R, datetime]]] = {}
    places: dict[tuple[int, int], dict[int, int]] = {}
    for row in rows:
        message = campaigns[row.campaign_id].message_fields(row.message_index)
        due = row.claimed_at or row.updated_at
        send_at = message_send_at(message)
        if send_at is not None:
            due = max(due, send_at)
        pace = _seconds_per_call(message)
        if pace:
            key = (row.campaign_id, row.message_index)
            if key not in places:
                places[key] = _places(session, *key)
            due += timedelta(seconds=pace * places[key].get(row.id, 0))
        grouped.setdefault(row.campaign_id, []).append((row, due))
    return grouped


def message_send_at(fields: dict[str, Any]) -> datetime | None:
    """Read a stored message's sendAt (validated at launch); None when absent or unreadable."""
    try:
        moment, _ = parse_timestamp(fields.get("sendAt"))
    except ValueError:
        return None
    return moment


def _seconds_per_call(message: dict[str, Any]) -> float:
    """Return the seconds between two calls of a paced message; 0 when it is not paced."""
    speed = message.get("sendingSpeed")
    if not isinstance(speed, dict):
        return 0.0
    calls, unit = speed.get("speed"), UNIT_SECONDS.get(str(speed.get("timeUnit")))
    if not isinstance(calls, int) or calls <= 0 or unit is None:
        return 0.0
    return unit / calls


def _places(session: Session, campaign_id: int, message_index: int) -> dict[int, int]:
    """Number a paced message's calls from 0, in the order they were stored."""
    ids = session.scalars(
        select(Call.id)
        .where(Call.campaign_id == campaign_id, Call.message_index == message_index)
        .order_by(Call.id)
    )
    return {call_id: place for place, call_id in enumerate(ids)}
