"""The fake Infobip of the soak: app.simulator.server's Simulator with a ledger the soak can read.

Run: .venv/bin/python bench/soak_simulator.py --port PORT --api-key KEY [--delay 0.5]

The Simulator is served unchanged (its wire format, report sender and control API under
/_simulator/), plus two read-only routes for the soak's checks:

- GET /_soak/sent?since=N[&limit=L]: the report POSTs the simulator made, from the N-th on:
  {"total", "items": [{"url", "contentType", "body"}]} (bodies are UTF-8 text);
- GET /_soak/launches: how often each messageId was sent to the launch endpoint,
  {"messageIds": n, "launches": n, "repeated": {messageId: count, ...}}.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.simulator.server import ReportPlan, Simulator


class _QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the access log line."""


class Ledger:
    """Count every messageId the simulator is asked to launch, and serve the soak's routes."""

    def __init__(self, simulator: Simulator) -> None:
        """Hook into the simulator's launch callback."""
        self.simulator = simulator
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._launches = 0
        simulator.on_launch = self.count_launch

    def count_launch(self, body: dict[str, Any]) -> None:
        """Count the messageIds of one authorized launch request (before it is judged)."""
        ids = [
            str(destination.get("messageId"))
            for message in body.get("messages") or []
            if isinstance(message, dict)
            for destination in message.get("destinations") or []
            if isinstance(destination, dict)
        ]
        with self._lock:
            self._launches += 1
            self._counts.update(ids)

    def sent(self, since: int, limit: int | None) -> dict[str, Any]:
        """Return the report POSTs made, from the since-th on (at most limit of them)."""
        posts = self.simulator.reports_sent()
        end = len(posts) if limit is None else since + limit
        items = [
            {"url": url, "contentType": kind, "body": body.decode("utf-8")}
            for url, kind, body in posts[since:end]
        ]
        return {"total": len(posts), "items": items}

    def launches(self) -> dict[str, Any]:
        """Return the launch counts and the messageIds sent more than once."""
        with self._lock:
            repeated = {key: n for key, n in self._counts.items() if n > 1}
            return {
                "messageIds": len(self._counts),
                "launches": self._launches,
                "repeated": repeated,
            }

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer the soak's routes; hand everything else to the simulator."""
        request = Request(environ)
        if request.method == "GET" and request.path == "/_soak/sent":
            limit = request.args.get("limit", type=int)
            payload = self.sent(request.args.get("since", 0, type=int), limit)
        elif request.method == "GET" and request.path == "/_soak/launches":
            payload = self.launches()
        else:
            answer: Iterable[bytes] = self.simulator.wsgi_app(environ, start_response)
            return answer
        response = Response(json.dumps(payload), 200, content_type="application/json")
        return response(environ, start_response)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into KeyboardInterrupt so the server loop ends cleanly."""
    raise KeyboardInterrupt


def main() -> None:
    """Serve the simulator and its ledger until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds before reports")
    args = parser.parse_args()
    simulator = Simulator(api_key=args.api_key, plan=ReportPlan(delay=args.delay))
    ledger = Ledger(simulator)
    server = make_server(
        "127.0.0.1", args.port, ledger.wsgi_app, threaded=True, request_handler=_QuietHandler
    )
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"soak simulator on http://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator.close()


if __name__ == "__main__":
    main()
