"""Parked reports: results whose messageId no call had yet, applied when the call appears.

DESIGN.md "Receiving delivery reports", step 5. Never commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, Campaign
from app.reports.record import UNMATCHED, apply_change, change_from_event


def _apply_event(session: Session, event: CallEvent, now: datetime) -> bool:
    call_id, reason = apply_change(session, event.message_id, change_from_event(event), now)
    if call_id is None:
        return False
    claimed = session.execute(
        update(CallEvent)
        .where(CallEvent.id == event.id, CallEvent.call_id.is_(None))
        .values(call_id=call_id, applied=reason is None, reason=reason)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def apply_parked(session: Session, *, now: datetime, limit: int = 1000) -> int:
    """Sweep: apply every parked event whose call exists now; return how many were matched."""
    matched = 0
    events = session.scalars(
        select(CallEvent)
        .join(Call, Call.message_id == CallEvent.message_id)
        .where(CallEvent.call_id.is_(None), CallEvent.reason == UNMATCHED)
        .order_by(CallEvent.received_at, CallEvent.id)
        .limit(limit)
    ).all()
    for event in events:
        matched += _apply_event(session, event, now)
    return matched


def rematch_campaign(session: Session, campaign: Campaign, *, now: datetime) -> int:
    """Apply parked events for the calls of a campaign that was just stored."""
    if session.scalar(select(CallEvent.id).where(CallEvent.call_id.is_(None)).limit(1)) is None:
        return 0  # the common case: nothing is parked at all
    ids = select(Call.message_id).where(Call.campaign_id == campaign.id)
    events = session.scalars(
        select(CallEvent)
        .where(
            CallEvent.call_id.is_(None),
            CallEvent.reason == UNMATCHED,
            CallEvent.message_id.in_(ids),
        )
        .order_by(CallEvent.received_at, CallEvent.id)
    ).all()
    return sum(_apply_event(session, event, now) for event in events)
