"""The request's database session: opened on first use, a reading one for GET and HEAD."""

from __future__ import annotations

from typing import cast

from flask import g, request
from sqlalchemy.orm import Session

from app import app_state

# Requests that only read: no view answering them writes (an API token's last use is
# written in a session of its own, app.web.auth).
READ_METHODS = frozenset({"GET", "HEAD"})


def request_only_reads() -> bool:
    """Say whether this request's session is a reading one (see db_session)."""
    return request.method in READ_METHODS


def db_session() -> Session:
    """Return this request's session, opened on first use and closed at teardown.

    GET and HEAD requests get a reading session (app.db.make_read_session_factory):
    autocommitted on PostgreSQL, without the write lock on SQLite.
    """
    if "db_session" not in g:
        state = app_state()
        g.db_session = (state.read_sessions if request_only_reads() else state.sessions)()
    return cast(Session, g.db_session)


def close_db_session(_exc: BaseException | None = None) -> None:
    """Close (and so roll back anything uncommitted in) this request's session."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
