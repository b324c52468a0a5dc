"""The notify endpoint: Infobip posts delivery reports here (DESIGN.md "Receiving")."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Sequence

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import OperationalError

from app import metrics
from app.db import utcnow
from app.reports.inbound import Inbound, store_inbound
from app.reports.parse import ParsedItem, ReportParseError, parse_report_body
from app.reports.receive import record_post
from app.reports.record import summarise
from app.services import app_state, db_session
from app.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

REPORT_TYPES = ("application/json", "application/xml", "text/xml")
RETRY_AFTER = "30"
CONFLICT_ATTEMPTS = 3
# PostgreSQL's deadlock_detected and serialization_failure: the whole POST is retried.
_CONFLICT_STATES = {"40P01", "40001"}


def _lock_conflict(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _CONFLICT_STATES


def token_matches(tokens: Sequence[str], presented: str) -> bool:
    """Compare against every configured token in constant time (rotation)."""
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(candidate.encode(), presented.encode())
    return matched


def source_allowed(
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], peer: str | None
) -> bool:
    """Say whether the peer address is in the allowlist (an empty list allows any)."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def _check_token(token: str) -> None:
    if not token_matches(app_state().settings.notify_tokens, token):
        raise ApiError(401, "unauthorized", "unknown notify token")


def _check_source() -> None:
    peer = request.remote_addr
    if source_allowed(app_state().settings.notify_allow_cidrs, peer):
        return
    try:
        ipaddress.ip_address(peer or "")
    except ValueError:
        raise ApiError(403, "forbidden", "the report source address is unknown") from None
    raise ApiError(403, "forbidden", "reports are not accepted from this address")


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"reports are limited to {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "payload_too_large", f"reports are limited to {limit} bytes")
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
    _check_token(token)
    return jsonify({"status": "ok"})


def _parse(body: bytes, content_type: str) -> tuple[list[ParsedItem] | None, ApiError | None]:
    if request.mimetype not in REPORT_TYPES:
        error = ApiError(415, "unsupported_media_type", "send reports as JSON or XML")
        return None, error
    try:
        return parse_report_body(body, content_type), None
    except ReportParseError as exc:
        return None, ApiError(400, "invalid_report", str(exc))


@bp.post("/notify/ivr/<token>")
def receive(token: str) -> tuple[Response, int]:
    """Store the raw report, then record every result in it."""
    _check_token(token)
    _check_source()
    body = _read_body(app_state().settings.max_report_bytes)
    content_type = request.headers.get("Content-Type", "")
    items, refusal = _parse(body, content_type)
    session = db_session()
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            if items is None:
                assert refusal is not None
                inbound = Inbound(body, content_type, request.remote_addr,
                                  parse_error=refusal.message)  # fmt: skip
                store_inbound(session, inbound)
                session.commit()
                raise refusal
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
