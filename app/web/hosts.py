"""The Host check: with IVR_ALLOWED_HOSTS set, a request for any other host name gets a 400."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wsgi import get_host

from app.web.errors import error_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Probes and scrapers ask by address (127.0.0.1:8000); these answers never use the Host.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The refusal never echoes the Host it refuses.
REFUSAL = json.dumps(
    error_body("bad_request", "this host name is not served here (IVR_ALLOWED_HOSTS)")
).encode()


class HostCheck:
    """Refuse, in the common error shape, a request whose Host is not an allowed one."""

    def __init__(self, wsgi_app: WSGIApplication, allowed: tuple[str, ...]) -> None:
        """Wrap `wsgi_app`; `allowed` are host names (".example.org": it and its subdomains)."""
        self.wsgi_app = wsgi_app
        self.allowed = allowed

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Pass an allowed host (and the probes) on; answer anything else 400."""
        if environ.get("PATH_INFO") in PROBE_PATHS or host_is_trusted(
            get_host(environ).lower(), self.allowed
        ):
            return self.wsgi_app(environ, start_response)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(REFUSAL))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        start_response("400 BAD REQUEST", headers)
        return [REFUSAL]
