"""Read functions behind the API, the admin pages and the CLI; shapes of DESIGN.md "Looking up"."""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.db import select_rows
from app.infobip.codes import GROUP_NAMES
from app.launch.campaigns import NotFound, get_campaign
from app.launch.fields import id_problem
from app.models import Call, CallEvent, Campaign


def iso(moment: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 in UTC with milliseconds."""
    if moment is None:
        return None
    if moment.utcoffset():  # (rows read through app.db come in the server's time zone)
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _status(row: Call | CallEvent | Row[Any]) -> dict[str, Any] | None:
    if row.status_group_id is None and row.status_id is None and row.status_name is None:
        return None
    return {
        "groupId": row.status_group_id,
        "groupName": row.status_group_name,
        "id": row.status_id,
        "name": row.status_name,
        "description": row.status_description,
    }


def _error(row: Call | CallEvent | Row[Any]) -> dict[str, Any] | None:
    if row.error_group_id is None and row.error_id is None and row.error_name is None:
        return None
    return {
        "groupId": row.error_group_id,
        "groupName": row.error_group_name,
        "id": row.error_id,
        "name": row.error_name,
        "description": row.error_description,
        "permanent": row.error_permanent,
    }


def status_fields(row: Call | CallEvent) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Serialize the status and the error objects of a call or an event."""
    return _status(row), _error(row)


def call_cost(call: Call | Row[Any]) -> float | None:
    """Price per second times the charged duration (or the duration when not charged)."""
    seconds = call.charged_duration if call.charged_duration is not None else call.duration
    if call.price_per_second is None or seconds is None:
        return None
    return float(call.price_per_second * seconds)


# What a call's detail shows of the call and of each event (the JSON columns of the
# events, raw reports above all, are not read: a lookup runs often and must be cheap).
_DETAIL_CALL_COLUMNS = (
    Call.id, Call.message_id, Call.to_number, Call.callback_data, Call.submit_state,
    Call.status_group_id, Call.status_group_name, Call.status_id, Call.status_name,
    Call.status_description, Call.error_group_id, Call.error_group_name, Call.error_id,
    Call.error_name, Call.error_description, Call.error_permanent, Call.outcome,
    Call.duration, Call.charged_duration, Call.price_per_second, Call.currency,
    Call.answered_by, Call.dtmf, Call.collected, Call.updated_at,
)  # fmt: skip
_HISTORY_COLUMNS = (
    CallEvent.received_at, CallEvent.occurred_at, CallEvent.source, CallEvent.submit_state,
    CallEvent.status_group_id, CallEvent.status_group_name, CallEvent.status_id,
    CallEvent.status_name, CallEvent.status_description, CallEvent.error_group_id,
    CallEvent.error_group_name, CallEvent.error_id, CallEvent.error_name,
    CallEvent.error_description, CallEvent.error_permanent, CallEvent.outcome,
    CallEvent.applied, CallEvent.reason,
)  # fmt: skip


@dataclass(frozen=True)
class CampaignIds:
    """The two ids of a campaign that a call's resource shows."""

    bulk_id: str
    campaign_id: str


@functools.cache
def _call_detail_query() -> Select[Any]:
    """The call with a messageId, its campaign's two ids and its events, oldest first.

    One statement (built once: a hot path): a row per event, the call's columns
    repeated on each; one row with null event columns when the call has none.
    """
    return (
        select(
            *_DETAIL_CALL_COLUMNS,
            Campaign.bulk_id,
            Campaign.campaign_id.label("campaign_uuid"),
            *(column.label(f"event_{column.key}") for column in _HISTORY_COLUMNS),
        )
        .join(Campaign, Campaign.id == Call.campaign_id)
        .outerjoin(CallEvent, CallEvent.call_id == Call.id)
        .where(Call.message_id == bindparam("message_id"))
        .order_by(CallEvent.received_at, CallEvent.id)
    )


def _record(name: str, columns: Sequence[Any]) -> Any:
    """Return a namedtuple class named by the columns' keys."""
    return namedtuple(name, [column.key for column in columns])


# The parts of a row of _call_detail_query, by the names call_resource and event_resource read.
_CallRow = _record("_CallRow", _DETAIL_CALL_COLUMNS)
_EventRow = _record("_EventRow", _HISTORY_COLUMNS)
_CAMPAIGN_AT = len(_DETAIL_CALL_COLUMNS)
_EVENT_AT = _CAMPAIGN_AT + 2


def call_resource(
    call: Call | Row[Any],
    campaign: Campaign | CampaignIds,
    history: Sequence[CallEvent | Row[Any]] | None,
) -> dict[str, Any]:
    """Serialize a call; history is included when given."""
    price = None
    if call.price_per_second is not None or call.currency is not None:
        price = {"pricePerSecond": _number(call.price_per_second), "currency": call.currency}
    resource: dict[str, Any] = {
        "messageId": call.message_id,
        "bulkId": campaign.bulk_id,
        "campaignId": campaign.campaign_id,
        "to": call.to_number,
        "callbackData": call.callback_data,
        "submitState": call.submit_state,
        "status": _status(call),
        "error": _error(call),
        "outcome": call.outcome,
        "duration": call.duration,
        "chargedDuration": call.charged_duration,
        "price": price,
        "cost": call_cost(call),
        "answeredBy": call.answered_by,
        "dtmf": call.dtmf,
        "collected": call.collected,
        "updatedAt": iso(call.updated_at),
    }
    if history is not None:
        resource["history"] = [event_resource(event) for event in history]
    return resource


def event_resource(event: CallEvent | Row[Any]) -> dict[str, Any]:
    """Serialize one history event."""
    return {
        "receivedAt": iso(event.received_at),
        "occurredAt": iso(event.occurred_at),
        "source": event.source,
        "submitState": event.submit_state,
        "status": _status(event),
        "error": _error(event),
        "outcome": event.outcome,
        "applied": event.applied,
        "reason": event.reason,
    }


def get_call_detail(session: Session, message_id: str) -> dict[str, Any]:
    """Return a call with its whole history, oldest first; raise NotFound."""
    if id_problem(message_id) is not None:  # no call can have it; don't ask the database
        raise NotFound(f"no call has messageId {message_id!r}")
    # One statement, as plain rows (not the ORM: app.db.select_rows).
    rows = select_rows(session.connection(), _call_detail_query, {"message_id": message_id})
    if not rows:
        raise NotFound(f"no call has messageId {message_id!r}")
    first = rows[0]
    campaign = CampaignIds(first[_CAMPAIGN_AT], first[_CAMPAIGN_AT + 1])
    # The received_at of an event (never null) tells a call without events apart.
    history = [_EventRow._make(row[_EVENT_AT:]) for row in rows if row[_EVENT_AT] is not None]
    return call_resource(_CallRow._make(first[:_CAMPAIGN_AT]), campaign, history)


@dataclass
class _Tally:
    """One campaign's counts, durations and costs, added up from grouped rows."""

    states: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    duration: int = 0
    charged: int = 0
    costs: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Any) -> None:
        """Add one grouped row: (campaign, state, group, outcome, currency, n, sums...)."""
        _, state, group, outcome, currency, count, duration, charged, cost = row
        for counts, key in ((self.states, state), (self.groups, group),
                            (self.outcomes, outcome)):  # fmt: skip
            if key is not None:
                counts[str(key)] = counts.get(str(key), 0) + count
        self.duration += int(duration or 0)
        self.charged += int(charged or 0)
        if currency is not None and cost is not None:
            earlier = self.costs.get(str(currency))
            self.costs[str(currency)] = cost if earlier is None else earlier + cost


