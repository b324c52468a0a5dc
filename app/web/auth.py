"""API authentication: `Authorization: Bearer <token>` or `App <token>`, with roles."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from flask import g, request
from sqlalchemy.orm import Session

from app import app_state
from app.accounts.tokens import LiveToken, find_token, note_token_use
from app.db import utcnow
from app.models import Role
from app.web.errors import ApiError
from app.web.session import db_session, request_only_reads

F = TypeVar("F", bound=Callable[..., Any])
# last_used_at is written at most this often, so lookups do not each cost a commit.
LAST_USED_PRECISION = timedelta(minutes=5)
_RANK = {Role.VIEWER.value: 1, Role.OPERATOR.value: 2}


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() in ("bearer", "app") and secret.strip():
        return secret.strip()
    return None


def current_token(role: Role) -> LiveToken:
    """Return the request's token if it has at least this role; raise 401/403 otherwise."""
    secret = _presented_token()
    challenge = {"WWW-Authenticate": 'Bearer realm="ivrdesk"'}
    if secret is None:
        raise ApiError(401, "unauthorized", "an API token is required", headers=challenge)
    session = db_session()
    token = find_token(session, secret)
    if token is None:
        raise ApiError(401, "unauthorized", "the API token is not valid", headers=challenge)
    if _RANK[token.role] < _RANK[role.value]:
        raise ApiError(403, "forbidden", f"this needs an {role.value} token")
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        _note_use(session, token.id, now)
    return token


def _note_use(session: Session, token_id: int, now: datetime) -> None:
    """Write a token's last use: in the request's session if it writes, else in its own.

    A GET's session only reads (app.services); any other request's may hold SQLite's
    write lock already, which a second session would wait for in vain.
    """
    if not request_only_reads():
        note_token_use(session, token_id, now)
        session.commit()
        return
    with app_state().sessions() as writer:
        note_token_use(writer, token_id, now)
        writer.commit()


def require_token(role: Role) -> Callable[[F], F]:
    """Guard a view with an API token of at least the given role."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.api_token = current_token(role)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorate
