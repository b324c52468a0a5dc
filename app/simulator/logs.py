"""The fake Infobip's voice logs: every call it accepted, with its current status.

`GET /tts/3/logs` (INFOBIP.md §6): the last 48 hours, filtered by bulkId, messageId
(repeatable), generalStatus, sentSince and sentUntil; `limit` up to 1000, no cursor;
at most 120 requests a minute, past which it answers 429. An entry is PENDING from
its acceptance and takes its final status when its final report falls due, whether
or not that report is ever posted.
"""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from app.infobip.limits import LOGS_MAX_LIMIT, LOGS_REQUESTS_PER_MINUTE, LOGS_WINDOW_HOURS
from app.simulator.faults import TOO_MANY, bad_request, json_response
from app.simulator.reports import ACCEPTED, FINAL_CODES, Message, Report, format_time, render_report

WINDOW = timedelta(hours=LOGS_WINDOW_HOURS)
MAX_LIMIT = LOGS_MAX_LIMIT
DEFAULT_LIMIT = 50
REQUESTS_PER_MINUTE = LOGS_REQUESTS_PER_MINUTE


def _moment(text: str) -> datetime:
    """Read a sentSince/sentUntil value (ISO 8601, Infobip's +0000 offsets included)."""
    moment = datetime.fromisoformat(text.replace(" ", "+"))
    if moment.tzinfo is None:
        raise ValueError("a time zone offset is needed")
    return moment.astimezone(UTC)


class CallLog:
    """The entries of accepted calls by messageId, and the request rate of the endpoint."""

    def __init__(self) -> None:
        """Start empty."""
        self._entries: dict[str, dict[str, Any]] = {}
        self._sent_at: dict[str, datetime] = {}
        self._requests: collections.deque[float] = collections.deque()

    def clear(self) -> None:
        """Forget every entry and the request rate (simulator lock held)."""
        self._entries.clear()
        self._sent_at.clear()
        self._requests.clear()

    def accept(self, message: Message, to: str, message_id: str, at: datetime) -> None:
        """Add a call just accepted, PENDING (simulator lock held)."""
        self._sent_at[message_id] = at
        self._entries[message_id] = {
            "bulkId": message.bulk_id, "messageId": message_id, "to": to,
            "from": message.sender, "sentAt": format_time(at), "doneAt": None,
            "duration": None, "mccMnc": None, "price": None, "status": ACCEPTED, "error": None,
        }  # fmt: skip

    def finish(self, report: Report) -> None:
        """Give a call its final status, as its final report says (simulator lock held)."""
        entry = self._entries.get(report.message_id)
        if entry is None or report.intermediate is not None:
            return
        rendered = render_report(report)
        status, error = FINAL_CODES[report.outcome]
        entry.update(
            doneAt=rendered["voiceCall"]["endTime"], duration=rendered["voiceCall"]["duration"],
            mccMnc=rendered["mccMnc"], price=rendered["price"], status=status, error=error,
        )  # fmt: skip

    def answer(self, request: Request) -> Response:
        """Handle GET /tts/3/logs (simulator lock held; authorization checked by the caller)."""
        clock = time.monotonic()
        while self._requests and clock - self._requests[0] >= 60:
            self._requests.popleft()
        if len(self._requests) >= REQUESTS_PER_MINUTE:
            return json_response(429, TOO_MANY)
        self._requests.append(clock)
        args = request.args
        try:
            limit = int(args.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return bad_request({"limit": ["must be a number"]})
        if not 1 <= limit <= MAX_LIMIT:
            return bad_request({"limit": [f"must be between 1 and {MAX_LIMIT}"]})
        now = datetime.now(UTC)
        since, until = now - WINDOW, now
        try:
            if args.get("sentSince"):
                since = max(since, _moment(args["sentSince"]))
            if args.get("sentUntil"):
                until = min(until, _moment(args["sentUntil"]))
        except ValueError as exc:
            return bad_request({"sentSince/sentUntil": [str(exc)]})
        wanted = set(args.getlist("messageId"))
        bulk_id, general = args.get("bulkId"), args.get("generalStatus")
        found: list[dict[str, Any]] = []
        for message_id, entry in self._entries.items():
            if len(found) == limit:
                break
            if wanted and message_id not in wanted:
                continue
            if bulk_id and entry["bulkId"] != bulk_id:
                continue
            if general and entry["status"]["groupName"] != general:
                continue
            if since <= self._sent_at[message_id] <= until:
                found.append(dict(entry))
        return json_response(200, {"results": found})
