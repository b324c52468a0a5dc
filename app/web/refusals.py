"""Why a report POST is refused: one check for the notify view and the notify lane.

DESIGN.md "Receiving delivery reports": the token (401), the source allowlist
(403), the size (413) and the content type (415), in that order. No Flask here:
the lane runs before Flask, and hands whatever this refuses to the view.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.config import Settings
from app.reports.parse import media_type

REPORT_TYPES = ("application/json", "application/xml", "text/xml")
UNSUPPORTED_MEDIA_TYPE = 415
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Refusal:
    """A refused report POST: the HTTP status, the error code and the message."""

    status: int
    code: str
    message: str

    @property
    def keeps_body(self) -> bool:
        """Say whether the body is stored all the same (it passed authentication: 415)."""
        return self.status == UNSUPPORTED_MEDIA_TYPE


def token_matches(tokens: Sequence[str], presented: str) -> bool:
    """Compare against every configured token in constant time (rotation)."""
    matched = False
    for candidate in tokens:
        matched |= hmac.compare_digest(candidate.encode(), presented.encode())
    return matched


def source_allowed(
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], peer: str | None
) -> bool:
    """Say whether the peer address is in the allowlist (an empty list allows any)."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def content_length(header: str | None) -> int | None:
    """Read a Content-Length header: its number, or None when it is missing or not digits."""
    value = (header or "").strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def refuse_token(settings: Settings, token: str) -> Refusal | None:
    """Refuse a notify URL whose token is none of IVR_NOTIFY_TOKENS (401), else None."""
    if token_matches(settings.notify_tokens, token):
        return None
    return Refusal(401, "unauthorized", "unknown notify token")


def too_large(limit: int) -> Refusal:
    """The refusal of a body longer than IVR_MAX_REPORT_BYTES."""
    return Refusal(413, "payload_too_large", f"reports are limited to {limit} bytes")


def _source_refusal(peer: str | None) -> Refusal:
    try:
        ipaddress.ip_address(peer or "")
    except ValueError:
        return Refusal(403, "forbidden", "the report source address is unknown")
    return Refusal(403, "forbidden", "reports are not accepted from this address")


def refuse_report(
    settings: Settings,
    *,
    token: str,
    peer: str | None,
    content_type: str,
    length: int | None,
) -> Refusal | None:
    """Say why a report POST is refused (token, source, size, type, in that order), or None."""
    refusal = refuse_token(settings, token)
    if refusal is not None:
        return refusal
    if not source_allowed(settings.notify_allow_cidrs, peer):
        return _source_refusal(peer)
    if length is not None and length > settings.max_report_bytes:
        return too_large(settings.max_report_bytes)
    if media_type(content_type)[0] not in REPORT_TYPES:
        return Refusal(
            UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send reports as JSON or XML"
        )
    return None
