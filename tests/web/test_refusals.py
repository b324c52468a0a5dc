"""The notify endpoint's refusals, checked once for the view and the lane: token, source,
size, content type, in that order (DESIGN.md "Receiving delivery reports")."""

from __future__ import annotations

import ipaddress

import pytest

from app.config import Settings
from app.web.refusals import content_length, refuse_report

TOKEN = "notify-token-0123456789abcdef"
OLD = "notify-token-old-0123456789"
LIMIT = 1000
SETTINGS = Settings(
    notify_tokens=(TOKEN, OLD),
    notify_allow_cidrs=(ipaddress.ip_network("10.0.0.0/8"),),
    max_report_bytes=LIMIT,
)
JSON = "application/json; charset=utf-8"


INSIDE, OUTSIDE = "10.1.2.3", "192.0.2.1"
BIG = LIMIT + 1


@pytest.mark.parametrize(
    ("token", "peer", "content_type", "length", "refused"),
    [
        (TOKEN, INSIDE, JSON, 10, None),
        (OLD, INSIDE, "text/xml", LIMIT, None),  # a rotated token, the size limit itself
        (TOKEN, INSIDE, "application/xml", None, None),  # chunked: the view reads to the limit
        ("wrong", OUTSIDE, "text/plain", BIG, (401, "unknown notify token")),
        (TOKEN, OUTSIDE, "text/plain", BIG, (403, "reports are not accepted from this address")),
        (TOKEN, None, JSON, 10, (403, "the report source address is unknown")),
        (TOKEN, INSIDE, "text/plain", BIG, (413, f"reports are limited to {LIMIT} bytes")),
        (TOKEN, INSIDE, "text/plain", 10, (415, "send reports as JSON or XML")),
        (TOKEN, INSIDE, "", 10, (415, "send reports as JSON or XML")),
    ],
)
def test_refuse_report_checks_in_the_designed_order(
    token: str,
    peer: str | None,
    content_type: str,
    length: int | None,
    refused: tuple[int, str] | None,
) -> None:
    refusal = refuse_report(
        SETTINGS, token=token, peer=peer, content_type=content_type, length=length
    )
    assert (None if refusal is None else (refusal.status, refusal.message)) == refused
    if refusal is not None:
        assert refusal.keeps_body == (refusal.status == 415)  # it passed authentication


def test_refuse_report_allows_any_source_without_an_allowlist() -> None:
    open_settings = Settings(notify_tokens=(TOKEN,))
    refusal = refuse_report(open_settings, token=TOKEN, peer=None, content_type=JSON, length=1)
    assert refusal is None


@pytest.mark.parametrize(
    ("header", "length"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("0", 0),
        (None, None),
        ("", None),
        ("-1", None),
        ("+5", None),
        ("1_000", None),
        ("12abc", None),
        ("\u0661", None),  # an Arabic-Indic one: a digit to Python, not to HTTP
    ],
)
def test_content_length_reads_only_plain_digits(header: str | None, length: int | None) -> None:
    assert content_length(header) == length
