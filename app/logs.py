"""Logging: JSON (or text) lines with a request id, secrets and numbers masked, gunicorn's too.

STYLE.md habit 10: never log tokens, passwords, notify URLs or full phone numbers.
The filters here run on ivrdesk's own handler and on gunicorn's (its `Logger`,
named in deploy/gunicorn.conf.py), so every line that leaves the process has been
through `redact`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote_plus

from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.core import RESERVED_ATTRS as _RESERVED
from pythonjsonlogger.json import JsonFormatter

from app.config import Settings

NO_REQUEST = "-"
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}
# Loggers that print request URLs (httpx: outbound, werkzeug: the dev server's requests).
CHATTY_LOGGERS = ("httpx", "werkzeug")
# Record attributes that are not extras (request_id is ours and is a sane token already).
_NOT_EXTRA = frozenset(_RESERVED) | {"message", "asctime", "request_id"}
# Atoms that gunicorn fills with numbers or times: nothing to mask, and their digits must stay.
NUMERIC_ATOMS = frozenset({"t", "s", "b", "B", "T", "D", "M", "L", "p"})
_ATOM = re.compile(r"%\(([^)]+)\)")
# Set by app.web.middleware.RequestScope for the time of one request (each thread has its own).
_REQUEST_ID: ContextVar[str] = ContextVar("ivrdesk_request_id", default=NO_REQUEST)


def _mask_number(match: re.Match[str]) -> str:
    """Replace every digit of a matched number but the last 4 with *."""
    text = match.group(0)
    hidden = sum(c.isdigit() for c in text) - 4
    masked = []
    for char in text:
        if char.isdigit() and hidden > 0:
            masked.append("*")
            hidden -= 1
        else:
            masked.append(char)
    return "".join(masked)


# Query parameters that hold a phone number by design: the `to` filter and the search box.
NUMBER_PARAMETERS = frozenset({"to", "q"})
_QUERY_PARAMETER = re.compile(r"([?&])([^=&#\s\"'<>]+)=([^&#\s\"'<>]*)")
# Seven or more digits joined by the separators people write numbers with.
_NUMBER_SHAPE = re.compile(r"\d(?:[\s+.()/-]*\d){6}")


def _holds_number(name: str, value: str, depth: int = 2) -> bool:
    """Say whether a query parameter's (percent-decoded) value is or carries a phone number."""
    name, value = unquote_plus(name), unquote_plus(value)
    if name in NUMBER_PARAMETERS or _NUMBER_SHAPE.search(value):
        return True
    # A URL inside a parameter (the login page's `next`) may carry a `to` of its own.
    return depth > 0 and any(
        _holds_number(inner.group(2), inner.group(3), depth - 1)
        for inner in _QUERY_PARAMETER.finditer(value)
    )


def _mask_parameter(match: re.Match[str]) -> str:
    """Replace the whole value of a query parameter that holds a number, whatever its shape."""
    separator, name, value = match.groups()
    return f"{separator}{name}=***" if _holds_number(name, value) else match.group(0)


_AUTHORIZATION_VALUE = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?!bearer |basic |app )[^\"',}\s]+"
)
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # The notify token is the only secret of the notify URL (DESIGN.md "Receiving").
    (re.compile(r"(/notify/ivr/)[^/\s?#\"'<>]+"), r"\1***"),
    # Authorization credentials: ivrdesk's API tokens and Infobip's App key or Basic pair.
    # (A credential has a digit or is long: "the App started" is prose, left alone.)
    (
        re.compile(
            r"\b((?i:bearer|basic)\s+|App\s+)(?=[\w.~+/=-]*\d|[\w.~+/=-]{20})[\w.~+/=-]{6,}"
        ),
        r"\1***",
    ),
    (_AUTHORIZATION_VALUE, r"\1***"),
    (re.compile(r"\bivr_[A-Za-z0-9_-]{8,}"), "ivr_***"),
    # Passwords inside URLs (database URLs above all).
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), r"\1***@"),
    # Query parameters holding a number: the whole value, dashes, dots and %2B included.
    (_QUERY_PARAMETER, _mask_parameter),
    # Phone numbers: a run of 7-15 digits, or a +number written with spaces or dashes.
    # (Digits glued to letters or "_" are ids, not numbers: left alone.)
    (re.compile(r"(?<![\w+])(?:\+\d(?:[ -]?\d){6,14}|\+?\d{7,15})(?!\w)"), _mask_number),
)


