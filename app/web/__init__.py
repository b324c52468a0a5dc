"""The web layer: blueprints, error handlers and the per-request session."""

from __future__ import annotations

from flask import Flask

from app.web import admin, api, docs, errors, notify, ops, security
from app.web.session import close_db_session


def init_app(app: Flask) -> None:
    """Register every blueprint and handler on the app."""
    errors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(notify.bp)
    app.register_blueprint(docs.bp)
    admin.init_app(app, csrf_exempt=(api.bp, notify.bp))
    app.teardown_appcontext(close_db_session)
    ops.init_app(app)
    security.init_app(app)
