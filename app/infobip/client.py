"""InfobipClient: launch IVR campaigns, pull reports and read voice logs over HTTP; no Flask.

Error shapes and status codes are those of INFOBIP.md §3; the logs endpoint is §6.
"""

from __future__ import annotations

import base64
import enum
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from app.infobip.limits import LOGS_MAX_LIMIT, LOGS_REQUESTS_PER_MINUTE

LAUNCH_PATH = "/voice/ivr/1/messages"
REPORTS_PATH = "/voice/1/reports"
LOGS_PATH = "/tts/3/logs"
LOGS_ATTEMPTS = 3  # a 429 from the logs endpoint is retried this many times in all
MAX_LOGS_WAIT = 60.0  # a longer Retry-After ends the retries: the caller tries next round


class FailureKind(enum.StrEnum):
    """Why a request to Infobip did not succeed."""

    REFUSED = "refused"  # 400/401/403/404: Infobip read the request and said no
    UNAVAILABLE = "unavailable"  # 429/5xx or no connection: the request did not get through
    TIMEOUT = "timeout"  # read timeout, dropped connection, unreadable 2xx: it may have


@dataclass
class ProviderError(Exception):
    """Infobip refused, was unavailable, or did not answer in time."""

    kind: FailureKind
    message: str
    status_code: int | None = None
    retry_after: float | None = None
    details: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        """Say what went wrong, with the HTTP status when there was one."""
        prefix = f"Infobip {self.kind.value}"
        if self.status_code is not None:
            prefix += f" (HTTP {self.status_code})"
        return f"{prefix}: {self.message}"

    @property
    def may_have_arrived(self) -> bool:
        """Say whether Infobip may have acted on the request."""
        return self.kind is FailureKind.TIMEOUT


def describe_error(body: Any) -> tuple[str, dict[str, list[str]]]:
    """Read either of Infobip's two error shapes into a sentence and field details."""
    if isinstance(body, dict):
        request_error = body.get("requestError")
        if isinstance(request_error, dict):
            exception = request_error.get("serviceException") or request_error.get(
                "policyException"
            )
            if isinstance(exception, dict):
                text = str(exception.get("text") or exception.get("messageId") or "error")
                details = exception.get("validationErrors") or {}
                return text, _string_lists(details)
        if "errorCode" in body or "description" in body:
            text = str(body.get("description") or body.get("errorCode"))
            violations: dict[str, list[str]] = {}
            for violation in body.get("violations") or []:
                if isinstance(violation, dict):
                    prop = str(violation.get("property", ""))
                    violations.setdefault(prop, []).append(str(violation.get("violation", "")))
            return text, violations
    return "unreadable error body", {}


