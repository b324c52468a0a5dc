"""Calls still waiting for a final status after their validity window; never commits.

Infobip gives up on a call after its message's validityPeriod (INFOBIP.md §1:
default and maximum 2880 minutes, ignored when sendingSpeed is set), counted
from sendAt when the launch was scheduled. A call without a final status
after that was never reported on: its report was lost, or it was never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from app.infobip.limits import MAX_VALIDITY_PERIOD
from app.models import Call, Campaign, SubmitState
from app.reports.due import message_send_at

DEFAULT_VALIDITY = timedelta(minutes=MAX_VALIDITY_PERIOD)
# Calls refused or failed at submission were never dialled: nothing is due for them.
_NEVER_DIALLED = (SubmitState.REJECTED.value, SubmitState.FAILED.value)


@dataclass(frozen=True)
class StuckCall:
    """A call without a final status past the moment one was due."""

    call: Call
    bulk_id: str
    due_at: datetime


@dataclass(frozen=True)
class ValidityWindow:
    """When a message's calls could start, and how long Infobip keeps trying them."""

    starts_at: datetime | None
    length: timedelta


def validity_window(fields: dict[str, Any], older_than: timedelta | None) -> ValidityWindow:
    """Return when a message's calls could start and how long Infobip keeps trying them."""
    starts_at = message_send_at(fields)
    if older_than is not None:
        return ValidityWindow(starts_at, older_than)
    minutes = fields.get("validityPeriod")
    if "sendingSpeed" in fields or not isinstance(minutes, int) or minutes <= 0:
        return ValidityWindow(starts_at, DEFAULT_VALIDITY)
    return ValidityWindow(starts_at, min(timedelta(minutes=minutes), DEFAULT_VALIDITY))


def find_stuck_calls(
    session: Session, *, now: datetime, older_than: timedelta | None = None, limit: int = 1000
) -> list[StuckCall]:
    """Return calls with no final status past their validity window, oldest first.

    With `older_than`, that length replaces every message's validity window.
    """
    waiting = [Call.status_final.is_(False), Call.submit_state.not_in(_NEVER_DIALLED)]
    groups = session.execute(
        select(Call.campaign_id, Call.message_index)
        .where(*waiting)
        .group_by(Call.campaign_id, Call.message_index)
    ).all()
    if not groups:
        return []
    campaign_ids = sorted({campaign_id for campaign_id, _ in groups})
    campaigns = {
        c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
    }
    windows: dict[tuple[int, int], ValidityWindow] = {}
    conditions: list[ColumnElement[bool]] = []
    for campaign_id, index in groups:
        window = validity_window(campaigns[campaign_id].message_fields(index), older_than)
        if window.starts_at is not None and window.starts_at + window.length > now:
            continue
        windows[(campaign_id, index)] = window
        conditions.append(
            and_(
                Call.campaign_id == campaign_id,
                Call.message_index == index,
                Call.created_at < now - window.length,
            )
        )
    if not conditions:
        return []
    rows = session.execute(
        select(Call, Campaign.bulk_id)
        .join(Call.campaign)
        .where(*waiting, or_(*conditions))
        .order_by(Call.created_at, Call.id)
        .limit(limit)
    ).all()
    stuck = []
    for call, bulk_id in rows:
        window = windows[(call.campaign_id, call.message_index)]
        start = max(call.created_at, window.starts_at or call.created_at)
        stuck.append(StuckCall(call, bulk_id, start + window.length))
    return stuck
