"""The admin login rate limit: an attacker slows down only themselves.

Failed logins are rows of `login_attempts`, so every gunicorn worker on every
host counts the same ones (DESIGN.md "Scaling out"). An address is refused for
the rest of the window after 20 failures (one office behind one NAT address
holds several people who mistype), and a user name from one address after 5.
A user name's failures from everywhere never refuse an address that has not
failed on it: while a name has 10 failures or more, an address that has failed
on it waits a minute after each of its failures. Two concurrent attempts may
both pass the check, so a burst can exceed a limit by the attempts in flight at
once. Never commits.
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
    """How many failures an address, and a user name from one address, may have in the window."""

    window: timedelta = timedelta(minutes=5)
    per_name_and_address: int = 5
    per_address: int = 20
    # A name with this many failures from all addresses is under attack: an address that
    # failed on it waits `pause` after each of its failures (a delay, never a lockout).
    under_attack: int = 10
    pause: timedelta = timedelta(minutes=1)


DEFAULT_LIMIT = LoginLimit()


@dataclass(frozen=True)
class LoginResult:
    """The user who logged in, or None; retry_after is set when the limit refused the attempt."""

    user: User | None
    retry_after: timedelta | None = None


def _key(user_name: str) -> str:
    """Return the user name as counted: stripped and cut to the column's length."""
    return user_name.strip()[:_NAME_LENGTH]


def _by_name(user_name: str) -> ColumnElement[bool]:
    return LoginAttempt.user_name == _key(user_name)


def _by_address(address: str) -> ColumnElement[bool]:
    return LoginAttempt.address == address[:_ADDRESS_LENGTH]


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


def _pause_until(
    session: Session, user_name: str, address: str, *, since: datetime, limit: LoginLimit
) -> datetime | None:
    """Return when an address that failed on a name under attack may try it again, or None."""
    if _oldest_counted(session, _by_name(user_name), limit.under_attack, since) is None:
        return None
    newest = _oldest_counted(session, _by_name(user_name) & _by_address(address), 1, since)
    return None if newest is None else newest + limit.pause


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
    ends = [
        moment + limit.window
        for moment in (
            _oldest_counted(session, _by_address(address), limit.per_address, since),
            _oldest_counted(
                session,
                _by_name(user_name) & _by_address(address),
                limit.per_name_and_address,
                since,
            ),
        )
        if moment is not None
    ]
    paused = _pause_until(session, user_name, address, since=since, limit=limit)
    if paused is not None and paused > now:
        ends.append(paused)
    if not ends:
        return None
    # Blocked until the latest of the ends; never "0 seconds".
    return max(max(ends) - now, timedelta(seconds=1))


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


def clear_login_failures(session: Session, user_name: str, address: str) -> None:
    """Forget the name's failures from this address after it logged in from there."""
    # Its failures from elsewhere (someone else's guesses) and the address's failures
    # for other names still count.
    session.execute(delete(LoginAttempt).where(_by_name(user_name), _by_address(address)))


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
        clear_login_failures(session, user_name, address)
    return LoginResult(user)
