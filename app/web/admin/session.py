"""Admin sessions: cookie flags, CSRF protection, the logged-in user, safe redirects.

The session is Flask's signed cookie. It holds the user's id, name and session
version, and is cleared on login (a new session: no fixation) and on logout. It
lasts 12 hours from login; the user is read from the database on every request,
and the cookie counts only while the user's session version is the one it holds:
logout, a password change and disabling raise it, ending every session of the
user on every host at once. CSRF protection (Flask-WTF) covers every form
of the app; the token-authenticated blueprints (API, webhooks) are exempt, as
they never read cookies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import cast

from flask import Blueprint, Flask, request, session
from flask_wtf.csrf import CSRFProtect

from app.models import User
from app.services import AppState
from app.web.session import db_session

SESSION_LIFETIME = timedelta(hours=12)
_USER_ID = "user_id"
_USER_NAME = "user_name"
_VERSION = "session_version"


def configure_sessions(app: Flask, csrf_exempt: Iterable[Blueprint]) -> CSRFProtect:
    """Set the session cookie's flags and lifetime, and turn CSRF protection on."""
    settings = cast(AppState, app.extensions["ivrdesk"]).settings
    secure = (settings.public_url or "").lower().startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="ivrdesk_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        # Flask checks the signed cookie's age against this on every request.
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # The CSRF token lives as long as the session, so a page left open stays usable.
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf = CSRFProtect(app)
    for blueprint in csrf_exempt:
        csrf.exempt(blueprint)
    return csrf


def start_session(user: User) -> None:
    """Begin a new session for a user who just logged in (the old one is dropped)."""
    session.clear()
    session[_USER_ID] = user.id
    session[_USER_NAME] = user.name
    session[_VERSION] = user.session_version


def end_session() -> None:
    """Forget the logged-in user and the CSRF token."""
    session.clear()


def current_user() -> User | None:
    """Return the logged-in user, or None (no session, user gone or disabled, session ended)."""
    user_id, version = session.get(_USER_ID), session.get(_VERSION)
    if not isinstance(user_id, int) or not isinstance(version, int):
        return None
    user = db_session().get(User, user_id)
    if (
        user is None
        or user.disabled
        or user.name != session.get(_USER_NAME)
        or user.session_version != version
    ):
        return None
    return user


def client_address() -> str:
    """Return the client's address (the proxy's X-Forwarded-For hop when IVR_PROXY_HOPS says)."""
    return request.remote_addr or "unknown"


def safe_next(target: str | None, default: str) -> str:
    """Return a post-login destination inside the admin pages, never another site."""
    if (
        target
        and target.startswith("/admin/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ord(char) > 31 for char in target)
    ):
        return target.rstrip("?")
    return default
