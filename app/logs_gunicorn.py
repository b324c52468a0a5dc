"""gunicorn's logger for ivrdesk: both logs on stdout, secrets masked, JSON like the app's.

deploy/gunicorn.conf.py names it as `logger_class`. The access log masks the
notify token (`/notify/ivr/***`) and every other secret in the atoms its format
prints; the error log goes through the same filters as the app's own lines.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from app.logs import install_filters, make_formatter, redact

# Atoms that gunicorn fills with numbers or times: nothing to mask, and their digits must stay.
NUMERIC_ATOMS = frozenset({"t", "s", "b", "B", "T", "D", "M", "L", "p"})
_ATOM = re.compile(r"%\(([^)]+)\)")


def atom_key(name: str) -> str:
    """Return the key gunicorn stores an atom under (header and environ atoms are lowercase)."""
    return name.lower() if name.startswith("{") else name


class _AccessFields(logging.Filter):
    """Copy the request id, method, path, status and duration of an access line into fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields from the (already masked) atoms; never drop the record."""
        atoms = record.args if isinstance(record.args, dict) else {}
        record.request_id = atoms.get("{x-request-id}o") or "-"
        record.method = atoms.get("m")
        record.path = atoms.get("U")
        record.status = atoms.get("s")
        record.duration_ms = atoms.get("M")
        return True


class Logger(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's Logger with masked access atoms and ivrdesk's formatter and filters."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up, then move them to stdout and format them like the app."""
        super().setup(cfg)
        keys = {atom_key(name) for name in _ATOM.findall(cfg.access_log_format)}
        self.masked_atoms = (keys | {"U", "q", "r"}) - NUMERIC_ATOMS
        log_format = os.environ.get("IVR_LOG_FORMAT", "json").strip() or "json"
        for handler in self.error_log.handlers:
            if cfg.errorlog == "-" and isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stdout)
            handler.setFormatter(make_formatter(log_format))
            install_filters(handler)
        for handler in self.access_log.handlers:
            if not any(isinstance(f, _AccessFields) for f in handler.filters):
                handler.addFilter(_AccessFields())
            if log_format == "json":
                handler.setFormatter(make_formatter(log_format))

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Return gunicorn's atoms with every printed text atom redacted."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in getattr(self, "masked_atoms", ()):
            value = atoms.get(key)
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
