"""Build Infobip's launch request for some calls of a stored campaign (INFOBIP.md §1); pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE
from app.models import Campaign


class Destined(Protocol):
    """What building a request needs of a call."""

    @property
    def message_index(self) -> int: ...
    @property
    def message_id(self) -> str: ...
    @property
    def to_number(self) -> str: ...


def build_launch_body(
    campaign: Campaign,
    calls: Iterable[Destined],
    *,
    notify_url: str | None,
    notify_content_type: str,
) -> dict[str, Any]:
    """Build Infobip's request for some calls of a campaign, with ivrdesk's notifyUrl.

    Without a notify URL (pull mode) neither notifyUrl nor notifyContentType is sent:
    Infobip then keeps the calls' reports for GET /voice/1/reports (INFOBIP.md §6).
    """
    grouped: dict[int, list[dict[str, str]]] = {}
    for call in calls:
        grouped.setdefault(call.message_index, []).append(
            {"to": call.to_number, "messageId": call.message_id}
        )
    messages = []
    for index, destinations in grouped.items():
        stored = campaign.messages[index]
        if notify_url is None:
            fields = {key: value for key, value in stored.items() if key != "notifyContentType"}
        else:
            fields = {"notifyContentType": notify_content_type, **stored, "notifyUrl": notify_url}
        for start in range(0, len(destinations), MAX_DESTINATIONS_PER_MESSAGE):
            chunk = destinations[start : start + MAX_DESTINATIONS_PER_MESSAGE]
            messages.append({**fields, "destinations": chunk})
    return {"bulkId": campaign.bulk_id, "messages": messages}
