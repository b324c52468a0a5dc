"""The HTML admin pages under /admin/: campaigns, calls, search, parked reports; read-only.

Every page needs a logged-in user (viewer or operator: both only look). Login
and logout are forms with a CSRF token; logins are rate-limited (app/accounts/throttle.py).
Views parse, make one domain call, commit when they wrote, and render.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.accounts.throttle import attempt_login
from app.accounts.tokens import end_user_sessions
from app.db import utcnow
from app.launch.campaigns import NotFound
from app.lookups.lists import (
    checked_call_filter,
    find_calls,
    find_campaigns,
    find_unmatched,
    get_campaign_calls,
    read_call_filter,
)
from app.lookups.paging import InvalidQuery, page_args, read_limit
from app.lookups.resources import get_call_detail, get_campaign_detail
from app.lookups.search import MAX_SEARCH_TEXT, search_calls
from app.web.admin.format import FILTERS, OUTCOMES, STATUS_GROUPS
from app.web.admin.forms import MAX_FORM_BODY, URL_PREFIX, AdminFormRequest
from app.web.admin.session import (
    client_address,
    configure_sessions,
    current_user,
    end_session,
    safe_next,
    start_session,
)
from app.web.api import csv_export_response
from app.web.session import db_session

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix=URL_PREFIX)
PUBLIC_ENDPOINTS = frozenset({"admin.login"})
# scrypt over a longer text costs time for nothing: no password of ours is this long.
MAX_PASSWORD = 1024


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    """Send a visitor without a session to the login page, then back where they were going."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = current_user()
    if user is None:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin.login", next=target))
    g.admin_user = user
    return None


@bp.after_request
def forbid_caching(response: Response) -> Response:
    """Keep the pages (call data) out of shared and browser caches, also after logout."""
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def page_helpers() -> dict[str, Any]:
    """Give the templates the lists behind the filter form and the page-link builder."""
    return {"outcomes": OUTCOMES, "status_groups": STATUS_GROUPS, "page_url": page_url}


def page_url(cursor: str | None) -> str:
    """Return this page's URL with the same query and another cursor (None: the first page)."""
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor" and v}
    if cursor is not None:
        args["cursor"] = cursor
    return url_for(str(request.endpoint), **(request.view_args or {}), **args)


def _login_page(target: str, message: str, status: int) -> tuple[str, int]:
    """Render the login form again with what went wrong."""
    return render_template("login.html", next=target, message=message), status


