"""The fake Infobip: a WSGI app speaking Infobip's IVR wire format, plus the report sender.

Codes and shapes follow INFOBIP.md (sections 1, 3, 4 and 5) and its payload samples.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import heapq
import hmac
import itertools
import json
import logging
import math
import os
import random
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, TypeVar
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
from lxml import etree
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

logger = logging.getLogger(__name__)

FAULT_MODES = (None, "401", "500", "429", "hang", "drop")
OUTCOMES = ("answered_human", "answered_machine", "busy", "no_answer", "failed", "expired")
MAX_DESTINATIONS = 20_000
SENDER_THREADS = 4
REORDER_SHARE = 0.3
POLL_SECONDS = 0.05  # how often a background server notices stop(); keeps test teardown fast
JSON_TYPE = "application/json"
XML_TYPE = "application/xml"
DIGITS = re.compile(r"[0-9]{3,20}")

UNAUTHORIZED = {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}
GENERAL_ERROR = {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}
TOO_MANY = {
    "errorCode": "E429",
    "description": "Too many requests sent.",
    "action": "Check the request rate limit of this endpoint.",
    "violations": [],
    "resources": [],
}


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


@dataclass
class Faults:
    """Switchable faults for POST /voice/ivr/1/messages."""

    mode: str | None = None
    retry_after: int | None = None
    count: int | None = None
    hang_seconds: float = 30.0


def _default_mix() -> dict[str, float]:
    """Return the default share of each outcome."""
    return {
        "answered_human": 0.5,
        "answered_machine": 0.1,
        "busy": 0.15,
        "no_answer": 0.15,
        "failed": 0.05,
        "expired": 0.05,
    }


@dataclass
class ReportPlan:
    """How delivery reports are produced."""

    delay: float = 0.2
    mix: dict[str, float] = field(default_factory=_default_mix)
    duplicate_rate: float = 0.0
    reorder: bool = False
    batch_size: int = 1
    enabled: bool = True
    seed: int | None = None


_Config = TypeVar("_Config", Faults, ReportPlan)


@dataclass(frozen=True, slots=True)
class _Message:
    """The message-level fields every report of a message repeats."""

    bulk_id: str
    sender: str | None
    callback_data: str | None
    scenario_id: str
    notify_url: str | None
    content_type: str


@dataclass(slots=True)
class _Report:
    """One report to post: a call's final report, or an intermediate one (status set)."""

    message: _Message
    to: str
    message_id: str
    outcome: str
    salt: int
    ended_at: datetime
    intermediate: dict[str, Any] | None = None


@dataclass(slots=True)
class _Group:
    """The final reports of one message's accepted calls (to, messageId, outcome), due together."""

    message: _Message
    ended_at: datetime
    calls: list[tuple[str, str, str]]


def format_time(moment: datetime) -> str:
    """Format an aware datetime the way Infobip does: UTC, milliseconds, +0000."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}+0000"


def _call_timing(report: _Report) -> tuple[int, int]:
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


def _voice_call(report: _Report) -> dict[str, Any]:
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


def render_report(report: _Report) -> dict[str, Any]:
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


def _problem(errors: dict[str, list[str]], path: str, text: str) -> None:
    """Add one validation message for a field path."""
    errors.setdefault(path, []).append(text)


def _check_optional_text(
    errors: dict[str, list[str]], path: str, value: Any, low: int, high: int
) -> None:
    """Check an optional string field's length."""
    if value is not None and (not isinstance(value, str) or not low <= len(value) <= high):
        _problem(errors, path, f"size must be between {low} and {high}")


def _check_destinations(errors: dict[str, list[str]], path: str, destinations: Any) -> None:
    """Check a message's destinations list."""
    if not isinstance(destinations, list) or not destinations:
        _problem(errors, path, "must not be empty")
        return
    if len(destinations) > MAX_DESTINATIONS:
        _problem(errors, path, f"size must be between 1 and {MAX_DESTINATIONS}")
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
    _check_optional_text(errors, f"{path}.from", message.get("from"), 3, 14)
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


