"""The admin login rate limit: failed logins counted per user name and per client address.

Failures are rows of `login_attempts`, so every gunicorn worker on every host
counts the same ones (DESIGN.md "Scaling out"). A user name is blocked after 5
failures in 5 minutes; an address after 20 (one office behind one NAT address
holds several people who mistype). Two concurrent attempts may both pass the
check, so a burst can exceed the limit by the attempts that were in flight at once.
Never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from app.accounts.tokens import authenticate_user
from app.models import LoginAttempt, User

_NAME_LENGTH = 100
_ADDRESS_LENGTH = 64


@dataclass(frozen=True)
class LoginLimit:
    """How many failures a user name and an address may have within the window."""

    window: timedelta = timedelta(minutes=5)
    per_name: int = 5
    per_address: int = 20


DEFAULT_LIMIT = LoginLimit()


@dataclass(frozen=True)
class LoginResult:
    """The user who logged in, or None; retry_after is set when the limit refused the attempt."""

    user: User | None
    retry_after: timedelta | None = None


def _key(user_name: str) -> str:
    """Return the user name as counted: stripped and cut to the column's length."""
    return user_name.strip()[:_NAME_LENGTH]


def _oldest_counted(
    session: Session, condition: ColumnElement[bool], most: int, since: datetime
) -> datetime | None:
    """Return the oldest of the `most` newest failures since a time, if there are that many."""
    times = list(
        session.scalars(
            select(LoginAttempt.attempted_at)
            .where(condition, LoginAttempt.attempted_at > since)
            .order_by(LoginAttempt.attempted_at.desc())
            .limit(most)
        )
    )
    return times[-1] if len(times) >= most else None


def find_login_block(
    session: Session,
    user_name: str,
    address: str,
    *,
    now: datetime,
    limit: LoginLimit = DEFAULT_LIMIT,
) -> timedelta | None:
    """Return how long until this name may try again from this address, or None if it may now."""
    since = now - limit.window
    by_name = LoginAttempt.user_name == _key(user_name)
    by_address = LoginAttempt.address == address[:_ADDRESS_LENGTH]
    oldest = [
        moment
        for moment in (
            _oldest_counted(session, by_name, limit.per_name, since),
            _oldest_counted(session, by_address, limit.per_address, since),
        )
        if moment is not None
    ]
    if not oldest:
        return None
    # Blocked until the oldest counted failure leaves the window; never "0 seconds".
    return max(max(oldest) + limit.window - now, timedelta(seconds=1))


def record_login_failure(
    session: Session,
    user_name: str,
    address: str,
    *,
    now: datetime,
    limit: LoginLimit = DEFAULT_LIMIT,
) -> None:
    """Count a failed login, and forget failures that have left the window."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= now - limit.window))
    session.add(
        LoginAttempt(user_name=_key(user_name), address=address[:_ADDRESS_LENGTH], attempted_at=now)
    )
    session.flush()


def clear_login_failures(session: Session, user_name: str) -> None:
    """Forget a user name's failures after it logged in (its address's failures still count)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.user_name == _key(user_name)))


def attempt_login(
    session: Session,
    user_name: str,
    password: str,
    address: str,
    *,
    now: datetime,
    limit: LoginLimit = DEFAULT_LIMIT,
) -> LoginResult:
    """Check the rate limit, then the password; count a failure or forget the name's failures."""
    wait = find_login_block(session, user_name, address, now=now, limit=limit)
    if wait is not None:
        return LoginResult(None, wait)
    user = authenticate_user(session, user_name, password)
    if user is None:
        record_login_failure(session, user_name, address, now=now, limit=limit)
    else:
        clear_login_failures(session, user_name)
    return LoginResult(user)
