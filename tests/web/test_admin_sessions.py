"""Admin sessions end server-side: logout, a password change and disabling, on every host."""

from __future__ import annotations

from typing import Any

import httpx
from flask import Flask
from sqlalchemy import select

from app.models import User
from tests.conftest import LiveServer, db, serve
from tests.web.test_admin import PASSWORD, csrf_token, log_in, make_user

COOKIE = "ivrdesk_session"


def logged_in(live: LiveServer, name: str = "ana", password: str = PASSWORD) -> httpx.Client:
    """Return a client of a browser that logged in."""
    client = httpx.Client(base_url=live.url, timeout=30)
    assert log_in(client, name, password).status_code == 303
    return client


def sent_to_login(live: LiveServer, cookie: str) -> bool:
    """Tell whether a browser with this cookie is sent to the login page."""
    with httpx.Client(base_url=live.url, cookies={COOKIE: cookie}, timeout=30) as client:
        page = client.get("/admin/")
    if page.status_code == 200:
        return False
    assert page.status_code == 302, page.text
    assert page.headers["Location"].startswith("/admin/login?next=")
    return True


def test_admin_old_cookie_after_logout_gets_the_login_page_on_every_host(
    app: Flask, settings: Any, make_app: Any, live: LiveServer
) -> None:
    make_user(app)
    other = serve(make_app(settings))  # another worker or host on the same database
    try:
        browser, laptop = logged_in(live), logged_in(other)
        kept = browser.cookies[COOKIE]
        assert not sent_to_login(other, kept)  # the cookie is good on every host
        page = browser.get("/admin/")
        logout = browser.post("/admin/logout", data={"csrf_token": csrf_token(page)})
        assert logout.status_code == 303
        assert sent_to_login(live, kept)
        assert sent_to_login(other, kept)
        assert laptop.get("/admin/").status_code == 302  # every session of the user ended
        browser.close()
        laptop.close()
        again = logged_in(live)
        assert again.get("/admin/").status_code == 200
        again.close()
    finally:
        other.stop()


def test_admin_logout_ends_only_that_users_sessions(app: Flask, live: LiveServer) -> None:
    make_user(app)
    make_user(app, "ben")
    ana, ben = logged_in(live), logged_in(live, "ben")
    ana.post("/admin/logout", data={"csrf_token": csrf_token(ana.get("/admin/"))})
    assert ana.get("/admin/").status_code == 302
    assert ben.get("/admin/").status_code == 200
    ana.close()
    ben.close()


def test_admin_password_change_ends_every_session(app: Flask, live: LiveServer) -> None:
    make_user(app)
    browser, phone = logged_in(live), logged_in(live)
    kept = browser.cookies[COOKIE]
    new_password = "a new password, longer"
    result = app.test_cli_runner().invoke(args=["users", "password", "ana"], input=new_password)
    assert result.exit_code == 0, result.output
    assert "changed the password of 'ana'" in result.output
    assert sent_to_login(live, kept)
    assert phone.get("/admin/").status_code == 302
    with httpx.Client(base_url=live.url) as client:
        assert log_in(client).status_code == 401  # the old password
    logged_in(live, password=new_password).close()
    browser.close()
    phone.close()


def test_admin_disabling_ends_every_session_for_good(app: Flask, live: LiveServer) -> None:
    make_user(app)
    browser = logged_in(live)
    kept = browser.cookies[COOKIE]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "disable", "ana"])
    assert result.exit_code == 0, result.output
    assert sent_to_login(live, kept)
    listed = runner.invoke(args=["users", "list"]).output.splitlines()
    assert listed[0].split() == ["name", "role", "created", "disabled"]
    assert listed[2].split()[:2] == ["ana", "viewer"]
    assert listed[2].split()[-1] == "yes"
    with httpx.Client(base_url=live.url) as client:
        assert log_in(client).status_code == 401
    # Enabling the user again does not bring the old cookie back.
    with db(app) as session:
        session.scalars(select(User)).one().disabled = False
        session.commit()
    assert sent_to_login(live, kept)
    logged_in(live).close()
    browser.close()


def test_users_password_and_disable_refuse_bad_input(app: Flask) -> None:
    make_user(app)
    runner = app.test_cli_runner()
    unknown = runner.invoke(args=["users", "disable", "nobody"])
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "Error: there is no user 'nobody'"
    short = runner.invoke(args=["users", "password", "ana"], input="short\n")
    assert short.exit_code == 1
    assert "at least 10 characters" in short.output
    nobody = runner.invoke(args=["users", "password", "nobody"], input="x" * 12)
    assert nobody.exit_code == 1
    with db(app) as session:
        user = session.scalars(select(User)).one()
        assert not user.disabled
        assert user.session_version == 0
