"""API tokens and admin users: created hashed, checked in constant time; never commits."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import select_rows
from app.models import ApiToken, Role, User

TOKEN_PREFIX = "ivr_"  # noqa: S105  (a visible prefix, not a secret)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")
MIN_PASSWORD = 10


@functools.cache
def _dummy_hash() -> str:
    """Hash compared against when the user does not exist (a wrong name costs as much as
    a wrong password); made on first use, not at import, since hashing is slow on purpose."""
    return generate_password_hash("not-a-real-password")


@dataclass(frozen=True)
class LiveToken:
    """An API token that may be used: what a request needs to know of it."""

    id: int
    role: str
    last_used_at: datetime | None


class AccountError(ValueError):
    """A name, role or password is not acceptable."""


def hash_token(secret: str) -> str:
    """Return the SHA-256 of a token, the only form that is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise AccountError(f"role must be viewer or operator, got {role!r}") from None


def _name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise AccountError("name must be 1-100 characters of letters, digits, space . _ @ -")
    return name


def create_token(session: Session, name: str, role: str, *, now: datetime) -> tuple[ApiToken, str]:
    """Create an API token; return the row and the secret, which is shown only once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=_name(name), role=_role(role).value, token_hash=hash_token(secret), created_at=now
    )
    session.add(token)
    session.flush()
    return token, secret


@functools.cache
def _live_token_query() -> Select[int, str, datetime | None, str]:
    """The live token with a hash (built once: this runs on every API request)."""
    return select(ApiToken.id, ApiToken.role, ApiToken.last_used_at, ApiToken.token_hash).where(
        ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None)
    )


def find_token(session: Session, secret: str) -> LiveToken | None:
    """Return the live token with this secret (id, role, last use), or None."""
    digest = hash_token(secret)
    rows = select_rows(session.connection(), _live_token_query, {"digest": digest})
    if not rows:
        return None
    token_id, role, last_used_at, token_hash = rows[0]
    # The lookup is by hash; compare again in constant time all the same.
    if not hmac.compare_digest(token_hash, digest):
        return None
    return LiveToken(token_id, role, last_used_at)


def note_token_use(session: Session, token_id: int, now: datetime) -> None:
    """Record when a token was last used (no commit)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def _password_hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    return generate_password_hash(password)


def create_user(session: Session, name: str, role: str, password: str, *, now: datetime) -> User:
    """Create an admin user with a hashed password."""
    name = _name(name)
    password_hash = _password_hash(password)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AccountError(f"user {name!r} exists already")
    user = User(name=name, role=_role(role).value, password_hash=password_hash, created_at=now)
    session.add(user)
    session.flush()
    return user


def find_users(session: Session) -> list[User]:
    """Return every admin user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def get_user(session: Session, name: str) -> User:
    """Return the admin user with this name; AccountError when there is none."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None:
        raise AccountError(f"there is no user {name.strip()!r}")
    return user


def end_user_sessions(session: Session, user_id: int) -> None:
    """End every session of a user, on every host: their cookies carry the old version."""
    session.execute(
        update(User).where(User.id == user_id).values(session_version=User.session_version + 1)
    )


def change_password(session: Session, name: str, password: str) -> User:
    """Set a user's password and end every session the user has."""
    user = get_user(session, name)
    user.password_hash = _password_hash(password)
    session.flush()
    end_user_sessions(session, user.id)
    return user


def disable_user(session: Session, name: str) -> User:
    """Disable a user (no more logins) and end every session the user has."""
    user = get_user(session, name)
    user.disabled = True
    session.flush()
    end_user_sessions(session, user.id)
    return user


def authenticate_user(session: Session, name: str, password: str) -> User | None:
    """Return the user when name and password match, else None (same cost either way)."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None or user.disabled:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None
