"""The JSON API: launch a campaign, look up calls and campaigns."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app import app_state
from app.db import utcnow
from app.launch.answer import last_batch_errors, launch_answer
from app.launch.campaigns import fingerprint, get_campaign, launch_campaign
from app.launch.request import Problem, parse_launch
from app.lookups.lists import (
    checked_call_filter,
    find_calls,
    find_campaigns,
    find_unmatched,
    get_campaign_calls,
    read_call_filter,
)
from app.lookups.paging import InvalidQuery, page_args
from app.lookups.reporting import export_filename, iter_campaign_csv
from app.lookups.resources import get_call_detail, get_campaign_detail
from app.models import Role
from app.web.auth import require_token
from app.web.errors import ApiError, error_body, error_response
from app.web.session import db_session

bp = Blueprint("api", __name__)

# The largest launch body accepted: 100,000 destinations with messageIds fit easily.
MAX_LAUNCH_BYTES = 64 * 1024 * 1024
# Python refuses to read integers longer than 4300 digits; no launch field needs 40.
MAX_INT_DIGITS = 4000
_FAILURE_CODES = {502: "infobip_rejected", 503: "infobip_unavailable", 504: "infobip_timeout"}


def _parse_int(digits: str) -> int | str:
    """Read a JSON integer; one too long for Python stays text, for validation to refuse."""
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


def read_json_body(limit: int) -> Any:
    """Read the request body as JSON, with clear 413/415/400 answers."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "payload_too_large", f"the body is larger than {limit} bytes")
    try:
        text = raw.decode(request.mimetype_params.get("charset", "utf-8"))
        return json.loads(text, parse_int=_parse_int)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from exc


def _prefers_async() -> bool:
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().lower() == "respond-async" for part in prefer.split(","))


@bp.post("/api/v1/campaigns")
@bp.post("/voice/ivr/1/messages")
@require_token(Role.OPERATOR)
def launch() -> tuple[Response, int]:
    """Validate, store and submit a campaign (DESIGN.md "Launching a campaign")."""
    state = app_state()
    if state.settings.launch_missing:
        missing = ", ".join(state.settings.launch_missing)
        raise ApiError(503, "not_configured", f"launching is disabled: missing {missing}")
    body = read_json_body(MAX_LAUNCH_BYTES)
    parsed = parse_launch(body, now=utcnow())
    session = db_session()
    launched = launch_campaign(
        session,
        state.submitter(),
        parsed,
        digest=fingerprint(body),
        batch_size=state.settings.batch_size,
        asynchronous=_prefers_async() or parsed.destination_count > state.settings.sync_limit,
    )
    answer = launch_answer(session, launched.campaign)
    if launched.status >= 500:
        reasons = "; ".join(last_batch_errors(session, launched.campaign))
        answer.update(
            error_body(_FAILURE_CODES[launched.status], reasons or "no call was accepted")
        )
    session.commit()
    return jsonify(answer), launched.status


@bp.get("/api/v1/calls/<message_id>")
@require_token(Role.VIEWER)
def show_call(message_id: str) -> Response:
    """Return one call with its whole history."""
    return jsonify(get_call_detail(db_session(), message_id))


@bp.get("/api/v1/campaigns/<bulk_id>")
@require_token(Role.VIEWER)
def show_campaign(bulk_id: str) -> Response:
    """Return one campaign with its counts."""
    return jsonify(get_campaign_detail(db_session(), bulk_id))


@bp.errorhandler(InvalidQuery)
def _invalid_query(exc: InvalidQuery) -> Response:
    """Answer 400 in the common error shape, naming the query parameter."""
    message = f"the query parameter {exc.path!r} is not valid"
    return error_response(
        ApiError(400, "validation_error", message, [Problem(exc.path, exc.message)])
    )


@bp.get("/api/v1/calls")
@require_token(Role.VIEWER)
def list_calls() -> Response:
    """Return calls by to, callbackData, bulkId, outcome or status, newest first."""
    session, args = db_session(), request.args
    filters, paging = read_call_filter(args), page_args(args)
    page = find_calls(session, checked_call_filter(session, filters), **paging)
    return jsonify(page.as_json())


@bp.get("/api/v1/campaigns")
@require_token(Role.VIEWER)
def list_campaigns() -> Response:
    """Return campaigns, newest first, with their counts."""
    args = request.args
    page = find_campaigns(db_session(), **page_args(args))
    return jsonify(page.as_json())


@bp.get("/api/v1/campaigns/<bulk_id>/calls")
@require_token(Role.VIEWER)
def list_campaign_calls(bulk_id: str) -> Response:
    """Return a campaign's calls in launch order, by outcome or status (name or group)."""
    args = request.args
    page = get_campaign_calls(
        db_session(),
        bulk_id,
        read_call_filter(args),
        **page_args(args),
    )
    return jsonify(page.as_json())


@bp.get("/api/v1/campaigns/<bulk_id>/calls.csv")
@require_token(Role.VIEWER)
def export_campaign_calls(bulk_id: str) -> Response:
    """Stream a campaign's calls as spreadsheet-safe CSV, in constant memory."""
    return csv_export_response(bulk_id)


def csv_export_response(bulk_id: str) -> Response:
    """Answer with a campaign's calls as a streamed CSV download (API and admin pages)."""
    session = db_session()
    campaign = get_campaign(session, bulk_id)  # a 404 comes before the stream starts
    session.commit()  # end the read before the stream starts
    chunks = iter_campaign_csv(app_state().read_sessions, campaign.id)
    disposition = f'attachment; filename="{export_filename(bulk_id)}"'
    return Response(chunks, mimetype="text/csv", headers={"Content-Disposition": disposition})


@bp.get("/api/v1/reports/unmatched")
@require_token(Role.VIEWER)
def list_unmatched() -> Response:
    """Return parked report results (no call has their messageId yet), newest first."""
    args = request.args
    page = find_unmatched(db_session(), **page_args(args))
    return jsonify(page.as_json())