def _too_many_failures(target: str, retry_after: timedelta) -> ResponseReturnValue:
    """Answer 429 with the login form, saying when to try again."""
    wait = math.ceil(retry_after.total_seconds())
    minutes = math.ceil(wait / 60)
    message = (
        "Too many failed logins from your address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    body, status = _login_page(target, message, 429)
    return body, status, {"Retry-After": str(wait)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the login form; on POST check the rate limit, then the name and password."""
    target = safe_next(request.values.get("next"), url_for("admin.campaigns"))
    if request.method == "GET":
        return render_template("login.html", next=target, message=None)
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    if not name or not password or len(password) > MAX_PASSWORD:
        return _login_page(target, "Enter your user name and password.", 400)
    session, address = db_session(), client_address()
    result = attempt_login(session, name, password, address, now=utcnow())
    session.commit()
    if result.retry_after is not None:
        log.warning("admin login from %s refused: too many failed logins", address)
        return _too_many_failures(target, result.retry_after)
    if result.user is None:
        log.warning("admin login from %s failed: wrong user name or password", address)
        return _login_page(target, "Wrong user name or password.", 401)
    start_session(result.user)
    log.info("admin user %s logged in from %s", result.user.name, address)
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End every session of the user (on every host) and go back to the login form."""
    session = db_session()
    end_user_sessions(session, g.admin_user.id)
    session.commit()
    end_session()
    flash("You are logged out.")
    return redirect(url_for("admin.login"), 303)


@bp.get("/")
def campaigns() -> str:
    """List campaigns, newest first, with their progress and outcomes."""
    args = request.args
    page = find_campaigns(
        db_session(),
        **page_args(args),
    )
    return render_template("campaigns.html", page=page, first=not args.get("cursor"))


@bp.get("/campaigns/<bulk_id>")
def campaign(bulk_id: str) -> str:
    """Show a campaign's outcomes and its calls, filtered by outcome or status."""
    session, args = db_session(), request.args
    detail = get_campaign_detail(session, bulk_id)
    calls = get_campaign_calls(
        session,
        bulk_id,
        read_call_filter(args),
        **page_args(args),
    )
    return render_template("campaign.html", campaign=detail, calls=calls, args=args)


@bp.get("/campaigns/<bulk_id>/calls.csv")
def export_campaign_calls(bulk_id: str) -> Response:
    """Stream a campaign's calls as spreadsheet-safe CSV (the API's exporter)."""
    return csv_export_response(bulk_id)


@bp.get("/calls/<message_id>")
def call(message_id: str) -> str:
    """Show a call, its IVR input, cost and the timeline of every event."""
    return render_template("call.html", call=get_call_detail(db_session(), message_id))


@bp.get("/calls")
def calls() -> str:
    """List calls by number, callbackData, outcome or status, newest first."""
    session, args = db_session(), request.args
    filters, paging = read_call_filter(args), page_args(args)
    page = find_calls(session, checked_call_filter(session, filters), **paging)
    return render_template("calls.html", page=page, args=args)


@bp.post("/search")
def search() -> ResponseReturnValue:
    """Go to the call (messageId) or campaign (bulkId) named, or list calls by number or data.

    The form is posted, so what was typed (a phone number, often) stays out of
    URLs, and so out of access logs, browser history and Referer headers.
    """
    text = request.form.get("q", "").strip()
    if len(text) > MAX_SEARCH_TEXT:
        message = f"Type at most {MAX_SEARCH_TEXT} characters: a number, an id or a callbackData."
        return _error_page(400, "The search text is too long", message)
    found = search_calls(db_session(), text, limit=read_limit(None))
    if found.message_id is not None:
        return redirect(url_for("admin.call", message_id=found.message_id), 303)
    if found.bulk_id is not None:
        return redirect(url_for("admin.campaign", bulk_id=found.bulk_id), 303)
    return render_template("search.html", q=text, found=found)


@bp.get("/reports/unmatched")
def unmatched() -> str:
    """List parked report results: reports whose messageId no call has (yet)."""
    args = request.args
    page = find_unmatched(
        db_session(),
        **page_args(args),
    )
    return render_template("unmatched.html", page=page, first=not args.get("cursor"))


@bp.get("/<path:unknown>")
def unknown_page(unknown: str) -> ResponseReturnValue:
    """Answer 404 with the admin layout for any other path under /admin/."""
    abort(404)


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """Render the error page."""
    return render_template("error.html", title=title, message=message), status


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[str, int]:
    """Say which campaign or call does not exist."""
    message = str(exc)
    return _error_page(404, "Not found", f"{message[:1].upper()}{message[1:]}.")


@bp.errorhandler(404)
def _no_page(exc: HTTPException) -> tuple[str, int]:
    """Say the page does not exist."""
    return _error_page(404, "Not found", "There is no such page.")


@bp.errorhandler(413)
def _too_large(exc: HTTPException) -> tuple[str, int]:
    """Refuse a form larger than any admin form, without showing what was sent."""
    limit = MAX_FORM_BODY // 1024
    message = f"ivrdesk's forms take at most {limit} KB, with a Content-Length; nothing was done."
    return _error_page(413, "The form is too large", message)


@bp.errorhandler(InvalidQuery)
def _invalid_query(exc: InvalidQuery) -> tuple[str, int]:
    """Say which filter or page link is not valid."""
    return _error_page(400, "Not a valid filter", f"The {exc.path} {exc.message}.")


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    """Refuse a form that was not sent from one of our pages (or from an expired session)."""
    log.warning("admin form refused: %s", exc.description)
    return _error_page(
        400,
        "The form could not be accepted",
        "It was not sent from an open ivrdesk page, or your session ended. "
        "Go back, reload the page and try again.",
    )


def init_app(app: Flask, csrf_exempt: Iterable[Blueprint]) -> None:
    """Configure sessions and CSRF protection, add the filters and register the pages."""
    app.request_class = AdminFormRequest
    configure_sessions(app, csrf_exempt)
    app.jinja_env.filters.update(FILTERS)
    app.register_blueprint(bp)
