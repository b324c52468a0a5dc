"""Keyset pagination for the lookup lists: limits, opaque cursors, pages.

DESIGN.md "Looking up": lists take `limit` (default 50, at most 500) and
`cursor`, the opaque `next` of the previous page. A cursor is the URL-safe
base64 of the list's name and the sort key of the last item shown; the next
page starts strictly after that key, so no OFFSET is ever scanned.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,512}")
# Ids are BIGINT on PostgreSQL and INTEGER on SQLite: both are signed 64-bit.
_INT64 = range(-(2**63), 2**63)

Key = tuple[Any, ...]


class InvalidQuery(ValueError):
    """A lookup's query parameter cannot be used; says which one and why."""

    def __init__(self, path: str, message: str) -> None:
        """Name the parameter and the problem."""
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Page:
    """One page of a list and the cursor of the next one (None on the last page)."""

    items: list[dict[str, Any]]
    next: str | None

    def as_json(self) -> dict[str, Any]:
        """Serialize as {"items", "next"}."""
        return {"items": self.items, "next": self.next}


def read_limit(raw: str | None) -> int:
    """Return the page size asked for (default 50); raise InvalidQuery unless 1..500."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidQuery("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def page_args(args: Mapping[str, str]) -> dict[str, Any]:
    """Read `limit` and `cursor` from query arguments, as the list functions take them."""
    return {"limit": read_limit(args.get("limit")), "cursor": args.get("cursor")}


def _plain(value: Any) -> Any:
    """Make a sort key part JSON-ready."""
    return value.isoformat() if isinstance(value, datetime) else value


def encode_cursor(kind: str, key: Key) -> str:
    """Make the opaque cursor that continues a list after this sort key."""
    payload = json.dumps([kind, *[_plain(part) for part in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _typed(value: Any, kind: type) -> Any:
    """Check one decoded sort key part against its expected type and the database's range."""
    if kind is int and isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    if kind is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)  # OverflowError past year 1 or 9999 in UTC
    raise ValueError("not the list's sort key")


def decode_cursor(raw: str | None, kind: str, shape: Sequence[type]) -> Key | None:
    """Read a cursor made by encode_cursor for this list; raise InvalidQuery if it is not one."""
    if raw is None or raw == "":
        return None
    try:
        if not _CURSOR_TEXT.fullmatch(raw):
            raise ValueError("not URL-safe base64")
        padded = raw + "=" * (-len(raw) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded).decode())
        if not isinstance(decoded, list) or len(decoded) != len(shape) + 1:
            raise ValueError("not a cursor")
        if decoded[0] != kind:
            raise ValueError("a cursor of another list")
        return tuple(_typed(part, type_) for part, type_ in zip(decoded[1:], shape, strict=True))
    except (ValueError, OverflowError, RecursionError, binascii.Error) as exc:
        raise InvalidQuery(
            "cursor", "is not a cursor of this list: use the `next` of the previous page"
        ) from exc


def make_page(items: list[Any], limit: int, kind: str, key: Any) -> tuple[list[Any], str | None]:
    """Cut a fetch of limit + 1 rows to the page and make the next cursor (or None)."""
    if len(items) <= limit:
        return items, None
    shown = items[:limit]
    return shown, encode_cursor(kind, key(shown[-1]))
