"""The fake Infobip's switchable launch faults and its answers in Infobip's error shape.

Error bodies follow INFOBIP.md (section 3).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.types import WSGIEnvironment

from werkzeug.wrappers import Response

from app.simulator.reports import JSON_TYPE

FAULT_MODES = (None, "401", "500", "429", "hang", "drop")

UNAUTHORIZED = {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
GENERAL_ERROR = {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}
TOO_MANY = {
    "errorCode": "E429",
    "description": "Too many requests sent.",
    "action": "Check the request rate limit of this endpoint.",
    "violations": [],
    "resources": [],
}


@dataclass
class Faults:
    """Switchable faults for POST /voice/ivr/1/messages."""

    mode: str | None = None
    retry_after: int | None = None
    count: int | None = None
    hang_seconds: float = 30.0


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Build a JSON response."""
    return Response(
        json.dumps(payload, separators=(",", ":")), status, headers, content_type=JSON_TYPE
    )


def service_error(status: int, exception: dict[str, Any]) -> Response:
    """Build an error in Infobip's requestError/serviceException shape."""
    return json_response(status, {"requestError": {"serviceException": exception}})


def bad_request(errors: dict[str, list[str]]) -> Response:
    """Answer 400 in Infobip's shape, naming each field and what is wrong with it."""
    return service_error(
        400, {"messageId": "BAD_REQUEST", "text": "Bad request", "validationErrors": errors}
    )


def take_fault(faults: Faults) -> Faults | None:
    """Return the fault for this request and count it down (simulator lock held)."""
    if faults.mode is None:
        return None
    if faults.count is not None and faults.count <= 0:
        faults.mode = None
        return None
    taken = dataclasses.replace(faults)
    if faults.count is not None:
        faults.count -= 1
        if faults.count == 0:
            faults.mode = None
    return taken


def apply_fault(
    fault: Faults, environ: WSGIEnvironment, closed: threading.Event
) -> Response | None:
    """Answer with the fault, or return None to go on normally (after a hang)."""
    if fault.mode == "401":
        return service_error(401, UNAUTHORIZED)
    if fault.mode == "500":
        return service_error(500, GENERAL_ERROR)
    if fault.mode == "429":
        retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        return json_response(429, TOO_MANY, retry)
    if fault.mode == "drop":
        # werkzeug's server treats ConnectionAbortedError as a dropped connection and writes
        # nothing; shutting the socket (environ["werkzeug.socket"]) down first makes the
        # client see the close at once instead of waiting for its read timeout.
        connection = environ.get("werkzeug.socket")
        if isinstance(connection, socket.socket):
            connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError("simulated dropped connection")
    if fault.mode == "hang":
        closed.wait(fault.hang_seconds)
    return None
