"""The web layer: blueprints, error handlers and the per-request session."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from app.web import api, errors, webhooks
from app.web.state import close_db_session


def init_app(app: Flask) -> None:
    """Register every blueprint and handler on the app."""
    errors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(webhooks.bp)
    app.teardown_appcontext(close_db_session)

    @app.get("/healthz")
    def healthz() -> Response:
        """Say the process is alive (no database involved)."""
        return jsonify({"status": "ok"})