def _tallies(session: Session, ids: list[int]) -> dict[int, _Tally]:
    """Count the calls of some campaigns in one grouped scan (their rows are read once)."""
    keys = (Call.campaign_id, Call.submit_state, Call.status_group_id, Call.outcome,
            Call.currency)  # fmt: skip
    seconds = func.coalesce(Call.charged_duration, Call.duration)
    tallies = {campaign_id: _Tally() for campaign_id in ids}
    for row in session.execute(
        select(*keys, func.count(), func.sum(Call.duration), func.sum(Call.charged_duration),
               func.sum(Call.price_per_second * seconds))
        .where(Call.campaign_id.in_(ids))
        .group_by(*keys)
    ):  # fmt: skip
        tallies[row[0]].add(row)
    return tallies


def campaign_resources(session: Session, campaigns: Sequence[Campaign]) -> list[dict[str, Any]]:
    """Serialize campaigns with their counts, durations and cost per currency.

    One grouped query over all the given campaigns, whatever their number.
    """
    ids = [campaign.id for campaign in campaigns]
    if not ids:
        return []
    tallies = _tallies(session, ids)
    return [_resource(campaign, tallies[campaign.id]) for campaign in campaigns]


def _resource(campaign: Campaign, tally: _Tally) -> dict[str, Any]:
    return {
        "campaignId": campaign.campaign_id,
        "bulkId": campaign.bulk_id,
        "name": campaign.name,
        "createdAt": iso(campaign.created_at),
        "scenarioId": campaign.scenario_id,
        "totalCalls": campaign.total_calls,
        "submitStates": tally.states,
        "statusGroups": {GROUP_NAMES.get(int(k), f"GROUP_{k}"): n for k, n in tally.groups.items()},
        "outcomes": tally.outcomes,
        "totalDuration": tally.duration,
        "totalChargedDuration": tally.charged,
        "cost": {currency: round(float(total), 6) for currency, total in tally.costs.items()},
    }


def campaign_resource(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Serialize one campaign with its counts, durations and cost per currency."""
    return campaign_resources(session, [campaign])[0]


def get_campaign_detail(session: Session, bulk_id: str) -> dict[str, Any]:
    """Return the campaign resource for a bulkId; raise NotFound."""
    return campaign_resource(session, get_campaign(session, bulk_id))