def redact(text: str) -> str:
    """Mask notify tokens, credentials, API tokens, number parameters and numbers' digits."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Redact a record's message (with its args), traceback, stack and extra string fields."""

    _traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must not break the caller: keep its parts
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            record.exc_text = self._traceback.formatException(record.exc_info)
            record.exc_info = None  # formatters then print the redacted exc_text
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _NOT_EXTRA and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class AlembicChatter(logging.Filter):
    """Drop the two lines Alembic logs each time it looks at a database (every /readyz)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep everything but "Context impl ..." and "Will assume ... DDL"."""
        return not str(record.msg).startswith(("Context impl", "Will assume"))


def request_id() -> str:
    """Return the current request's id, or "-" outside a request."""
    return _REQUEST_ID.get()


def bind_request_id(value: str) -> None:
    """Make `value` the id of every record logged from here on in this context ("-": none)."""
    _REQUEST_ID.set(value)


def pick_request_id(presented: str | None) -> str:
    """Honour a caller's X-Request-ID when it is a sane token; otherwise make a new one."""
    if presented and _SANE_REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


def _with_request_id(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Wrap a log record factory so that every record carries the current request's id."""

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.request_id = _REQUEST_ID.get()
        return record

    make_record.ivrdesk_request_id = True  # type: ignore[attr-defined]
    return make_record


def install_record_factory() -> None:
    """Give every log record, whatever handler takes it, the request_id attribute (once)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "ivrdesk_request_id", False):
        logging.setLogRecordFactory(_with_request_id(factory))


def make_formatter(log_format: str) -> logging.Formatter:
    """Return the formatter for IVR_LOG_FORMAT: one JSON object per line, or plain text."""
    if log_format == "text":
        formatter = logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        return formatter
    return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp=True)


def install_filters(handler: logging.Handler) -> None:
    """Add the redaction filter to a handler (once); give every record its request id."""
    if not any(isinstance(f, RedactFilter) for f in handler.filters):
        handler.addFilter(RedactFilter())
    install_record_factory()


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write to whatever sys.stderr is when a record is emitted (test runners swap it).

    Standard error, so that commands printing data (tokens, JSON, CSV) keep a
    clean standard output; under systemd both streams reach the journal.
    """

    def __init__(self) -> None:
        """Start on the current standard output."""
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        """Follow sys.stderr, then write the record."""
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(settings: Settings) -> logging.Handler:
    """Install (or update) ivrdesk's one stderr handler on the root logger and return it."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(make_formatter(settings.log_format))
    install_filters(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    # In production these loggers would print every request URL; development keeps them.
    level = logging.NOTSET if settings.development else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    alembic = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, AlembicChatter) for f in alembic.filters):
        alembic.addFilter(AlembicChatter())
    return handler


def atom_key(name: str) -> str:
    """Return the key gunicorn stores an atom under (header and environ atoms are lowercase)."""
    return name.lower() if name.startswith("{") else name


class _AccessFields(logging.Filter):
    """Copy the request id, method, path, status and duration of an access line into fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields from the (already masked) atoms; never drop the record."""
        atoms = record.args if isinstance(record.args, dict) else {}
        record.request_id = atoms.get("{x-request-id}o") or NO_REQUEST
        record.method = atoms.get("m")
        record.path = atoms.get("U")
        record.status = atoms.get("s")
        record.duration_ms = atoms.get("M")
        return True


class Logger(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type information
    """gunicorn's Logger: both logs on stdout, masked access atoms, ivrdesk's formatter."""

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
                # The query string atom comes without its "?": redact it as a query.
                atoms[key] = redact(f"?{value}")[1:] if key == "q" else redact(value)
        return atoms