def _string_lists(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        return {}
    return {
        str(key): [str(v) for v in value] if isinstance(value, list) else [str(value)]
        for key, value in raw.items()
    }


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: treated as absent, the backoff applies


@dataclass(frozen=True)
class LogEntry:
    """One entry of Infobip's voice logs: a call it accepted, with its current status."""

    message_id: str
    bulk_id: str | None
    status: dict[str, Any] | None
    error: dict[str, Any] | None
    raw: dict[str, Any]

    @classmethod
    def read(cls, raw: dict[str, Any]) -> LogEntry | None:
        """Read one entry of the answer; None when it has no messageId."""
        message_id, status, error = raw.get("messageId"), raw.get("status"), raw.get("error")
        if not isinstance(message_id, str) or not message_id:
            return None
        return cls(
            message_id,
            raw["bulkId"] if isinstance(raw.get("bulkId"), str) else None,
            status if isinstance(status, dict) else None,
            error if isinstance(error, dict) else None,
            raw,
        )


@dataclass(frozen=True)
class Pulled:
    """One answer of GET /voice/1/reports: its body exactly as received, and its results.

    count is None when the body is not Infobip's JSON `{"results": [...]}`: the caller
    keeps it all the same (Infobip hands each report out only once) and judges it.
    """

    body: bytes
    content_type: str
    count: int | None


def _count_results(body: bytes) -> int | None:
    """Count the results of a pulled JSON body; None when it has no results list."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    results = answer.get("results") if isinstance(answer, dict) else None
    return len(results) if isinstance(results, list) else None


class Pace:
    """At most `per_minute` requests in any `window` seconds, shared by a client's threads."""

    def __init__(
        self,
        per_minute: int,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Allow per_minute requests a window."""
        self._limit, self._window, self._clock, self._sleep = per_minute, window, clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when one more request keeps within the limit (sleeping if need be)."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self._window:
                    self._sent.popleft()
                if len(self._sent) < self._limit:
                    self._sent.append(now)
                    return
                wait = self._window - (now - self._sent[0])
            self._sleep(max(wait, 0.001))


class InfobipClient:
    """A client for the two Infobip endpoints ivrdesk uses."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        logs_pace: Pace | None = None,
        backoff: float = 1.0,
    ) -> None:
        """Prepare a client; nothing is sent until launch() or pull_reports()."""
        if api_key:
            authorization = f"App {api_key}"
        elif username and password:
            pair = base64.b64encode(f"{username}:{password}".encode()).decode()
            authorization = f"Basic {pair}"
        else:
            raise ValueError("an API key or a username and password is needed")
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": authorization, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )
        self._logs_pace = logs_pace or Pace(LOGS_REQUESTS_PER_MINUTE)
        self._backoff = backoff

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> InfobipClient:
        """Use the client as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the client."""
        self.close()

    def launch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one launch request; return Infobip's 200 answer or raise ProviderError."""
        content = json.dumps(body, separators=(",", ":")).encode()
        return self._request("POST", LAUNCH_PATH, content=content)

    def pull_reports(
        self, *, bulk_id: str | None = None, message_id: str | None = None, limit: int = 50
    ) -> Pulled:
        """Fetch reports of calls sent without a notifyUrl; each is handed out only once.

        The 2xx body comes back untouched, whatever it holds; any other answer raises
        ProviderError.
        """
        params: dict[str, str | int] = {"limit": limit}
        if bulk_id:
            params["bulkId"] = bulk_id
        if message_id:
            params["messageId"] = message_id
        response = self._send("GET", REPORTS_PATH, params=params)
        if not response.is_success:
            raise _refusal(response)
        content_type = response.headers.get("Content-Type", "application/json")
        return Pulled(response.content, content_type, _count_results(response.content))

    def logs(
        self,
        *,
        bulk_id: str | None = None,
        message_ids: Sequence[str] = (),
        sent_since: datetime | None = None,
        sent_until: datetime | None = None,
        general_status: str | None = None,
        limit: int = LOGS_MAX_LIMIT,
    ) -> list[LogEntry]:
        """Read Infobip's voice logs (the last 48 hours) with these filters, one request.

        No cursor exists: narrow by time or messageIds to read more. Requests are paced
        to Infobip's 120 a minute; a 429 is retried after its Retry-After (or a doubling
        backoff), LOGS_ATTEMPTS times in all, then raised as ProviderError.
        """
        if not 1 <= limit <= LOGS_MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {LOGS_MAX_LIMIT}")
        params: list[tuple[str, str | int]] = [("limit", limit)]
        params += [("messageId", message_id) for message_id in message_ids]
        for name, value in (("bulkId", bulk_id), ("generalStatus", general_status)):
            if value:
                params.append((name, value))
        for name, moment in (("sentSince", sent_since), ("sentUntil", sent_until)):
            if moment is not None:
                params.append((name, moment.isoformat(timespec="milliseconds")))
        for attempt in range(1, LOGS_ATTEMPTS + 1):
            self._logs_pace.wait()
            try:
                answer = self._request("GET", LOGS_PATH, params=params)
                break
            except ProviderError as exc:
                wait = exc.retry_after or self._backoff * 2 ** (attempt - 1)
                if exc.status_code != 429 or attempt == LOGS_ATTEMPTS or wait > MAX_LOGS_WAIT:
                    raise
                time.sleep(wait)
        results = answer.get("results")
        entries = (
            (LogEntry.read(r) for r in results if isinstance(r, dict))
            if isinstance(results, list)
            else ()
        )
        return [entry for entry in entries if entry is not None]

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _judge(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ProviderError(FailureKind.UNAVAILABLE, f"cannot connect: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderError(FailureKind.TIMEOUT, "no answer in time") from exc
        except httpx.TransportError as exc:
            raise ProviderError(FailureKind.TIMEOUT, f"connection dropped: {exc}") from exc


def _judge(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if 200 <= status < 300:
        try:
            answer = response.json()
        except ValueError as exc:
            raise ProviderError(FailureKind.TIMEOUT, "unreadable 2xx answer", status) from exc
        if not isinstance(answer, dict):
            raise ProviderError(FailureKind.TIMEOUT, "unreadable 2xx answer", status)
        return answer
    raise _refusal(response)


def _refusal(response: httpx.Response) -> ProviderError:
    """Describe a non-2xx answer: 429/5xx unavailable, any other refused."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    text, details = describe_error(body)
    kind = FailureKind.UNAVAILABLE if status == 429 or status >= 500 else FailureKind.REFUSED
    return ProviderError(kind, text, status, _retry_after(response), details)
