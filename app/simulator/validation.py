"""The fake Infobip's check of a launch body: Infobip-like validationErrors by field path."""

from __future__ import annotations

import re
from typing import Any

from app.infobip.limits import (
    MAX_DESTINATIONS_PER_MESSAGE,
    NUMERIC_SENDER,
    SENDER_MAX_DIGITS,
    SENDER_MIN_DIGITS,
)
from app.simulator.reports import JSON_TYPE, XML_TYPE

DIGITS = re.compile(r"[0-9]{3,20}")


def _problem(errors: dict[str, list[str]], path: str, text: str) -> None:
    """Add one validation message for a field path."""
    errors.setdefault(path, []).append(text)


def _check_optional_text(
    errors: dict[str, list[str]], path: str, value: Any, low: int, high: int
) -> None:
    """Check an optional string field's length."""
    if value is not None and (not isinstance(value, str) or not low <= len(value) <= high):
        _problem(errors, path, f"size must be between {low} and {high}")


def _check_sender(errors: dict[str, list[str]], path: str, value: Any) -> None:
    """Check an optional numeric sender: 3 to 14 characters, all digits (INFOBIP.md §1)."""
    if value is None:
        return
    _check_optional_text(errors, path, value, SENDER_MIN_DIGITS, SENDER_MAX_DIGITS)
    if isinstance(value, str) and path not in errors and not NUMERIC_SENDER.fullmatch(value):
        _problem(errors, path, "must be a numeric sender (digits only)")


def _check_destinations(errors: dict[str, list[str]], path: str, destinations: Any) -> None:
    """Check a message's destinations list."""
    if not isinstance(destinations, list) or not destinations:
        _problem(errors, path, "must not be empty")
        return
    if len(destinations) > MAX_DESTINATIONS_PER_MESSAGE:
        _problem(errors, path, f"size must be between 1 and {MAX_DESTINATIONS_PER_MESSAGE}")
    for index, destination in enumerate(destinations):
        where = f"{path}[{index}]"
        if not isinstance(destination, dict):
            _problem(errors, where, "must be an object")
            continue
        to, message_id = destination.get("to"), destination.get("messageId")
        if not isinstance(to, str) or not to.strip():
            _problem(errors, f"{where}.to", "must not be blank")
        elif not DIGITS.fullmatch(to):
            _problem(errors, f"{where}.to", "must be 3 to 20 digits, without '+'")
        if message_id is not None and (not isinstance(message_id, str) or not message_id.strip()):
            _problem(errors, f"{where}.messageId", "must not be blank")


def _check_message(errors: dict[str, list[str]], path: str, message: Any) -> None:
    """Check one message object of a launch request."""
    if not isinstance(message, dict):
        _problem(errors, path, "must be an object")
        return
    scenario = message.get("scenarioId")
    if not isinstance(scenario, str) or not scenario.strip():
        _problem(errors, f"{path}.scenarioId", "must not be blank")
    _check_destinations(errors, f"{path}.destinations", message.get("destinations"))
    _check_sender(errors, f"{path}.from", message.get("from"))
    _check_optional_text(errors, f"{path}.callbackData", message.get("callbackData"), 0, 200)
    if message.get("notifyContentType", JSON_TYPE) not in (JSON_TYPE, XML_TYPE):
        _problem(errors, f"{path}.notifyContentType", "must be application/json or application/xml")
    url = message.get("notifyUrl")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        _problem(errors, f"{path}.notifyUrl", "must be a valid URL")


def validate_launch(body: Any) -> dict[str, list[str]]:
    """Return Infobip-style validation errors of a launch body, by field path (empty: valid)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(body, dict):
        _problem(errors, "body", "must be a JSON object")
        return errors
    bulk_id = body.get("bulkId")
    if bulk_id is not None and (not isinstance(bulk_id, str) or not bulk_id.strip()):
        _problem(errors, "bulkId", "must not be blank")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        _problem(errors, "messages", "must not be empty")
        return errors
    for index, message in enumerate(messages):
        _check_message(errors, f"messages[{index}]", message)
    return errors
