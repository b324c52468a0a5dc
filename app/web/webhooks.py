"""The notify endpoint: Infobip posts delivery reports here (DESIGN.md "Receiving")."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from app.calls import record_items, summarise
from app.db import utcnow
from app.models import InboundReport
from app.notify import ReportParseError, parse_report_body
from app.web.errors import ApiError
from app.web.state import app_state, db_session

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

REPORT_TYPES = ("application/json", "application/xml", "text/xml")
RETRY_AFTER = "30"


def _check_token(token: str) -> None:
    """Compare against every configured token in constant time (rotation)."""
    matched = False
    for candidate in app_state().settings.notify_tokens:
        matched |= hmac.compare_digest(candidate.encode(), token.encode())
    if not matched:
        raise ApiError(401, "unauthorized", "unknown notify token")


def _check_source() -> None:
    networks = app_state().settings.notify_allow_cidrs
    if not networks:
        return
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        raise ApiError(403, "forbidden", "the report source address is unknown") from None
    if not any(address in network for network in networks):
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


@bp.post("/notify/ivr/<token>")
def receive(token: str) -> tuple[Response, int]:
    """Store the raw report, then record every result in it."""
    _check_token(token)
    _check_source()
    settings = app_state().settings
    body = _read_body(settings.max_report_bytes)
    content_type = request.headers.get("Content-Type", "")
    session = db_session()
    try:
        inbound = InboundReport(
            received_at=utcnow(),
            content_type=content_type[:200],
            peer=request.remote_addr,
            body=body,
            size=len(body),
        )
        session.add(inbound)
        session.flush()
        if request.mimetype not in REPORT_TYPES:
            inbound.parse_error = f"unsupported content type {request.mimetype!r}"
            session.commit()
            raise ApiError(415, "unsupported_media_type", "send reports as JSON or XML")
        try:
            items = parse_report_body(body, content_type)
        except ReportParseError as exc:
            inbound.parse_error = str(exc)
            session.commit()
            raise ApiError(400, "invalid_report", str(exc)) from exc
        inbound.items = len(items)
        results = record_items(
            session, items, received_at=inbound.received_at, inbound_report_id=inbound.id
        )
        session.commit()
    except (OperationalError, SQLAlchemyError) as exc:
        if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
            session.rollback()
            raise _unavailable(exc) from exc
        raise
    return jsonify(summarise(results)), 200
