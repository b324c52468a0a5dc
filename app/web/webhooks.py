"""The notify endpoint: Infobip posts delivery reports here (DESIGN.md "Receiving")."""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import metrics
from app.calls import ItemResult, record_items, summarise
from app.db import utcnow
from app.group_commit import GroupCommitter
from app.ingest import record_batch
from app.ingest_pg import SingleReport, record_singles
from app.ingest_sets import lock_calls
from app.models import InboundReport
from app.notify import DeliveryReport, ParsedItem, ReportParseError, parse_report_body
from app.web.errors import ApiError
from app.web.state import AppState, app_state, db_session

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

REPORT_TYPES = ("application/json", "application/xml", "text/xml")
RETRY_AFTER = "30"
CONFLICT_ATTEMPTS = 3
COMMITTER = "ivrdesk.report_committer"
# PostgreSQL's deadlock_detected and serialization_failure: the whole POST is retried.
_CONFLICT_STATES = {"40P01", "40001"}


def _lock_conflict(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _CONFLICT_STATES


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


@dataclass(frozen=True)
class NotifyPost:
    """A parsed POST waiting to be recorded (the request's own objects stay behind)."""

    body: bytes
    content_type: str
    peer: str | None
    items: list[ParsedItem]


def _store_inbound(
    session: Session,
    body: bytes,
    content_type: str,
    peer: str | None,
    *,
    items: int | None,
    parse_error: str | None,
    received_at: datetime,
) -> int:
    """Keep the raw body (one INSERT), in the transaction that records its items."""
    inbound_id: int | None = session.scalar(
        insert(InboundReport)
        .values(
            received_at=received_at,
            content_type=content_type[:200],
            peer=peer,
            body=body,
            size=len(body),
            items=items,
            parse_error=parse_error,
        )
        .returning(InboundReport.id)
    )
    assert inbound_id is not None
    return inbound_id


def _parse(body: bytes, content_type: str) -> tuple[list[ParsedItem] | None, ApiError | None]:
    if request.mimetype not in REPORT_TYPES:
        error = ApiError(415, "unsupported_media_type", "send reports as JSON or XML")
        return None, error
    try:
        return parse_report_body(body, content_type), None
    except ReportParseError as exc:
        return None, ApiError(400, "invalid_report", str(exc))


def _record_post(session: Session, post: NotifyPost, received_at: datetime) -> list[ItemResult]:
    """Store one POST's body and record its items with the set-based path."""
    inbound_id = _store_inbound(session, post.body, post.content_type, post.peer,
                                items=len(post.items), parse_error=None,
                                received_at=received_at)  # fmt: skip
    return record_batch(session, post.items, received_at=received_at, inbound_report_id=inbound_id)


def _single(post: NotifyPost) -> SingleReport | None:
    (report,) = post.items if len(post.items) == 1 else (None,)
    if not isinstance(report, DeliveryReport):
        return None
    return SingleReport(report, post.body, post.content_type, post.peer)


def _record_posts(session: Session, posts: Sequence[NotifyPost]) -> list[list[ItemResult]]:
    """Record a group of POSTs in the session's transaction; raise on any database error.

    On PostgreSQL the single-report POSTs (the usual kind) take one statement per
    round of distinct messageIds (app/ingest_pg.py); everything else, and SQLite,
    goes POST by POST through the set-based path (app/ingest.py).
    """
    received_at = utcnow()
    results: list[list[ItemResult] | None] = [None] * len(posts)
    if session.get_bind().dialect.name == "postgresql":
        singles = {i: single for i, post in enumerate(posts) if (single := _single(post))}
        rounds = _rounds(singles)
        if len(posts) > 1 and (len(rounds) > 1 or len(singles) < len(posts)):
            # Several statements will lock calls: take all their locks first, in id
            # order, so that no two groups can wait on each other.
            lock_calls(session, {item.message_id for post in posts for item in post.items
                                 if isinstance(item, DeliveryReport)})  # fmt: skip
        for positions in rounds:
            outcomes = record_singles(session, [singles[i] for i in positions],
                                      received_at=received_at)  # fmt: skip
            for i, outcome in zip(positions, outcomes, strict=True):
                results[i] = None if outcome is None else [outcome]
    return [
        done if done is not None else _record_post(session, post, received_at)
        for post, done in zip(posts, results, strict=True)
    ]


def _rounds(singles: dict[int, SingleReport]) -> list[list[int]]:
    """Split POST positions into rounds in which no messageId repeats, in arrival order."""
    rounds: list[list[int]] = []
    seen: list[set[str]] = []
    for i, single in singles.items():
        message_id = single.report.message_id
        for positions, ids in zip(rounds, seen, strict=True):
            if message_id not in ids:
                positions.append(i)
                ids.add(message_id)
                break
        else:
            rounds.append([i])
            seen.append({message_id})
    return rounds


def _record_items(session: Session, post: NotifyPost) -> list[ItemResult]:
    """The careful way: the body, then each item in its own savepoint."""
    received_at = utcnow()
    inbound_id = _store_inbound(session, post.body, post.content_type, post.peer,
                                items=len(post.items), parse_error=None,
                                received_at=received_at)  # fmt: skip
    return record_items(session, post.items, received_at=received_at, inbound_report_id=inbound_id)


Outcome = list[ItemResult] | ApiError  # an ApiError is raised in the POST's own thread


def _write(session: Session, posts: Sequence[NotifyPost]) -> list[Outcome]:
    """Record the POSTs and commit once; retry lock conflicts and dropped connections."""
    careful = False
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            if careful:
                outcomes: list[Outcome] = [_record_items(session, posts[0])]
            else:
                outcomes = list(_record_posts(session, posts))
            session.commit()
            return outcomes
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
            return [_unavailable(exc)] * len(posts)
        except DBAPIError as exc:
            session.rollback()
            if careful:
                raise
            if len(posts) > 1:
                # Something in the group cannot be stored with the rest: each on its own.
                return [outcome for post in posts for outcome in _write(session, [post])]
            # Something in the POST cannot be stored as a whole: redo it item by item,
            # each in its own savepoint, so the raw body and the good items are kept.
            log.warning("report batch fell back to item-by-item recording: %s",
                        type(exc).__name__)  # fmt: skip
            careful = True
    raise AssertionError("unreachable: the last attempt returns or raises")


def record_group(state: AppState, posts: Sequence[NotifyPost]) -> list[Outcome]:
    """Record a group of POSTs in one transaction (the group committer's work)."""
    metrics.observe_report_group(len(posts))
    session = state.sessions()
    try:
        return _write(session, posts)
    finally:
        session.close()


def init_app(app: Flask) -> None:
    """Give the app its report committer: concurrent POSTs share one transaction."""
    state = app.extensions["ivrdesk"]
    app.extensions[COMMITTER] = GroupCommitter(functools.partial(record_group, state))


@bp.post("/notify/ivr/<token>")
def receive(token: str) -> tuple[Response, int]:
    """Store the raw report, then record every result in it."""
    _check_token(token)
    _check_source()
    body = _read_body(app_state().settings.max_report_bytes)
    content_type = request.headers.get("Content-Type", "")
    items, refusal = _parse(body, content_type)
    if items is None:
        assert refusal is not None
        _keep_refused(body, content_type, refusal)
        raise refusal
    committer: GroupCommitter[NotifyPost, list[ItemResult]] = current_app.extensions[COMMITTER]
    results = committer.submit(NotifyPost(body, content_type, request.remote_addr, items))
    metrics.count_report_results(results)
    metrics.observe_report_delays(items, utcnow())
    return jsonify(summarise(results)), 200


def _keep_refused(body: bytes, content_type: str, refusal: ApiError) -> None:
    """Store a body that cannot be read (it passed authentication) before refusing it."""
    session = db_session()
    try:
        _store_inbound(session, body, content_type, request.remote_addr, items=None,
                       parse_error=refusal.message, received_at=utcnow())  # fmt: skip
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise _unavailable(exc) from exc
