"""Text that neither database (nor Infobip) can take: NUL characters and lone surrogates.

PostgreSQL refuses a NUL in any text (SQLite would store it); a lone UTF-16 surrogate
is valid JSON but not Unicode, so no UTF-8 encoder takes it. Callers word the refusal.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_nul(text: str) -> bool:
    """Say whether the text holds a NUL character."""
    return "\x00" in text


def has_surrogate(text: str) -> bool:
    """Say whether the text holds an unpaired UTF-16 surrogate."""
    return _SURROGATE.search(text) is not None


def has_unstorable_character(text: str) -> bool:
    """Say whether the text holds a NUL or an unpaired surrogate (one scan for both)."""
    return _UNSTORABLE.search(text) is not None
