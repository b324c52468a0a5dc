"""Operations endpoints (/healthz, /readyz, /metrics) and the endpoint a request counts under."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from app import app_state, metrics
from app.migrate import current_revision, head_revision
from app.web.errors import ApiError, error_response
from app.web.middleware import ENDPOINT_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

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
    """Demand `Authorization: Bearer <IVR_METRICS_TOKEN>`; without one, serve development only."""
    settings = app_state().settings
    expected = settings.metrics_token
    if expected is None:
        if settings.development:
            return
        raise ApiError(403, "forbidden", "/metrics needs IVR_METRICS_TOKEN in production")
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


def endpoint_namer(app: Flask) -> Callable[[WSGIEnvironment], str]:
    """Name a request by the endpoint of the view that answers it, or "unmatched"."""

    def endpoint(environ: WSGIEnvironment) -> str:
        # Flask's own routing of the request; never the path, which may hold a token.
        adapter = app.create_url_adapter(app.request_class(environ))
        try:
            rule, _ = adapter.match(return_rule=True)  # type: ignore[union-attr]
        except HTTPException:  # no route, another method, a redirect, an untrusted host
            return "unmatched"
        return str(rule.endpoint)

    return endpoint


def _name_endpoint() -> None:
    """Leave the endpoint Flask routed this request to for the request metrics."""
    if request.endpoint is not None:
        request.environ[ENDPOINT_KEY] = request.endpoint


def init_app(app: Flask) -> None:
    """Register the blueprint, the endpoint's name for metrics and the calls gauge."""
    app.before_request(_name_endpoint)
    app.extensions[CALLS_COLLECTOR] = metrics.CallsCollector(app.extensions["ivrdesk"].engine)
    app.register_blueprint(bp)
