"""The notify endpoint's fast lane: JSON report POSTs on PostgreSQL, recorded without Flask.

Delivery reports are the request ivrdesk answers most, and Infobip posts most of
them one at a time. The lane is a WSGI layer in front of the Flask app that takes a
POST of UTF-8 JSON reports and records it through app.reports.receive, as the view in
app/web/notify.py does, but without Flask's request context and hooks; a single
report is one autocommitted statement (app.reports.single_pg), without even a transaction
of its own (together about a millisecond of CPU per report on the development
machine, docs/PERFORMANCE.md). It answers exactly what the view would: the same
JSON, nosniff, no-store (the request id and the request metrics come from app.web.middleware,
around both). Anything else (another method or path, a wrong token or source,
another media type or charset, no Content-Length,
an oversize body or one that is not JSON with a results list, a single report with
a value a column cannot hold, any database error) goes to that view unchanged, with
the body the lane has read, so refusals, retries, the 503 and their logs stay in
one place. The lane has written nothing when it hands a POST on: its transaction
either commits whole or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from io import BytesIO
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy.exc import DBAPIError

from app import metrics
from app.db import utcnow
from app.reports.parse import (
    DeliveryReport,
    ParsedItem,
    ReportParseError,
    media_type,
    parse_report_body,
    utf8_charset,
)
from app.reports.receive import record_post
from app.reports.record import ItemResult, NeedsTransaction, summarise
from app.services import AppState
from app.web.middleware import ENDPOINT_KEY
from app.web.refusals import content_length, refuse_report

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

PREFIX = "/notify/ivr/"
ENDPOINT = "webhooks.receive"  # the view's name, so the request metrics are the same


class NotifyLane:
    """Answer the common report POST before Flask; hand every other request to Flask."""

    def __init__(self, flask_app: Flask, wsgi_app: WSGIApplication) -> None:
        """Wrap `wsgi_app` (the Flask app's own WSGI callable) for `flask_app`."""
        state: AppState = flask_app.extensions["ivrdesk"]
        self.wsgi_app = wsgi_app
        self.engine = state.engine
        self.sessions = state.sessions
        self.settings = state.settings
        self.json = flask_app.json

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Take a report POST to the notify URL; pass anything else on."""
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PREFIX):
            return self.wsgi_app(environ, start_response)
        return self._receive(environ, start_response, path[len(PREFIX) :])

    def _receive(
        self, environ: WSGIEnvironment, start_response: StartResponse, token: str
    ) -> Iterable[bytes]:
        length = self._acceptable_length(environ, token)
        if length is None:
            return self.wsgi_app(environ, start_response)
        body = _read(environ["wsgi.input"], length)
        if len(body) == length:
            content_type = environ.get("CONTENT_TYPE", "")
            answer = self._record(body, content_type, environ.get("REMOTE_ADDR"))
            if answer is not None:
                environ[ENDPOINT_KEY] = ENDPOINT
                return self._answer(start_response, answer)
        environ["wsgi.input"] = BytesIO(body)  # the view reads the same bytes again
        return self.wsgi_app(environ, start_response)

    def _acceptable_length(self, environ: WSGIEnvironment, token: str) -> int | None:
        """The body's length when the lane may take this POST, else None (the view's turn)."""
        content_type = environ.get("CONTENT_TYPE", "")
        length = content_length(environ.get("CONTENT_LENGTH"))
        refusal = refuse_report(
            self.settings,
            token=token,
            peer=environ.get("REMOTE_ADDR"),
            content_type=content_type,
            length=length,
        )
        kind, charset = media_type(content_type)
        if refusal is not None or kind != "application/json" or not utf8_charset(charset):
            return None
        return length or None  # no Content-Length, or an empty body: the view's

    def _record(
        self, body: bytes, content_type: str, peer: str | None
    ) -> tuple[list[ItemResult], list[ParsedItem]] | None:
        """Record the body's results as the view would, or None (nothing stored)."""
        try:
            items = parse_report_body(
                body, content_type, max_results=self.settings.max_report_results
            )
        except ReportParseError:
            return None
        try:
            if len(items) == 1 and isinstance(items[0], DeliveryReport):
                results = self._record_single(items, body, content_type, peer)
            else:
                with self.sessions() as session:
                    results = record_post(session, items, body=body, content_type=content_type,
                                          peer=peer)  # fmt: skip
                    session.commit()
        except (DBAPIError, NeedsTransaction) as exc:
            log.warning(
                "fast report path failed, taking the general one: %s", type(exc).__name__,
            )  # fmt: skip
            return None
        return results, items

    def _record_single(
        self, items: list[ParsedItem], body: bytes, content_type: str, peer: str | None
    ) -> list[ItemResult]:
        """One report, one autocommitted statement: no BEGIN, no COMMIT round trip.

        Autocommit is switched on the driver's connection by hand: SQLAlchemy's own
        isolation_level="AUTOCOMMIT" (which GET requests use, app.db) costs about
        70 µs more of CPU per report at checkout and check-in (measured in-process).
        NeedsTransaction (a value no column can hold): nothing was written.
        """
        with self.engine.connect() as connection:
            driver: Any = connection.connection.driver_connection
            driver.autocommit = True
            try:
                return record_post(connection, items, body=body, content_type=content_type,
                                   peer=peer)  # fmt: skip
            finally:
                if not connection.invalidated:
                    driver.autocommit = False

    def _answer(
        self,
        start_response: StartResponse,
        answer: tuple[list[ItemResult], list[ParsedItem]],
    ) -> Iterable[bytes]:
        results, items = answer
        metrics.count_report_results(results)
        metrics.observe_report_delays(items, utcnow())
        payload = (self.json.dumps(summarise(results), separators=(",", ":")) + "\n").encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Content-Type-Options", "nosniff"),
                ("Cache-Control", "no-store"),
            ],
        )
        return [payload]


def _read(stream: Any, length: int) -> bytes:
    """Read up to `length` bytes (fewer only when the client stopped sending)."""
    chunks, remaining = [], length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
