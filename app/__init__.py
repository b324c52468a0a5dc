"""ivrdesk: launch Infobip IVR campaigns and keep every call's status history."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Settings, load_settings, warn_about
from app.db import make_engine, make_read_session_factory, make_session_factory
from app.logs import configure_logging

__all__ = ["app_state", "create_app"]

if TYPE_CHECKING:
    from app.services import AppState


def _secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    # Development only (production refuses to start without IVR_SECRET_KEY): one
    # random key, generated once and kept under instance/.
    path = settings.instance_path / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings, database, web layer and CLI commands."""
    from app import cli, web
    from app.services import AppState
    from app.web.middleware import RequestScope
    from app.web.ops import endpoint_namer

    settings = settings or load_settings()
    configure_logging(settings)
    app = Flask(__name__, instance_path=str(Path(settings.instance_path).resolve()))
    app.config["SECRET_KEY"] = _secret_key(settings)
    engine = make_engine(settings.database_url)
    app.extensions["ivrdesk"] = AppState(
        settings, engine, make_session_factory(engine), make_read_session_factory(engine)
    )
    warn_about(settings)
    if engine.dialect.name == "postgresql":
        from app.web.notify_lane import NotifyLane

        app.wsgi_app = NotifyLane(app, app.wsgi_app)  # type: ignore[method-assign]
    if settings.allowed_hosts:  # inside ProxyFix: the Host the client asked for
        from app.web.hosts import HostCheck

        app.wsgi_app = HostCheck(app.wsgi_app, settings.allowed_hosts)  # type: ignore[method-assign]
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.proxy_hops,
            x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops,
            x_port=settings.proxy_hops,
        )
    web.init_app(app)
    # Outermost: the request id and the request metrics cover every layer inside.
    app.wsgi_app = RequestScope(app.wsgi_app, endpoint_namer(app))  # type: ignore[method-assign]
    cli.init_app(app)
    return app


def app_state() -> AppState:
    """Return the current app's state."""
    return cast("AppState", current_app.extensions["ivrdesk"])
