"""Parked reports: events whose messageId no call had yet, recorded again when the call appears.

DESIGN.md "Receiving delivery reports", step 5. A parked event is taken out of parking
(deleted, in the caller's transaction) and recorded again through the one recording
path, as if it had just arrived; it keeps its key, times, raw item and repeat count.
Two sweepers can never take the same event: the DELETE that returns it is the claim.
Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, exists, select
from sqlalchemy.orm import Session

from app.models import Call, CallEvent, Campaign
from app.reports.events import APPLIED, NOT_APPLIED, UNMATCHED, stored_candidate
from app.reports.record import record

_EVENTS = cast(Table, CallEvent.__table__)


def _take_parked(session: Session, event_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Delete these parked events (if still parked); return their rows, oldest first."""
    if not event_ids:
        return []
    rows = session.execute(
        delete(_EVENTS)
        .where(_EVENTS.c.id.in_(event_ids), _EVENTS.c.call_id.is_(None))
        .returning(*_EVENTS.columns)
    ).mappings()
    return sorted((dict(row) for row in rows), key=lambda row: (row["received_at"], row["id"]))


def _record_parked(session: Session, event_ids: Sequence[int]) -> int:
    """Record these parked events again; return how many found their call."""
    rows = _take_parked(session, event_ids)
    candidates = [stored_candidate(row, index) for index, row in enumerate(rows)]
    results = record(session, candidates)
    return sum(result.result in (APPLIED, NOT_APPLIED) for result in results)


def apply_parked(session: Session, *, limit: int = 1000) -> int:
    """Sweep: record every parked event whose call exists now; return how many were matched.

    The events keep the time they were received.
    """
    ids = session.scalars(
        select(CallEvent.id)
        .where(
            CallEvent.call_id.is_(None),
            CallEvent.reason == UNMATCHED,
            exists().where(Call.message_id == CallEvent.message_id),
        )
        .order_by(CallEvent.received_at, CallEvent.id)
        .limit(limit)
    ).all()
    return _record_parked(session, ids)


def rematch_campaign(session: Session, campaign: Campaign) -> int:
    """Record the parked events for the calls of a campaign that was just stored."""
    if session.scalar(select(CallEvent.id).where(CallEvent.call_id.is_(None)).limit(1)) is None:
        return 0  # the common case: nothing is parked at all
    ids = session.scalars(
        select(CallEvent.id)
        .where(
            CallEvent.call_id.is_(None),
            CallEvent.reason == UNMATCHED,
            CallEvent.message_id.in_(
                select(Call.message_id).where(Call.campaign_id == campaign.id)
            ),
        )
        .order_by(CallEvent.received_at, CallEvent.id)
    ).all()
    return _record_parked(session, ids)
