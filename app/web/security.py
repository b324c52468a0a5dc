"""Security headers: nosniff on every answer; no-store on data; CSP and framing rules on pages."""

from __future__ import annotations

from flask import Flask, Response, request

from app.web.errors import API_PREFIXES

# Pages load scripts, styles and images from ivrdesk itself only, and are never framed.
HTML_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Add the headers a view has not set itself."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.is_json or request.path.startswith(API_PREFIXES):
        # Calls, numbers and tokens' answers stay out of browser and shared caches.
        response.headers.setdefault("Cache-Control", "no-store")
    if response.mimetype == "text/html":
        for name, value in HTML_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Add the security headers to every response of the app."""
    app.after_request(add_security_headers)