def _new_message_ids(count: int) -> Iterator[str]:
    """Yield random version-4 UUID strings; much quicker than uuid.uuid4() for big launches."""
    digits = os.urandom(16 * count).hex()
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Build a JSON response."""
    return Response(
        json.dumps(payload, separators=(",", ":")), status, headers, content_type=JSON_TYPE
    )


def _service_error(status: int, exception: dict[str, Any]) -> Response:
    """Build an error in Infobip's requestError/serviceException shape."""
    return _json_response(status, {"requestError": {"serviceException": exception}})


def _parse_json(raw: bytes) -> Any:
    """Decode a JSON body; None when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _build_config(kind: type[_Config], body: Any) -> _Config:
    """Build Faults or ReportPlan from a control-API body; ValueError when it does not fit."""
    names = {item.name for item in dataclasses.fields(kind)}
    if not isinstance(body, dict) or not set(body) <= names:
        raise ValueError(f"expected an object with fields among {sorted(names)}")
    config = kind(**body)
    if isinstance(config, Faults) and config.mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {FAULT_MODES}")
    if isinstance(config, ReportPlan) and (
        not isinstance(config.mix, dict)
        or not set(config.mix) <= set(OUTCOMES)
        or sum(config.mix.values()) <= 0
        or config.batch_size < 1
        or config.delay < 0
    ):
        raise ValueError(f"mix needs weights among {OUTCOMES}; batch_size >= 1; delay >= 0")
    return config


class Simulator:
    """The fake Infobip: launch endpoint, report pulling, report sender and a control API."""

    requests: list[dict[str, Any]]
    launch_count: int
    message_counts: collections.Counter[str]
    duplicates_rejected: int
    reports_posted: int
    reports_failed: int

    def __init__(
        self,
        *,
        api_key: str = "sim-key",
        username: str | None = None,
        password: str | None = None,
        faults: Faults | None = None,
        plan: ReportPlan | None = None,
        reject_prefixes: tuple[str, ...] = (),
    ) -> None:
        """Set up an idle simulator; report threads start with the first accepted call."""
        self._api_key = api_key.encode()
        self._basic = f"{username}:{password}".encode() if username and password else None
        self.reject_prefixes = reject_prefixes
        self.faults = faults or Faults()
        self.on_launch: Callable[[dict[str, Any]], None] | None = None
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._workers: list[threading.Thread] = []
        self._client: httpx.Client | None = None
        self._seq = itertools.count()
        self._in_flight = 0
        self.plan = plan or ReportPlan()
        self._clear()
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/voice/ivr/1/messages"): self._launch,
            ("GET", "/voice/1/reports"): self._pull,
            ("GET", "/_simulator/state"): lambda _: _json_response(200, self.state()),
            ("POST", "/_simulator/faults"): self._set_faults,
            ("POST", "/_simulator/plan"): self._set_plan,
            ("POST", "/_simulator/reset"): self._reset,
        }

    @property
    def plan(self) -> ReportPlan:
        """Return the report plan."""
        return self._plan

    @plan.setter
    def plan(self, plan: ReportPlan) -> None:
        """Replace the report plan and re-seed the outcome generator."""
        with self._cond:
            self._plan = plan
            self._rng = random.Random(plan.seed)  # noqa: S311  # simulated outcomes, not secrets

    def _clear(self) -> None:
        """Forget everything recorded and every report not yet posted (not those in flight)."""
        with self._cond:
            self.requests = []
            self.launch_count = 0
            self.message_counts = collections.Counter()
            self.duplicates_rejected = 0
            self.reports_posted = 0
            self.reports_failed = 0
            self._sent: list[tuple[str, str, bytes]] = []
            self._heap: list[tuple[float, int, _Report | _Group]] = []
            self._waiting = 0
            self._ready: dict[tuple[str, str], collections.deque[_Report]] = {}
            self._pullable: dict[int, _Report] = {}
            self._cond.notify_all()

    def reports_sent(self) -> list[tuple[str, str, bytes]]:
        """Return (url, content type, body) of every report POST made, successful or not."""
        with self._cond:
            return list(self._sent)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no report is waiting to be posted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding() == 0, timeout)

    def close(self) -> None:
        """Stop the report threads and close the HTTP client; reports still due stay unsent."""
        self._closed.set()
        with self._cond:
            workers, self._workers = self._workers, []
            self._cond.notify_all()
        for worker in workers:
            worker.join(timeout=10)
        if self._client is not None:
            self._client.close()
            self._client = None

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        handler = self._routes.get((request.method, request.path))
        response = handler(request) if handler else _json_response(404, {"error": "not found"})
        return response(environ, start_response)

    def state(self) -> dict[str, Any]:
        """Return counters, faults and plan as the control API shows them."""
        with self._cond:
            return {
                "launch_count": self.launch_count,
                "accepted": sum(self.message_counts.values()),
                "duplicates_rejected": self.duplicates_rejected,
                "reports_posted": self.reports_posted,
                "reports_failed": self.reports_failed,
                "pending_reports": self._outstanding(),
                "pullable_reports": len(self._pullable),
                "faults": dataclasses.asdict(self.faults),
                "plan": dataclasses.asdict(self.plan),
            }

    def _set_faults(self, request: Request) -> Response:
        """Replace the faults from a control-API body."""
        try:
            faults = _build_config(Faults, _parse_json(request.get_data()))
        except (TypeError, ValueError) as exc:
            return _json_response(400, {"error": str(exc)})
        with self._cond:
            self.faults = faults
        return _json_response(200, self.state())

    def _set_plan(self, request: Request) -> Response:
        """Replace the report plan from a control-API body."""
        try:
            plan = _build_config(ReportPlan, _parse_json(request.get_data()))
        except (TypeError, ValueError) as exc:
            return _json_response(400, {"error": str(exc)})
        self.plan = plan
        return _json_response(200, self.state())

    def _reset(self, _: Request) -> Response:
        """Clear the recorded state and the faults; keep the plan and re-seed it."""
        self._clear()
        self.faults = Faults()
        self.plan = self.plan
        return _json_response(200, self.state())

    def _authorized(self, header: str) -> bool:
        """Check an Authorization header against the API key or the Basic credentials."""
        scheme, _, credentials = header.partition(" ")
        if scheme == "App":
            return hmac.compare_digest(credentials.strip().encode(), self._api_key)
        if scheme == "Basic" and self._basic is not None:
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(decoded, self._basic)
        return False

    def _launch(self, request: Request) -> Response:
        """Handle POST /voice/ivr/1/messages."""
        body = _parse_json(request.get_data())
        authorized = self._authorized(request.headers.get("Authorization", ""))
        with self._cond:
            self.launch_count += 1
            fault = self._take_fault() if authorized else None
            if authorized and isinstance(body, dict):
                self.requests.append(body)
        if not authorized:
            return _service_error(401, UNAUTHORIZED)
        if self.on_launch is not None and isinstance(body, dict):
            self.on_launch(body)
        if fault is not None and (faulted := self._apply_fault(fault, request.environ)):
            return faulted
        errors = validate_launch(body)
        if errors:
            return _service_error(
                400, {"messageId": "BAD_REQUEST", "text": "Bad request", "validationErrors": errors}
            )
        return _json_response(200, self._accept(body))

    def _take_fault(self) -> Faults | None:
        """Return the fault for this request and count it down (lock held)."""
        faults = self.faults
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

    def _apply_fault(self, fault: Faults, environ: WSGIEnvironment) -> Response | None:
        """Answer with the fault, or return None to go on normally (after a hang)."""
        if fault.mode == "401":
            return _service_error(401, UNAUTHORIZED)
        if fault.mode == "500":
            return _service_error(500, GENERAL_ERROR)
        if fault.mode == "429":
            retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _json_response(429, TOO_MANY, retry)
        if fault.mode == "drop":
            # werkzeug's server treats ConnectionAbortedError as a dropped connection and writes
            # nothing; shutting the socket (environ["werkzeug.socket"]) down first makes the
            # client see the close at once instead of waiting for its read timeout.
            connection = environ.get("werkzeug.socket")
            if isinstance(connection, socket.socket):
                connection.shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError("simulated dropped connection")
        if fault.mode == "hang":
            self._closed.wait(fault.hang_seconds)
        return None

    def _judge(self, to: str, message_id: str) -> dict[str, Any]:
        """Return a destination's launch status and count an acceptance (lock held)."""
        if message_id in self.message_counts:
            self.duplicates_rejected += 1
            return DUPLICATE
        if to.startswith(self.reject_prefixes):
            return REJECTED_DESTINATION
        self.message_counts[message_id] = 1
        return ACCEPTED

    def _accept(self, body: dict[str, Any]) -> dict[str, Any]:
        """Judge every destination, schedule reports for the accepted ones, build the answer."""
        bulk_id = body.get("bulkId") or f"sim-{next(_new_message_ids(1))}"
        answers: list[dict[str, Any]] = []
        with self._cond:
            for message in body["messages"]:
                info = _Message(
                    bulk_id=bulk_id,
                    sender=message.get("from"),
                    callback_data=message.get("callbackData"),
                    scenario_id=message["scenarioId"],
                    notify_url=message.get("notifyUrl"),
                    content_type=message.get("notifyContentType", JSON_TYPE),
                )
                self._judge_message(info, message["destinations"], answers)
            self._start_workers()
            self._cond.notify_all()
        return {"bulkId": bulk_id, "messages": answers}

    def _judge_message(
        self, info: _Message, destinations: list[dict[str, Any]], answers: list[dict[str, Any]]
    ) -> None:
        """Judge one message's destinations and schedule the accepted calls' reports (lock held)."""
        weights = [self.plan.mix.get(name, 0.0) for name in OUTCOMES]
        outcomes = self._rng.choices(OUTCOMES, weights, k=len(destinations))
        fresh_ids = _new_message_ids(len(destinations))
        calls: list[tuple[str, str, str]] = []
        for destination, outcome in zip(destinations, outcomes, strict=True):
            to = destination["to"]
            message_id = destination.get("messageId") or next(fresh_ids)
            status = self._judge(to, message_id)
            answers.append({"to": to, "status": status, "messageId": message_id})
            if status is ACCEPTED:
                calls.append((to, message_id, outcome))
        if calls:
            ended_at = datetime.now(UTC) + timedelta(seconds=self.plan.delay)
            self._push(time.monotonic() + self.plan.delay, _Group(info, ended_at, calls))

    def _push(self, due: float, item: _Report | _Group) -> None:
        """Put a report or a group of final reports on the due-time heap (lock held)."""
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._waiting += len(item.calls) if isinstance(item, _Group) else 1

    def _outstanding(self) -> int:
        """Count reports scheduled, ready or being posted (lock held)."""
        return self._waiting + sum(map(len, self._ready.values())) + self._in_flight

    def _start_workers(self) -> None:
        """Start the sender threads and the HTTP client once (lock held)."""
        if self._workers or self._closed.is_set():
            return
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0))
        for number in range(SENDER_THREADS):
            worker = threading.Thread(
                target=self._work, name=f"simulator-sender-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def _release_due(self) -> None:
        """Move due reports to the ready groups or keep them for pulling (lock held)."""
        now, kept = time.monotonic(), len(self._pullable)
        while self._heap and self._heap[0][0] <= now:
            due, _, item = heapq.heappop(self._heap)
            if isinstance(item, _Group):
                self._waiting -= len(item.calls)
                self._expand(due, item)
            else:
                self._waiting -= 1
                self._route(item)
        if len(self._pullable) != kept:
            self._cond.notify_all()

    def _expand(self, due: float, group: _Group) -> None:
        """Turn a due group into final reports, with reordering and duplicates (lock held)."""
        plan, rng = self.plan, self._rng
        for to, message_id, outcome in group.calls:
            salt = rng.getrandbits(32)
            report = _Report(group.message, to, message_id, outcome, salt, group.ended_at)
            if plan.reorder:
                shift = rng.uniform(0, plan.delay)
                report.ended_at += timedelta(seconds=shift)
                self._push(due + shift, report)
                if rng.random() < REORDER_SHARE:
                    late = dataclasses.replace(report, intermediate=rng.choice(INTERMEDIATE))
                    self._push(due + shift + rng.uniform(0.005, plan.delay + 0.005), late)
            else:
                self._route(report)
            if plan.duplicate_rate and rng.random() < plan.duplicate_rate:
                self._push(due + rng.uniform(0, plan.delay / 2), report)

    def _route(self, report: _Report) -> None:
        """Queue a due report for its notifyUrl, or keep it for pulling (lock held)."""
        url = report.message.notify_url
        if url is None or not self.plan.enabled:
            self._pullable[next(self._seq)] = report
        else:
            key = (url, report.message.content_type)
            self._ready.setdefault(key, collections.deque()).append(report)

    def _take_batch(self) -> tuple[tuple[str, str], list[_Report]] | None:
        """Take up to batch_size ready reports for one URL and content type (lock held)."""
        if not self._ready:
            return None
        key = next(iter(self._ready))
        queue = self._ready.pop(key)
        batch = [queue.popleft() for _ in range(min(self.plan.batch_size, len(queue)))]
        if queue:
            self._ready[key] = queue
        return key, batch

    def _next_batch(self) -> tuple[tuple[str, str], list[_Report]] | None:
        """Wait for the next batch to post; None when closing."""
        with self._cond:
            while not self._closed.is_set():
                self._release_due()
                taken = self._take_batch()
                if taken is not None:
                    self._in_flight += len(taken[1])
                    return taken
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                self._cond.wait(wait)
        return None

    def _work(self) -> None:
        """Post batches of reports until closed."""
        while (taken := self._next_batch()) is not None:
            (url, content_type), batch = taken
            body = encode_reports([render_report(report) for report in batch], content_type)
            delivered = self._post(url, content_type, body)
            with self._cond:
                self._in_flight -= len(batch)
                self._sent.append((url, content_type, body))
                if delivered:
                    self.reports_posted += len(batch)
                else:
                    self.reports_failed += len(batch)
                    self._pullable.update((next(self._seq), report) for report in batch)
                self._cond.notify_all()

    def _post(self, url: str, content_type: str, body: bytes) -> bool:
        """POST one report body; True when the receiver answered 2xx."""
        client = self._client
        if client is None:
            return False
        try:
            answer = client.post(url, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            logger.info("report POST failed: %s", type(exc).__name__)
            return False
        return answer.is_success

    def _pull(self, request: Request) -> Response:
        """Handle GET /voice/1/reports: hand out kept reports, each only once."""
        if not self._authorized(request.headers.get("Authorization", "")):
            return _service_error(401, UNAUTHORIZED)
        bulk_id, message_id = request.args.get("bulkId"), request.args.get("messageId")
        try:
            limit = min(max(int(request.args.get("limit", "50")), 1), 1000)
        except ValueError:
            errors = {"limit": ["must be a number"]}
            return _service_error(
                400, {"messageId": "BAD_REQUEST", "text": "Bad request", "validationErrors": errors}
            )
        with self._cond:
            self._release_due()
            taken = self._take_pullable(bulk_id, message_id, limit)
        return _json_response(200, {"results": [render_report(report) for report in taken]})

    def _take_pullable(
        self, bulk_id: str | None, message_id: str | None, limit: int
    ) -> list[_Report]:
        """Remove and return up to limit kept reports matching the filters (lock held)."""
        seqs: list[int] = []
        for seq, report in self._pullable.items():
            if len(seqs) == limit:
                break
            if _matches(report, bulk_id, message_id):
                seqs.append(seq)
        return [self._pullable.pop(seq) for seq in seqs]


def _matches(report: _Report, bulk_id: str | None, message_id: str | None) -> bool:
    """Tell whether a report passes the bulkId and messageId filters of a pull."""
    return bulk_id in (None, report.message.bulk_id) and message_id in (None, report.message_id)


class _QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log line."""


class SimulatorServer:
    """Run a Simulator on loopback in a background thread."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        """Remember where to serve; nothing runs before start()."""
        self.simulator = simulator
        self.host = host
        self.port = port
        self.url = ""
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatorServer:
        """Bind the port and serve in a background thread."""
        server = make_server(
            self.host,
            self.port,
            self.simulator.wsgi_app,
            threaded=True,
            request_handler=_QuietHandler,
        )
        self._server, self.port = server, server.port
        self.url = f"http://{self.host}:{server.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, args=(POLL_SECONDS,), name="simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the simulator's report threads."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.simulator.close()

    def __enter__(self) -> SimulatorServer:
        """Start on entering the block."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop on leaving the block."""
        self.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so the server loop ends cleanly."""
    raise KeyboardInterrupt


def serve(host: str, port: int, simulator: Simulator) -> None:
    """Serve the simulator until Ctrl-C or SIGTERM."""
    server = make_server(host, port, simulator.wsgi_app, threaded=True)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    logger.info("fake Infobip listening on http://%s:%s", host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        simulator.close()
