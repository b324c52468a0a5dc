"""Filtered, paginated lists behind the API, the admin pages and the CLI; never commits.

DESIGN.md "Looking up": calls by number, callbackData, campaign, outcome or
status; campaigns newest first; a campaign's calls; parked report results.
Every list is keyset-paginated (app/paging.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.orm import Session

from app.db import has_nul
from app.infobip.codes import GROUP_NAMES, Outcome
from app.infobip.numbers import normalise_number
from app.launch.campaigns import get_campaign
from app.lookups.paging import InvalidQuery, Page, decode_cursor, make_page
from app.lookups.resources import call_resource, campaign_resources, iso, status_fields
from app.models import Call, CallEvent, Campaign
from app.reports.events import UNMATCHED

CALLS = "calls"
CAMPAIGN_CALLS = "campaign-calls"
CAMPAIGNS = "campaigns"
UNMATCHED_REPORTS = "unmatched"
_OUTCOMES = tuple(outcome.value for outcome in Outcome)
_MAX_TEXT = 200


@dataclass(frozen=True)
class CallFilter:
    """What a call list is narrowed to; None means any."""

    to: str | None = None
    callback_data: str | None = None
    bulk_id: str | None = None
    outcome: str | None = None
    status: str | None = None


def _text(args: Mapping[str, str], name: str) -> str | None:
    """Return a text parameter, None when absent or empty."""
    value = args.get(name)
    if value is None or value == "":
        return None
    if len(value) > _MAX_TEXT:
        raise InvalidQuery(name, f"must be at most {_MAX_TEXT} characters")
    if has_nul(value):  # no stored text has one (PostgreSQL refuses it in a query, too)
        raise InvalidQuery(name, "must not contain NUL characters")
    return value


def read_call_filter(args: Mapping[str, str]) -> CallFilter:
    """Read to, callbackData, bulkId, outcome and status from query parameters.

    `to` is normalised as at launch, so `+385 91 ...` finds `38591...`; an empty
    parameter means no filter. Raise InvalidQuery for a value that cannot match.
    """
    to = _text(args, "to")
    if to is not None:
        try:
            to = normalise_number(to)
        except ValueError as exc:
            raise InvalidQuery("to", f"is not a phone number: it {exc}") from exc
    outcome = _text(args, "outcome")
    if outcome is not None and outcome not in _OUTCOMES:
        raise InvalidQuery("outcome", "must be one of " + ", ".join(_OUTCOMES))
    status = _text(args, "status")
    return CallFilter(
        to=to,
        callback_data=_text(args, "callbackData"),
        bulk_id=_text(args, "bulkId"),
        outcome=outcome,
        status=status.upper() if status else None,
    )


def checked_call_filter(session: Session, filters: CallFilter) -> CallFilter:
    """Return the filter unchanged; raise NotFound when its bulkId names no campaign."""
    if filters.bulk_id is not None:
        get_campaign(session, filters.bulk_id)
    return filters


def _conditions(filters: CallFilter) -> list[ColumnElement[bool]]:
    """Turn a filter into WHERE conditions on calls."""
    conditions: list[ColumnElement[bool]] = []
    if filters.bulk_id is not None:
        campaign = select(Campaign.id).where(Campaign.bulk_id == filters.bulk_id)
        conditions.append(Call.campaign_id == campaign.scalar_subquery())
    if filters.to is not None:
        conditions.append(Call.to_number == filters.to)
    if filters.callback_data is not None:
        conditions.append(Call.callback_data == filters.callback_data)
    if filters.outcome is not None:
        conditions.append(Call.outcome == filters.outcome)
    if filters.status is not None:
        groups = [number for number, name in GROUP_NAMES.items() if name == filters.status]
        conditions.append(
            or_(
                Call.status_name == filters.status,
                Call.status_group_name == filters.status,
                Call.status_group_id.in_(groups),
            )
        )
    return conditions


def _call_page(rows: list[Any], limit: int, kind: str) -> Page:
    """Cut (call, campaign) rows to a page of call resources."""
    shown, cursor = make_page(rows, limit, kind, lambda row: (row[0].id,))
    return Page([call_resource(call, campaign, None) for call, campaign in shown], cursor)


def find_calls(
    session: Session, filters: CallFilter, *, limit: int, cursor: str | None = None
) -> Page:
    """Return calls matching the filter, newest first, without history."""
    after = decode_cursor(cursor, CALLS, (int,))
    query = select(Call, Campaign).join(Call.campaign).where(*_conditions(filters))
    if after is not None:
        query = query.where(Call.id < after[0])
    rows = session.execute(query.order_by(Call.id.desc()).limit(limit + 1)).all()
    return _call_page(list(rows), limit, CALLS)


def get_campaign_calls(
    session: Session,
    bulk_id: str,
    filters: CallFilter,
    *,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """Return a campaign's calls in launch order, filtered; raise NotFound for a bulkId."""
    after = decode_cursor(cursor, CAMPAIGN_CALLS, (int,))
    campaign = get_campaign(session, bulk_id)
    query = (
        select(Call, Campaign)
        .join(Call.campaign)
        .where(Call.campaign_id == campaign.id, *_conditions(replace(filters, bulk_id=None)))
    )
    if after is not None:
        query = query.where(Call.id > after[0])
    rows = session.execute(query.order_by(Call.id).limit(limit + 1)).all()
    return _call_page(list(rows), limit, CAMPAIGN_CALLS)


def find_campaigns(session: Session, *, limit: int, cursor: str | None = None) -> Page:
    """Return campaigns newest first, each with its counts (a fixed number of queries)."""
    after = decode_cursor(cursor, CAMPAIGNS, (datetime, int))
    query = select(Campaign)
    if after is not None:
        query = query.where(tuple_(Campaign.created_at, Campaign.id) < after)
    query = query.order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit + 1)
    campaigns = list(session.scalars(query))
    shown, next_cursor = make_page(campaigns, limit, CAMPAIGNS, lambda c: (c.created_at, c.id))
    return Page(campaign_resources(session, shown), next_cursor)


def unmatched_resource(event: CallEvent) -> dict[str, Any]:
    """Serialize a parked report result."""
    status, error = status_fields(event)
    return {
        "messageId": event.message_id,
        "receivedAt": iso(event.received_at),
        "status": status,
        "error": error,
        "outcome": event.outcome,
        "occurredAt": iso(event.occurred_at),
        "callbackData": event.callback_data,
        "inboundReportId": event.inbound_report_id,
    }


def find_unmatched(session: Session, *, limit: int, cursor: str | None = None) -> Page:
    """Return parked report results (no call has their messageId yet), newest first."""
    after = decode_cursor(cursor, UNMATCHED_REPORTS, (datetime, int))
    query = select(CallEvent).where(CallEvent.call_id.is_(None), CallEvent.reason == UNMATCHED)
    if after is not None:
        query = query.where(tuple_(CallEvent.received_at, CallEvent.id) < after)
    query = query.order_by(CallEvent.received_at.desc(), CallEvent.id.desc()).limit(limit + 1)
    events = list(session.scalars(query))
    shown, next_cursor = make_page(
        events, limit, UNMATCHED_REPORTS, lambda e: (e.received_at, e.id)
    )
    return Page([unmatched_resource(event) for event in shown], next_cursor)
