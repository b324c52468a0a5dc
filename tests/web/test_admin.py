"""The admin pages over real HTTP: login, CSRF, cookies, pages, search, CSV."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from app.accounts.tokens import create_user
from app.db import utcnow
from app.models import User
from tests.conftest import LiveServer, db, serve
from tests.reports.test_reports import (
    FIRST,
    JSON_TYPE,
    SECOND,
    STRANGER,
    launch_seed,
    notify,
    post_results,
    report,
    sample,
)

PASSWORD = "correct horse battery"
BULK_ID = "spring-reminders-2026-04"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(app: Flask, name: str = "ana", role: str = "viewer") -> None:
    """Create an admin user with PASSWORD."""
    with db(app) as session:
        create_user(session, name, role, PASSWORD, now=utcnow())
        session.commit()


def seed(http: httpx.Client, live: LiveServer) -> None:
    """Launch a campaign of two calls through the API and post real reports to /notify.

    FIRST is answered by a human (with IVR input), then gets a stale PENDING report
    that is not applied (after_final); SECOND is not answered; STRANGER's result is
    parked, as no call has that messageId.
    """
    launch_seed(http)
    assert notify(live, sample("report-v2-answered.json"), JSON_TYPE).json()["applied"] == 1
    assert notify(live, sample("report-v2-batch.json"), JSON_TYPE).json()["unmatched"] == 1
    stale = report(FIRST, 1, 3, "PENDING_WAITING_DELIVERY", "2026-04-02T07:00:20.000+0000")
    assert post_results(live, stale)["items"][0]["reason"] == "after_final"


def csrf_token(page: httpx.Response) -> str:
    """Return the CSRF token of the first form of a page."""
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def log_in(client: httpx.Client, name: str = "ana", password: str = PASSWORD) -> httpx.Response:
    """Post the login form with the token of a freshly loaded login page."""
    token = csrf_token(client.get("/admin/login"))
    form = {"csrf_token": token, "name": name, "password": password}
    return client.post("/admin/login", data=form)


@pytest.fixture
def browser_like(live: LiveServer) -> Any:
    """An HTTP client that keeps cookies, as a browser does (redirects not followed)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
def admin(app: Flask, browser_like: httpx.Client) -> httpx.Client:
    """A client logged in as a viewer."""
    make_user(app)
    response = log_in(browser_like)
    assert response.status_code == 303, response.text
    return browser_like


def test_admin_pages_need_a_login(browser_like: httpx.Client) -> None:
    for path in ("/admin/", f"/admin/campaigns/{BULK_ID}/calls.csv", f"/admin/calls/{FIRST}"):
        response = browser_like.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login?next=")
    assert browser_like.get("/admin").status_code == 308  # to /admin/


def test_admin_walk_through_campaign_call_search_csv_and_parked(
    http: httpx.Client, live: LiveServer, admin: httpx.Client
) -> None:
    seed(http, live)  # the API and the webhook take no CSRF token
    campaigns = admin.get("/admin/")
    assert campaigns.status_code == 200
    assert BULK_ID in campaigns.text
    assert '<progress value="2" max="2"' in campaigns.text
    assert "2 of 2 finished (100 %)" in campaigns.text

    page = admin.get(f"/admin/campaigns/{BULK_ID}")
    assert page.status_code == 200
    assert f'href="/admin/calls/{FIRST}"' in page.text
    assert f'href="/admin/calls/{SECOND}"' in page.text
    assert "answered (human)" in page.text
    assert "no answer" in page.text
    filtered = admin.get(f"/admin/campaigns/{BULK_ID}", params={"outcome": "no_answer"})
    assert SECOND in filtered.text
    assert f"/admin/calls/{FIRST}" not in filtered.text
    by_status = admin.get(f"/admin/campaigns/{BULK_ID}", params={"status": "delivered"})
    assert f"/admin/calls/{FIRST}" in by_status.text
    assert f"/admin/calls/{SECOND}" not in by_status.text
    one = admin.get(f"/admin/campaigns/{BULK_ID}", params={"limit": "1"})
    next_link = re.search(r'href="([^"]*cursor=[^"]*)" rel="next"', one.text)
    assert next_link is not None
    second_page = admin.get(next_link.group(1).replace("&amp;", "&"))
    assert f"/admin/calls/{SECOND}" in second_page.text
    assert f"/admin/calls/{FIRST}" not in second_page.text

    detail = admin.get(f"/admin/calls/{FIRST}")
    assert detail.status_code == 200
    assert "DELIVERED_TO_HANDSET" in detail.text
    assert "Keys pressed: confirm" in detail.text  # the decoded IVR input
    assert "32 s" in detail.text
    assert "0.072 EUR" in detail.text
    assert "PENDING_WAITING_DELIVERY" in detail.text
    assert "after_final" in detail.text
    assert detail.text.count('class="not-applied"') == 1

    export = admin.get(f"/admin/campaigns/{BULK_ID}/calls.csv")
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    lines = export.text.splitlines()
    assert lines[0].startswith("message_id,to_number")
    assert len(lines) == 3

    parked = admin.get("/admin/reports/unmatched")
    assert STRANGER in parked.text
    assert "busy" in parked.text


def search(client: httpx.Client, text: str) -> httpx.Response:
    """Post the header's search form."""
    token = csrf_token(client.get("/admin/"))
    return client.post("/admin/search", data={"csrf_token": token, "q": text})


