"""The fake Infobip: a WSGI app speaking Infobip's IVR wire format, with faults and a control API.

Codes and shapes follow INFOBIP.md (sections 1, 3, 4 and 5) and its payload samples. Reports
are built in app.simulator.reports and sent by app.simulator.sender, or handed out by
app.simulator.pulls; launch bodies are checked by app.simulator.validation; faults live in
app.simulator.faults.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import hmac
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.simulator.control import build_config
from app.simulator.faults import (
    UNAUTHORIZED,
    Faults,
    apply_fault,
    bad_request,
    json_response,
    service_error,
    take_fault,
)
from app.simulator.logs import CallLog
from app.simulator.pulls import Shelf
from app.simulator.reports import (
    ACCEPTED,
    DUPLICATE,
    JSON_TYPE,
    REJECTED_DESTINATION,
    Message,
    encode_reports,
    format_time,
    render_report,
)
from app.simulator.sender import ReportPlan, ReportSender
from app.simulator.validation import validate_launch

__all__ = [
    "Faults",
    "ReportPlan",
    "Simulator",
    "SimulatorServer",
    "encode_reports",
    "format_time",
    "render_report",
    "serve",
    "validate_launch",
]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often a background server notices stop(); keeps test teardown fast


def _new_message_ids(count: int) -> Iterator[str]:
    """Yield random version-4 UUID strings; much quicker than uuid.uuid4() for big launches."""
    digits = os.urandom(16 * count).hex()
    for start in range(0, 32 * count, 32):
        h = digits[start : start + 32]
        variant = "89ab"[int(h[16], 16) & 3]
        yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def _parse_json(raw: bytes) -> Any:
    """Decode a JSON body; None when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Simulator:
    """The fake Infobip: launch endpoint, report pulling, report sender and a control API."""

    requests: list[dict[str, Any]]
    launch_count: int
    message_counts: collections.Counter[str]
    duplicates_rejected: int

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
        self._log = CallLog()
        self._shelf = Shelf()
        self._sender = ReportSender(
            self._cond, self._closed, plan or ReportPlan(), self._log.finish, self._shelf
        )
        self._clear()
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("POST", "/voice/ivr/1/messages"): self._launch,
            ("GET", "/voice/1/reports"): self._pull,
            ("GET", "/tts/3/logs"): self._logs,
            ("GET", "/_simulator/state"): lambda _: json_response(200, self.state()),
            ("POST", "/_simulator/faults"): self._set_faults,
            ("POST", "/_simulator/plan"): self._set_plan,
            ("POST", "/_simulator/reset"): self._reset,
        }

    @property
    def plan(self) -> ReportPlan:
        """Return the report plan."""
        return self._sender.plan

    @plan.setter
    def plan(self, plan: ReportPlan) -> None:
        """Replace the report plan and re-seed the outcome generator."""
        self._sender.plan = plan

    @property
    def reports_posted(self) -> int:
        """Return how many reports were posted to a notifyUrl that answered 2xx."""
        return self._sender.reports_posted

    @property
    def reports_failed(self) -> int:
        """Return how many reports failed to post (lost, as with Infobip: never pullable)."""
        return self._sender.reports_failed

    def _clear(self) -> None:
        """Forget everything recorded and every report not yet posted (not those in flight)."""
        with self._cond:
            self.requests = []
            self.launch_count = 0
            self.message_counts = collections.Counter()
            self.duplicates_rejected = 0
            self._sender.clear()
            self._shelf.clear()
            self._log.clear()

    def reports_sent(self) -> list[tuple[str, str, bytes]]:
        """Return (url, content type, body) of every report POST made, successful or not."""
        return self._sender.sent()

    def reports_served(self) -> list[bytes]:
        """Return every body GET /voice/1/reports answered with, in order."""
        with self._cond:
            return self._shelf.served()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no report is waiting to be posted; False on timeout."""
        return self._sender.wait_idle(timeout)

    def close(self) -> None:
        """Stop the report threads and close the HTTP client; reports still due stay unsent."""
        self._closed.set()
        self._sender.close()

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        handler = self._routes.get((request.method, request.path))
        response = handler(request) if handler else json_response(404, {"error": "not found"})
        return response(environ, start_response)

    def state(self) -> dict[str, Any]:
        """Return counters, faults and plan as the control API shows them."""
        with self._cond:
            return {
                "launch_count": self.launch_count,
                "accepted": sum(self.message_counts.values()),
                "duplicates_rejected": self.duplicates_rejected,
                **self._sender.counts(),
                "faults": dataclasses.asdict(self.faults),
                "plan": dataclasses.asdict(self.plan),
            }

    def _set_faults(self, request: Request) -> Response:
        """Replace the faults from a control-API body."""
        try:
            faults = build_config(Faults, _parse_json(request.get_data()))
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})
        with self._cond:
            self.faults = faults
        return json_response(200, self.state())

    def _set_plan(self, request: Request) -> Response:
        """Replace the report plan from a control-API body."""
        try:
            plan = build_config(ReportPlan, _parse_json(request.get_data()))
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})
        self.plan = plan
        return json_response(200, self.state())

    def _reset(self, _: Request) -> Response:
        """Clear the recorded state and the faults; keep the plan and re-seed it."""
        self._clear()
        self.faults = Faults()
        self.plan = self.plan
        return json_response(200, self.state())

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
            fault = take_fault(self.faults) if authorized else None
            if authorized and isinstance(body, dict):
                self.requests.append(body)
        if not authorized:
            return service_error(401, UNAUTHORIZED)
        if self.on_launch is not None and isinstance(body, dict):
            self.on_launch(body)
        if fault is not None and (faulted := apply_fault(fault, request.environ, self._closed)):
            return faulted
        errors = validate_launch(body)
        if errors:
            return bad_request(errors)
        return json_response(200, self._accept(body))

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
                info = Message(
                    bulk_id=bulk_id,
                    sender=message.get("from"),
                    callback_data=message.get("callbackData"),
                    scenario_id=message["scenarioId"],
                    notify_url=message.get("notifyUrl"),
                    content_type=message.get("notifyContentType", JSON_TYPE),
                )
                self._judge_message(info, message["destinations"], answers)
            self._sender.start()
            self._cond.notify_all()
        return {"bulkId": bulk_id, "messages": answers}

    def _judge_message(
        self, info: Message, destinations: list[dict[str, Any]], answers: list[dict[str, Any]]
    ) -> None:
        """Judge one message's destinations and schedule the accepted calls' reports (lock held)."""
        outcomes, now = self._sender.draw_outcomes(len(destinations)), datetime.now(UTC)
        fresh_ids = _new_message_ids(len(destinations))
        calls: list[tuple[str, str, str]] = []
        for destination, outcome in zip(destinations, outcomes, strict=True):
            to = destination["to"]
            message_id = destination.get("messageId") or next(fresh_ids)
            status = self._judge(to, message_id)
            answers.append({"to": to, "status": status, "messageId": message_id})
            if status is ACCEPTED:
                calls.append((to, message_id, outcome))
                self._log.accept(info, to, message_id, now)
        if calls:
            self._sender.schedule(info, calls)

    def _pull(self, request: Request) -> Response:
        """Handle GET /voice/1/reports: hand out kept reports, each only once."""
        if not self._authorized(request.headers.get("Authorization", "")):
            return service_error(401, UNAUTHORIZED)
        with self._cond:
            self._sender.release_due()
            return self._shelf.answer(request)

    def _logs(self, request: Request) -> Response:
        """Handle GET /tts/3/logs: every accepted call with its current status."""
        if not self._authorized(request.headers.get("Authorization", "")):
            return service_error(401, UNAUTHORIZED)
        with self._cond:
            return self._log.answer(request)


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
