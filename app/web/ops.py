"""Operations endpoints (/healthz, /readyz, /metrics) and the per-request id and metrics."""

from __future__ import annotations

import functools
import hmac
import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import Engine

from app import metrics
from app.logs import REQUEST_ID_HEADER, pick_request_id
from app.migrate import current_revision, head_revision
from app.services import app_state
from app.web.errors import ApiError, error_response

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)
CALLS_COLLECTOR = "ivrdesk.calls_collector"
NO_STORE = {"Cache-Control": "no-store"}


@functools.cache
def migrations_head() -> str | None:
    """Return the newest migration, read from migrations/ once per process."""
    return head_revision()


def readiness_problem(engine: Engine) -> str | None:
    """Say why this process should not get traffic, or None when the database is ready."""
    try:
        current = current_revision(engine)
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return f"database unreachable ({type(exc).__name__})"
    head = migrations_head()
    if current != head:
        return f"database schema at {current or 'no revision'}, expected {head}: run migrations"
    return None


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """Say the process is alive (no database involved)."""
    return jsonify({"status": "ok"}), 200, NO_STORE


@bp.get("/readyz")
def readyz() -> tuple[Response, int, dict[str, str]]:
    """Say whether the database is reachable and its schema at the migrations' head."""
    problem = readiness_problem(app_state().engine)
    if problem is not None:
        return jsonify({"status": "unavailable", "reason": problem}), 503, NO_STORE
    return jsonify({"status": "ready", "revision": migrations_head()}), 200, NO_STORE


def _check_metrics_token() -> None:
    """Demand `Authorization: Bearer <IVR_METRICS_TOKEN>` when the token is set."""
    expected = app_state().settings.metrics_token
    if expected is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise ApiError(
            401, "unauthorized", "a valid metrics token is required",
            headers={"WWW-Authenticate": 'Bearer realm="ivrdesk-metrics"'},
        )  # fmt: skip


@bp.get("/metrics")
def metrics_view() -> Response:
    """Serve Prometheus metrics (all workers' samples) with the calls gauge."""
    try:
        _check_metrics_token()
    except ApiError as exc:
        return error_response(exc)
    body = metrics.render(current_app.extensions[CALLS_COLLECTOR])
    return Response(body, content_type=metrics.CONTENT_TYPE, headers=NO_STORE)


@bp.before_app_request
def start_request() -> None:
    """Give the request its id (the caller's X-Request-ID when sane) and start its clock."""
    g.request_id = pick_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


@bp.after_app_request
def finish_request(response: Response) -> Response:
    """Echo the request id and count the request by endpoint and status."""
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or pick_request_id(None)
    started = g.get("request_started")
    if started is not None:
        endpoint = request.endpoint or "unmatched"  # never the path: it may hold a token
        elapsed = time.perf_counter() - started
        metrics.observe_request(endpoint, request.method, response.status_code, elapsed)
    return response


def init_app(app: Flask) -> None:
    """Register the blueprint and the calls gauge of this app's database."""
    app.extensions[CALLS_COLLECTOR] = metrics.CallsCollector(app.extensions["ivrdesk"].engine)
    app.register_blueprint(bp)
