"""The notify endpoint: Infobip posts delivery reports here (DESIGN.md "Receiving")."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import OperationalError

from app import app_state, metrics
from app.db import utcnow
from app.reports.inbound import Inbound, store_inbound
from app.reports.parse import ParsedItem, ReportParseError, TooManyResults, parse_report_body
from app.reports.receive import record_post
from app.reports.record import summarise
from app.web.errors import ApiError
from app.web.refusals import Refusal, content_length, refuse_report, refuse_token, too_large
from app.web.session import db_session

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

RETRY_AFTER = "30"
CONFLICT_ATTEMPTS = 3
# PostgreSQL's deadlock_detected and serialization_failure: the whole POST is retried.
_CONFLICT_STATES = {"40P01", "40001"}


def _lock_conflict(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _CONFLICT_STATES


def _refused(refusal: Refusal) -> ApiError:
    return ApiError(refusal.status, refusal.code, refusal.message)


def _read_body(limit: int) -> bytes:
    body = request.stream.read(limit + 1)  # no Content-Length (chunked): read to the limit
    if len(body) > limit:
        raise _refused(too_large(limit))
    return body


def _unavailable(exc: Exception) -> ApiError:
    log.error("database unavailable while storing a report: %s", type(exc).__name__)
    return ApiError(
        503, "unavailable", "the database is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER},
    )  # fmt: skip


@bp.route("/notify/ivr/<token>", methods=["GET", "HEAD"])
def probe(token: str) -> Response:
    """Answer reachability probes on the notify URL."""
    refusal = refuse_token(app_state().settings, token)
    if refusal is not None:
        raise _refused(refusal)
    return jsonify({"status": "ok"})


def _parse(
    body: bytes, content_type: str, refusal: Refusal | None, max_results: int
) -> tuple[list[ParsedItem] | None, ApiError | None]:
    if refusal is not None:
        return None, _refused(refusal)
    try:
        return parse_report_body(body, content_type, max_results=max_results), None
    except TooManyResults as exc:
        return None, ApiError(413, "payload_too_large", f"{exc} (IVR_MAX_REPORT_RESULTS)")
    except ReportParseError as exc:
        return None, ApiError(400, "invalid_report", str(exc))


@bp.post("/notify/ivr/<token>")
def receive(token: str) -> tuple[Response, int]:
    """Store the raw report, then record every result in it."""
    settings = app_state().settings
    content_type = request.headers.get("Content-Type", "")
    refusal = refuse_report(
        settings,
        token=token,
        peer=request.remote_addr,
        content_type=content_type,
        length=content_length(request.headers.get("Content-Length")),
    )
    if refusal is not None and not refusal.keeps_body:
        raise _refused(refusal)  # nothing stored
    body = _read_body(settings.max_report_bytes)
    items, error = _parse(body, content_type, refusal, settings.max_report_results)
    session = db_session()
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            if items is None:
                assert error is not None
                inbound = Inbound(body, content_type, request.remote_addr,
                                  parse_error=error.message)  # fmt: skip
                store_inbound(session, inbound)
                session.commit()
                raise error
            results = record_post(session, items, body=body, content_type=content_type,
                                  peer=request.remote_addr)  # fmt: skip
            session.commit()
            metrics.count_report_results(results)
            metrics.observe_report_delays(items, utcnow())
            break
        except OperationalError as exc:
            session.rollback()
            if attempt < CONFLICT_ATTEMPTS and _lock_conflict(exc):
                log.warning("report POST hit a lock conflict; retrying (%d)", attempt)
                continue
            if attempt < CONFLICT_ATTEMPTS and exc.connection_invalidated:
                # A pooled connection the server dropped (restart): the pool is
                # invalidated, so the next attempt gets a new connection.
                log.warning("report POST met a dropped connection; retrying (%d)", attempt)
                continue
            raise _unavailable(exc) from exc
    return jsonify(summarise(results)), 200
