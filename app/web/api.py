"""The JSON API: launch a campaign, look up calls and campaigns."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.campaigns import create_campaign, fingerprint, get_campaign
from app.db import utcnow
from app.launch_request import parse_launch
from app.lookups import (
    find_call_detail,
    find_campaign_detail,
    last_batch_errors,
    launch_answer,
    launch_status_code,
)
from app.models import Role
from app.parked import rematch_campaign
from app.submission import submit_campaign
from app.web.auth import require_token
from app.web.errors import ApiError, error_body
from app.web.state import app_state, db_session

bp = Blueprint("api", __name__)

# The largest launch body accepted: 100,000 destinations with messageIds fit easily.
MAX_LAUNCH_BYTES = 64 * 1024 * 1024
_FAILURE_CODES = {502: "infobip_rejected", 503: "infobip_unavailable", 504: "infobip_timeout"}


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
        return json.loads(raw.decode(request.mimetype_params.get("charset", "utf-8")))
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
    settings = state.settings
    if settings.launch_missing:
        missing = ", ".join(settings.launch_missing)
        raise ApiError(503, "not_configured", f"launching is disabled: missing {missing}")
    body = read_json_body(MAX_LAUNCH_BYTES)
    launch_request = parse_launch(body, now=utcnow())
    asynchronous = _prefers_async() or launch_request.destination_count > settings.sync_limit
    session = db_session()
    created = create_campaign(
        session,
        launch_request,
        digest=fingerprint(body),
        batch_size=settings.batch_size,
        asynchronous=asynchronous,
        now=utcnow(),
    )
    session.commit()
    campaign = created.campaign
    if created.created:
        rematch_campaign(session, campaign, now=utcnow())
        session.commit()  # also ends the read: SQLite holds its write lock until then
    if created.created and not asynchronous:
        submit_campaign(state.submitter(), campaign.id)
    session.expire_all()
    answer, states = launch_answer(session, get_campaign(session, campaign.bulk_id))
    session.commit()
    status = 200 if not created.created else launch_status_code(states)
    if status >= 500:
        reasons = "; ".join(last_batch_errors(session, campaign)) or "no call was accepted"
        answer.update(error_body(_FAILURE_CODES[status], reasons))
    return jsonify(answer), status


@bp.get("/api/v1/calls/<message_id>")
@require_token(Role.VIEWER)
def show_call(message_id: str) -> Response:
    """Return one call with its whole history."""
    return jsonify(find_call_detail(db_session(), message_id))


@bp.get("/api/v1/campaigns/<bulk_id>")
@require_token(Role.VIEWER)
def show_campaign(bulk_id: str) -> Response:
    """Return one campaign with its counts."""
    return jsonify(find_campaign_detail(db_session(), bulk_id))
