"""The admin login rate limit over real HTTP, from several client addresses (127.0.0.x)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from app.db import utcnow
from app.models import LoginAttempt
from tests.conftest import LiveServer, db, serve
from tests.web.test_admin import log_in, make_user

WRONG = "wrong password!"


@pytest.fixture
def from_address(live: LiveServer) -> Iterator[Any]:
    """Open clients whose connections come from a given loopback address (127.0.0.0/8)."""
    clients: list[httpx.Client] = []

    def client(address: str, server: LiveServer = live) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        opened = httpx.Client(base_url=server.url, transport=transport, timeout=30)
        clients.append(opened)
        return opened

    yield client
    for opened in clients:
        opened.close()


def age_failures(app: Flask, by: timedelta) -> None:
    """Move every counted failure back in time."""
    with db(app) as session:
        for attempt in session.scalars(select(LoginAttempt)):
            attempt.attempted_at -= by
        session.commit()


def test_admin_login_limit_per_name_and_address_across_processes(
    app: Flask, settings: Any, make_app: Any, from_address: Any
) -> None:
    make_user(app)
    typo = from_address("127.0.0.1")
    for _ in range(5):
        assert log_in(typo, password=WRONG).status_code == 401
    # Another app on the same database (another worker or host) counts the same failures.
    other = serve(make_app(settings))
    try:
        blocked = log_in(from_address("127.0.0.1", other))  # even the right password
    finally:
        other.stop()
    assert blocked.status_code == 429
    assert "Too many failed logins from your address" in blocked.text
    assert 1 <= int(blocked.headers["Retry-After"]) <= 300
    make_user(app, "ben")
    assert log_in(typo, name="ben").status_code == 303  # the address is not blocked
    assert log_in(from_address("127.0.0.2")).status_code == 303  # nor the name elsewhere
    # Once the window has passed, the name may try again from the first address.
    age_failures(app, timedelta(minutes=5))
    assert log_in(typo).status_code == 303


def test_admin_login_limit_per_address(app: Flask, from_address: Any) -> None:
    make_user(app)
    guesser = from_address("127.0.0.3")
    for number in range(20):
        # A forged X-Forwarded-For changes nothing: IVR_PROXY_HOPS is 0.
        guesser.headers["X-Forwarded-For"] = f"198.51.100.{number}"
        assert log_in(guesser, name=f"guess-{number}").status_code == 401
    assert log_in(guesser).status_code == 429
    assert log_in(from_address("127.0.0.1")).status_code == 303
    with db(app) as session:
        addresses = set(session.scalars(select(LoginAttempt.address)))
    assert addresses == {"127.0.0.3"}


def test_admin_someone_elses_failures_never_refuse_the_right_password(
    app: Flask, from_address: Any
) -> None:
    make_user(app)
    attackers = [from_address(f"127.0.0.{host}") for host in range(2, 7)]
    for attacker in attackers:
        for _ in range(5):
            # Refused outright once the name has 10 failures: the attacker waits a minute.
            assert log_in(attacker, password=WRONG).status_code in (401, 429)
        assert log_in(attacker).status_code == 429  # the attacker slows down only itself
    with db(app) as session:
        counted = len(session.scalars(select(LoginAttempt)).all())
    assert counted >= 10
    owner = from_address("127.0.0.1")
    assert log_in(owner).status_code == 303
    # Logging in forgets the owner's own failures only: the attackers stay counted.
    assert all(log_in(attacker).status_code == 429 for attacker in attackers)
    with db(app) as session:
        assert len(session.scalars(select(LoginAttempt)).all()) == counted


def test_admin_name_under_attack_delays_an_address_that_failed_on_it(
    app: Flask, from_address: Any
) -> None:
    make_user(app)
    for host in (2, 3):
        attacker = from_address(f"127.0.0.{host}")
        for _ in range(5):
            log_in(attacker, password=WRONG)
    owner = from_address("127.0.0.1")
    assert log_in(owner, password="a typo, once").status_code == 401
    waiting = log_in(owner)
    assert waiting.status_code == 429
    assert 1 <= int(waiting.headers["Retry-After"]) <= 60
    assert log_in(from_address("127.0.0.4")).status_code == 303  # an address that never failed
    age_failures(app, timedelta(seconds=61))
    assert log_in(owner).status_code == 303


def test_admin_login_limit_keeps_only_the_window(app: Flask, from_address: Any) -> None:
    make_user(app)
    client = from_address("127.0.0.1")
    assert log_in(client, password=WRONG).status_code == 401
    age_failures(app, timedelta(minutes=6))
    assert log_in(client, password=WRONG).status_code == 401
    with db(app) as session:
        kept = session.scalars(select(LoginAttempt.attempted_at)).all()
    assert len(kept) == 1
    assert kept[0] > utcnow() - timedelta(minutes=1)
