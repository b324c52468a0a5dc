"""The fake Infobip's status codes and report bodies: what a report of a simulated call says.

Codes and shapes follow INFOBIP.md (sections 4 and 5) and its payload samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree

OUTCOMES = ("answered_human", "answered_machine", "busy", "no_answer", "failed", "expired")
JSON_TYPE = "application/json"
XML_TYPE = "application/xml"


def _status(group_id: int, group: str, code: int, name: str, text: str) -> dict[str, Any]:
    """Build an Infobip status object (INFOBIP.md section 5)."""
    return {"groupId": group_id, "groupName": group, "id": code, "name": name, "description": text}


def _error(group_id: int, group: str, code: int, name: str, text: str) -> dict[str, Any]:
    """Build an Infobip error object (INFOBIP.md section 5); all simulated errors are final."""
    return {**_status(group_id, group, code, name, text), "permanent": True}


ACCEPTED = _status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message accepted, pending for delivery.")
DUPLICATE = _status(
    5, "REJECTED", 23, "REJECTED_DUPLICATE_MESSAGE_ID", "Message with this ID was already sent."
)
REJECTED_DESTINATION = _status(5, "REJECTED", 52, "REJECTED_DESTINATION", "Destination rejected.")
INTERMEDIATE = (
    _status(1, "PENDING", 3, "PENDING_WAITING_DELIVERY", "Message sent, waiting for delivery."),
    _status(3, "DELIVERED", 2, "DELIVERED_TO_OPERATOR", "Message delivered to operator."),
)
NO_ERROR = {**_status(0, "OK", 0, "NO_ERROR", "No Error"), "permanent": False}
DELIVERED = _status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset")
UNDELIVERED = _status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Not delivered")
UNAVAILABLE = _error(1, "HANDSET_ERRORS", 10102, "DEVICE_UNAVAILABLE", "Device unavailable.")
FINAL_CODES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "answered_human": (
        DELIVERED,
        _error(0, "OK", 10000, "NORMAL_HANGUP", "The call ended normally."),
    ),
    "answered_machine": (
        DELIVERED,
        _error(0, "OK", 10002, "MACHINE_DETECTED", "A machine answered the call."),
    ),
    "busy": (
        _status(2, "UNDELIVERABLE", 97, "BUSY", "Callee was busy"),
        _error(2, "USER_ERRORS", 10201, "BUSY", "The callee was busy."),
    ),
    "no_answer": (
        _status(2, "UNDELIVERABLE", 96, "NO_ANSWER", "Call delivered to device, but not answered"),
        _error(2, "USER_ERRORS", 10200, "NO_ANSWER", "The callee did not answer."),
    ),
    "failed": (UNDELIVERED, UNAVAILABLE),
    "expired": (_status(4, "EXPIRED", 15, "EXPIRED_EXPIRED", "Message expired"), UNAVAILABLE),
}


@dataclass(frozen=True, slots=True)
class Message:
    """The message-level fields every report of a message repeats."""

    bulk_id: str
    sender: str | None
    callback_data: str | None
    scenario_id: str
    notify_url: str | None
    content_type: str


@dataclass(slots=True)
class Report:
    """One report to post: a call's final report, or an intermediate one (status set)."""

    message: Message
    to: str
    message_id: str
    outcome: str
    salt: int
    ended_at: datetime
    intermediate: dict[str, Any] | None = None


def format_time(moment: datetime) -> str:
    """Format an aware datetime the way Infobip does: UTC, milliseconds, +0000."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def _call_timing(report: Report) -> tuple[int, int]:
    """Return (ring seconds, talk seconds) of a report's call, derived from its salt."""
    ring = 2 + report.salt % 15
    if report.outcome == "no_answer":
        return 45, 0
    if report.outcome in ("failed", "expired"):
        return 0, 0
    if report.outcome == "answered_human":
        return ring, 15 + (report.salt >> 4) % 60
    if report.outcome == "answered_machine":
        return ring, 5 + (report.salt >> 4) % 20
    return ring, 0


def _voice_call(report: Report) -> dict[str, Any]:
    """Build a report's voiceCall object; an intermediate report ends when the call started."""
    ring, talk = _call_timing(report)
    started = report.ended_at - timedelta(seconds=ring + talk)
    answered = report.outcome.startswith("answered") and report.intermediate is None
    human = answered and report.outcome == "answered_human"
    ended = report.ended_at if report.intermediate is None else started
    duration = talk if answered else 0
    return {
        "feature": "Voice-message",
        "startTime": format_time(started),
        "answerTime": format_time(started + timedelta(seconds=ring)) if answered else None,
        "endTime": format_time(ended),
        "duration": duration,
        "chargedDuration": math.ceil(duration / 60) * 60,
        "fileDuration": 12.5 if answered else 0.0,
        "dtmfCodes": ("1" if human else "") if answered else None,
        "answeredBy": ("HUMAN" if human else "MACHINE") if answered else None,
        "ivr": {
            "scenarioId": report.message.scenario_id,
            "scenarioName": "Simulated scenario",
            "collectedDtmfs": '{"confirm":"1"}' if human else None,
            "collectedMappedDtmfs": None,
            "spokenInput": None,
            "matchedSpokenInput": None,
        },
    }


def render_report(report: Report) -> dict[str, Any]:
    """Build the v2 JSON report (INFOBIP.md section 4) of one scheduled report."""
    voice_call = _voice_call(report)
    ring, talk = _call_timing(report)
    sent = report.ended_at - timedelta(seconds=ring + talk, milliseconds=200 + report.salt % 800)
    status, error = FINAL_CODES[report.outcome]
    if report.intermediate is not None:
        status, error = report.intermediate, NO_ERROR
    return {
        "bulkId": report.message.bulk_id,
        "messageId": report.message_id,
        "from": report.message.sender,
        "to": report.to,
        "sentAt": format_time(sent),
        "mccMnc": ("21910", "21901", "21902")[report.salt % 3],
        "callbackData": report.message.callback_data,
        "voiceCall": voice_call,
        "price": {
            "pricePerSecond": 0.0012 if voice_call["answeredBy"] else 0.0,
            "currency": "EUR",
        },
        "status": status,
        "error": error,
    }


def _fill_xml(element: etree._Element, value: Any) -> None:
    """Write a JSON value into an element: objects nest, null stays empty, booleans lower-case."""
    if isinstance(value, dict):
        for key, item in value.items():
            _fill_xml(etree.SubElement(element, key), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def encode_reports(results: list[dict[str, Any]], content_type: str) -> bytes:
    """Encode reports as one notifyUrl POST body in JSON or Infobip's XML form."""
    if content_type != XML_TYPE:
        return json.dumps({"results": results}).encode()
    root = etree.Element("reportResponse")
    wrapper = etree.SubElement(root, "results")
    for result in results:
        _fill_xml(etree.SubElement(wrapper, "result"), result)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
