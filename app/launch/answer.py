"""The answer to a launch (DESIGN.md "Launching a campaign", step 6): its body and status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Call, Campaign


def count_submit_states(session: Session, campaign_id: int) -> dict[str, int]:
    """Count a campaign's calls by submit state."""
    rows = session.execute(
        select(Call.submit_state, func.count())
        .where(Call.campaign_id == campaign_id)
        .group_by(Call.submit_state)
    )
    return {state: count for state, count in rows}


def launch_status_code(states: dict[str, int]) -> int:
    """Pick the HTTP status of a launch answer from its calls' submit states."""
    if states.get("accepted"):
        return 201
    if states.get("queued") or states.get("submitting"):
        return 202
    if states.get("unknown"):
        return 504
    if states.get("failed"):
        return 503
    return 502


def _message_entry(row: Any) -> dict[str, Any]:
    status = None
    if row.status_group_id is not None:
        status = {
            "groupId": row.status_group_id,
            "groupName": row.status_group_name,
            "id": row.status_id,
            "name": row.status_name,
            "description": row.status_description,
        }
    return {
        "to": row.to_number,
        "messageId": row.message_id,
        "status": status,
        "submitState": row.submit_state,
    }


def launch_answer(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Build Infobip's answer shape for a campaign, extended by ivrdesk."""
    rows = session.execute(
        select(
            Call.to_number,
            Call.message_id,
            Call.submit_state,
            Call.status_group_id,
            Call.status_group_name,
            Call.status_id,
            Call.status_name,
            Call.status_description,
        )
        .where(Call.campaign_id == campaign.id)
        .order_by(Call.id)
    )
    return {
        "bulkId": campaign.bulk_id,
        "campaignId": campaign.campaign_id,
        "name": campaign.name,
        "messages": [_message_entry(row) for row in rows],
        "clamped": campaign.clamped,
        "links": {
            "campaign": f"/api/v1/campaigns/{campaign.bulk_id}",
            "calls": f"/api/v1/campaigns/{campaign.bulk_id}/calls",
        },
    }


def last_batch_errors(session: Session, campaign: Campaign) -> list[str]:
    """Return the distinct reasons recorded on the campaign's failed calls."""
    rows = session.scalars(
        select(Call.submit_error)
        .where(Call.campaign_id == campaign.id, Call.submit_error.is_not(None))
        .distinct()
        .limit(5)
    )
    return [r for r in rows if r]