def test_admin_search_by_number_message_id_bulk_id_and_callback_data(
    http: httpx.Client, live: LiveServer, admin: httpx.Client
) -> None:
    seed(http, live)
    by_number = search(admin, "+385 98 111 2233")  # normalised as at launch
    assert by_number.status_code == 200
    assert "Calls to +385981112233" in by_number.text
    assert f"/admin/calls/{FIRST}" in by_number.text
    assert f"/admin/calls/{SECOND}" not in by_number.text
    by_id = search(admin, FIRST)
    assert by_id.status_code == 303
    assert by_id.headers["Location"] == f"/admin/calls/{FIRST}"
    assert search(admin, BULK_ID).headers["Location"] == f"/admin/campaigns/{BULK_ID}"
    by_data = search(admin, "patient-batch-17")
    assert f"/admin/calls/{FIRST}" in by_data.text
    assert f"/admin/calls/{SECOND}" in by_data.text
    nothing = search(admin, "no-such-thing")
    assert nothing.status_code == 200
    assert "No call has this number" in nothing.text


def test_admin_unknown_ids_and_filters(admin: httpx.Client) -> None:
    missing = admin.get("/admin/campaigns/nope")
    assert missing.status_code == 404
    assert "No campaign has bulkId &#39;nope&#39;" in missing.text
    assert admin.get("/admin/calls/nope").status_code == 404
    assert admin.get("/admin/nowhere").status_code == 404
    assert admin.get("/admin/campaigns/nope/calls.csv").status_code == 404
    bad = admin.get("/admin/", params={"cursor": "garbage"})
    assert bad.status_code == 400
    assert "is not a cursor of this list" in bad.text
    assert admin.get("/admin/calls", params={"outcome": "great"}).status_code == 400


def test_admin_wrong_password_is_refused(app: Flask, browser_like: httpx.Client) -> None:
    make_user(app)
    refused = log_in(browser_like, password="not the password")
    assert refused.status_code == 401
    assert "Wrong user name or password." in refused.text
    assert browser_like.get("/admin/").status_code == 302
    unknown = log_in(browser_like, name="nobody")
    assert unknown.status_code == 401


def test_admin_forms_without_csrf_token_are_refused(app: Flask, live: LiveServer) -> None:
    make_user(app)
    form = {"name": "ana", "password": PASSWORD}
    response = httpx.post(f"{live.url}/admin/login", data=form)
    assert response.status_code == 400
    assert "The form could not be accepted" in response.text
    with httpx.Client(base_url=live.url) as client:
        assert log_in(client).status_code == 303
        assert client.post("/admin/logout").status_code == 400
        assert client.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 400
        assert client.get("/admin/").status_code == 200  # still logged in


def test_admin_login_rotates_the_session_and_logout_ends_it(
    app: Flask, browser_like: httpx.Client
) -> None:
    make_user(app)
    login_page = browser_like.get("/admin/login")
    before = browser_like.cookies["ivrdesk_session"]
    old_token = csrf_token(login_page)
    form = {"csrf_token": old_token, "name": "ana", "password": PASSWORD}
    assert browser_like.post("/admin/login", data=form).status_code == 303
    assert browser_like.cookies["ivrdesk_session"] != before
    # The token of the pre-login session is gone with it.
    assert browser_like.post("/admin/logout", data={"csrf_token": old_token}).status_code == 400
    page = browser_like.get("/admin/")
    assert page.status_code == 200
    assert "ana" in page.text
    logout = browser_like.post("/admin/logout", data={"csrf_token": csrf_token(page)})
    assert logout.status_code == 303
    assert logout.headers["Location"] == "/admin/login"
    assert "You are logged out." in browser_like.get("/admin/login").text
    assert browser_like.get("/admin/").status_code == 302


def test_admin_login_goes_back_to_the_page_asked_for_but_never_off_site(
    app: Flask, browser_like: httpx.Client
) -> None:
    make_user(app)
    asked = browser_like.get("/admin/reports/unmatched")
    assert asked.headers["Location"] == "/admin/login?next=/admin/reports/unmatched"
    token = csrf_token(browser_like.get(asked.headers["Location"]))
    form = {"csrf_token": token, "name": "ana", "password": PASSWORD}
    for target, expected in [
        ("/admin/reports/unmatched", "/admin/reports/unmatched"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
    ]:
        answer = browser_like.post("/admin/login", data={**form, "next": target})
        assert answer.headers["Location"] == expected
        token = csrf_token(browser_like.get("/admin/login"))
        form["csrf_token"] = token


def test_admin_disabled_user_is_logged_out(app: Flask, admin: httpx.Client) -> None:
    assert admin.get("/admin/").status_code == 200
    with db(app) as session:
        session.scalars(select(User)).one().disabled = True
        session.commit()
    assert admin.get("/admin/").status_code == 302


def test_admin_cookie_flags(app: Flask, settings: Any, make_app: Any, live: LiveServer) -> None:
    make_user(app)
    page = httpx.get(f"{live.url}/admin/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # IVR_PUBLIC_URL is http in the tests
    secure_app = serve(make_app(settings, public_url="https://ivr.example.org"))
    try:
        secure = httpx.get(f"{secure_app.url}/admin/login").headers["Set-Cookie"]
    finally:
        secure_app.stop()
    assert "Secure" in secure
    assert "HttpOnly" in secure
    assert "SameSite=Lax" in secure


def test_admin_pages_send_security_headers(admin: httpx.Client) -> None:
    for path in ("/admin/", "/admin/login", "/admin/reports/unmatched", "/admin/calls/nope"):
        response = admin.get(path)
        assert response.headers["Content-Type"].startswith("text/html")
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert "<script" not in response.text
        assert "style=" not in response.text
        assert "<style" not in response.text
    css = admin.get("/static/admin.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
