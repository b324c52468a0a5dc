"""Text that neither database (nor Infobip) can take: NUL characters and lone surrogates.

PostgreSQL refuses a NUL in any text (SQLite would store it); a lone UTF-16 surrogate
is valid JSON but not Unicode, so no UTF-8 encoder takes it. Callers word the refusal.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The JSON escapes that decode to a NUL or to a UTF-16 surrogate (paired or not).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def has_nul(text: str) -> bool:
    """Say whether the text holds a NUL character."""
    return "\x00" in text


def has_surrogate(text: str) -> bool:
    """Say whether the text holds an unpaired UTF-16 surrogate."""
    return _SURROGATE.search(text) is not None


def has_unstorable_character(text: str) -> bool:
    """Say whether the text holds a NUL or an unpaired surrogate (one scan for both)."""
    return _UNSTORABLE.search(text) is not None


def json_may_hold_unstorable(body: bytes) -> bool:
    """Say whether UTF-8 JSON may decode to text with a NUL or a lone surrogate.

    Strict JSON has no raw control character in a string and strict UTF-8 no
    surrogate, so only the escapes \\u0000 and \\uD800-\\uDFFF can make one: a body
    without any needs no scan value by value. A surrogate pair, or an escaped
    backslash before `u0000`, also says yes; the scan then decides.
    """
    return _UNSTORABLE_ESCAPE.search(body) is not None
