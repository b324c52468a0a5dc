"""The WSGI layer around everything: each request's id, its X-Request-ID header and metrics.

create_app wraps the whole WSGI stack in `RequestScope` (the notify lane and the
Flask app alike), so every request is given one id, every log line inside it
carries that id, every answer echoes it, and every request is counted once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from app import metrics
from app.logs import NO_REQUEST, REQUEST_ID_HEADER, bind_request_id, pick_request_id

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# How the environ names the request's X-Request-ID header.
REQUEST_ID_KEY = "HTTP_X_REQUEST_ID"
# Where the layer that answers writes the endpoint it answered as (else it is looked up).
ENDPOINT_KEY = "ivrdesk.endpoint"
SERVER_ERROR = 500


class _Answer:
    """The inner answer's body, passed through; closing it ends the request's id."""

    def __init__(self, body: Iterable[bytes]) -> None:
        """Wrap the body an inner application returned."""
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body's chunks as they are."""
        return iter(self.body)

    def close(self) -> None:
        """Close the body (WSGI servers call this once it is sent), then forget the id."""
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            bind_request_id(NO_REQUEST)


class RequestScope:
    """Give each request an id (header, logs) and count it by endpoint, method and status."""

    def __init__(
        self, wsgi_app: WSGIApplication, endpoint_of: Callable[[WSGIEnvironment], str]
    ) -> None:
        """Wrap `wsgi_app`; `endpoint_of` names a request's endpoint as its Flask view would.

        It is asked only when the layer that answered left no name at ENDPOINT_KEY (Flask
        and the notify lane leave one; a request no route matches does not).
        """
        self.wsgi_app = wsgi_app
        self.endpoint_of = endpoint_of

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer through the inner application inside the request's scope."""
        started = time.perf_counter()
        request_id = pick_request_id(environ.get(REQUEST_ID_KEY))
        bind_request_id(request_id)
        answered = False

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal answered
            if not answered:
                answered = True
                self._observe(environ, int(status.split(" ", 1)[0]), started)
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        try:
            return _Answer(self.wsgi_app(environ, start))
        except BaseException:
            if not answered:
                self._observe(environ, SERVER_ERROR, started)
            # The id stays bound: the server logs the error next, and the thread's next
            # request binds its own.
            raise

    def _observe(self, environ: WSGIEnvironment, status: int, started: float) -> None:
        """Count the request once, when its status is known."""
        method = str(environ.get("REQUEST_METHOD", ""))
        elapsed = time.perf_counter() - started
        endpoint = environ.get(ENDPOINT_KEY) or self.endpoint_of(environ)
        metrics.observe_request(str(endpoint), method, status, elapsed)
