"""P4 data: what the benchmark's campaigns hold (bench/p4_rows.py writes them as COPY text).

One big campaign (`calls` calls, in messages of 20,000 destinations, each message with its
callbackData) and one small campaign for the memory comparison. Every call was accepted
at submission (a submit event), then Infobip reported PENDING_ENROUTE and
DELIVERED_TO_OPERATOR, then a final status (mixed outcomes, about 4% never final), then
late reports that were kept but not applied. A destination number is shared by about
three calls; one number (HOT_NUMBER) by one call in 500.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE

BIG = "p4-big"
SMALL = "p4-small"
HOT_NUMBER = "41791234567"
HOT_EVERY = 500
PER_MESSAGE = MAX_DESTINATIONS_PER_MESSAGE
BATCH_SIZE = 1000
DIAL_SECONDS = 0.02  # calls are dialled 50 a second
SCENARIO = "p4-scenario-0001"
PRICE = "0.00120000"
NULL = "\\N"

CALL_COLUMNS = (
    "id", "campaign_id", "batch_id", "message_index", "message_id", "to_number",
    "callback_data", "submit_state", "submit_error", "outcome",
    "status_group_id", "status_group_name", "status_id", "status_name", "status_description",
    "status_final", "status_occurred_at",
    "error_group_id", "error_group_name", "error_id", "error_name", "error_description",
    "error_permanent", "duration", "charged_duration", "price_per_second", "currency",
    "answered_by", "dtmf", "collected", "sent_at", "answered_at", "ended_at",
    "created_at", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "call_id", "message_id", "inbound_report_id", "source", "submit_state",
    "status_group_id", "status_group_name", "status_id", "status_name", "status_description",
    "error_group_id", "error_group_name", "error_id", "error_name", "error_description",
    "error_permanent", "outcome", "occurred_at", "occurred_at_text", "received_at",
    "duration", "charged_duration", "price_per_second", "currency", "answered_by", "dtmf",
    "collected", "callback_data", "sent_at", "answered_at", "ended_at",
    "raw", "applied", "reason", "dedupe_key", "duplicates",
)  # fmt: skip
BATCH_COLUMNS = (
    "id", "campaign_id", "seq", "state", "size", "not_before", "created_at", "claimed_at",
    "claimed_by", "finished_at", "resubmission", "http_status", "error",
)  # fmt: skip

Status = tuple[int, str, int, str, str]
Error = tuple[int, str, int, str, str, bool]

ACCEPTED: Status = (1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")
ENROUTE: Status = (1, "PENDING", 7, "PENDING_ENROUTE", "Message sent to next instance")
WAITING: Status = (1, "PENDING", 3, "PENDING_WAITING_DELIVERY", "Waiting for delivery report")
HANDSET: Status = (3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset")
OPERATOR: Status = (3, "DELIVERED", 2, "DELIVERED_TO_OPERATOR", "Message delivered to operator")
NO_ERROR: Error = (0, "OK", 0, "NO_ERROR", "No Error", False)


@dataclass(frozen=True)
class Final:
    """One kind of final report (INFOBIP.md §5) and how often calls end with it."""

    weight: int
    outcome: str
    status: Status | None  # None: the call never got a final report
    error: Error | None
    answered_by: str | None
    ring_seconds: int


_HANDSET = (1, "HANDSET_ERRORS")
FINALS = (
    Final(45, "answered_human", HANDSET,
          (0, "OK", 10000, "NORMAL_HANGUP", "Normal hang-up", True), "HUMAN", 6),
    Final(10, "answered_machine", HANDSET,
          (0, "OK", 10002, "MACHINE_DETECTED", "Machine detected", True), "MACHINE", 5),
    Final(12, "busy", (2, "UNDELIVERABLE", 97, "BUSY", "User busy"),
          (*_HANDSET, 10201, "BUSY", "User busy", True), None, 3),
    Final(17, "no_answer", (2, "UNDELIVERABLE", 96, "NO_ANSWER", "No answer"),
          (*_HANDSET, 10200, "NO_ANSWER", "No answer", True), None, 30),
    Final(3, "declined", (2, "UNDELIVERABLE", 98, "CANCELLED", "Call cancelled"),
          (*_HANDSET, 10203, "REJECTED", "Call rejected by the callee", True), None, 8),
    Final(5, "failed", (2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Not delivered"),
          (*_HANDSET, 10102, "DEVICE_UNAVAILABLE", "Device unavailable", True), None, 2),
    Final(2, "expired", (4, "EXPIRED", 15, "EXPIRED_EXPIRED", "Message expired"),
          None, None, 0),
    Final(2, "rejected", (5, "REJECTED", 52, "REJECTED_DESTINATION", "Destination rejected"),
          (3, "OPERATOR_ERRORS", 10305, "INVALID_DESTINATION", "Invalid destination", True),
          None, 0),
    Final(4, "pending", None, None, None, 0),
)  # fmt: skip
COLLECTED: tuple[dict[str, dict[str, str] | None] | None, ...] = (
    None,
    {"collectedDtmfs": {"menu": "1"}, "collectedMappedDtmfs": {"menu": "CONFIRM"},
     "spokenInput": None, "matchedSpokenInput": None},
    {"collectedDtmfs": {"menu": "2"}, "collectedMappedDtmfs": {"menu": "CALL_ME_BACK"},
     "spokenInput": None, "matchedSpokenInput": None},
)  # fmt: skip


@dataclass(frozen=True)
class Campaign:
    """One campaign to load: its database id, bulkId, size, first call id and start time."""

    id: int
    bulk_id: str
    calls: int
    first_call_id: int
    first_batch_id: int
    started: datetime

    def messages(self) -> int:
        """Say how many message objects (of up to 20,000 destinations) the launch had."""
        return max(1, math.ceil(self.calls / PER_MESSAGE))

    def callback_data(self, message_index: int) -> str:
        """Return the callbackData of one message of the launch."""
        return f"{self.bulk_id}-part-{message_index:03d}"


def campaign_row(campaign: Campaign) -> dict[str, Any]:
    """Return the campaigns row of a campaign (launched through the API, asynchronously)."""
    messages = [
        {
            "scenarioId": SCENARIO,
            "callbackData": campaign.callback_data(k),
            "notifyContentType": "application/json",
            "validityPeriod": 720,
        }
        for k in range(campaign.messages())
    ]
    return {
        "id": campaign.id,
        "campaign_id": str(uuid.UUID(int=campaign.id, version=4)),
        "bulk_id": campaign.bulk_id,
        "name": f"P4 {campaign.bulk_id} ({campaign.calls} calls)",
        "scenario_id": SCENARIO,
        "created_at": campaign.started,
        "total_calls": campaign.calls,
        "asynchronous": True,
        "fingerprint": hashlib.sha256(campaign.bulk_id.encode()).hexdigest(),
        "messages": json.dumps(messages),
        "client_notify_urls": json.dumps([None] * len(messages)),
        "clamped": "[]",
    }
