"""The admin search box: one text that may be a messageId, a bulkId, a number or callbackData.

An exact messageId (or bulkId) names one call (or campaign); anything else is
looked up as a phone number, normalised as at launch (app/numbers.py), and as
callbackData. Never commits; no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.infobip.numbers import normalise_number
from app.lookups.lists import CallFilter, find_calls
from app.lookups.paging import Page
from app.models import Call, Campaign

MAX_SEARCH_TEXT = 200  # the search box's maxlength


@dataclass(frozen=True)
class SearchResult:
    """What a search text found: one call or campaign to go to, or lists of calls."""

    message_id: str | None = None
    bulk_id: str | None = None
    number: str | None = None
    by_number: Page | None = None
    by_callback_data: Page | None = None

    @property
    def count(self) -> int:
        """Return how many calls the lists show."""
        pages = (self.by_number, self.by_callback_data)
        return sum(len(page.items) for page in pages if page is not None)


def search_calls(session: Session, text: str, *, limit: int) -> SearchResult:
    """Find what a search text names: a messageId, a bulkId, or calls by number and callbackData."""
    text = text.strip()
    if not text or len(text) > MAX_SEARCH_TEXT:
        return SearchResult()
    if session.scalar(select(Call.id).where(Call.message_id == text)) is not None:
        return SearchResult(message_id=text)
    if session.scalar(select(Campaign.id).where(Campaign.bulk_id == text)) is not None:
        return SearchResult(bulk_id=text)
    number = by_number = None
    try:
        number = normalise_number(text)
    except ValueError:
        pass
    else:
        by_number = find_calls(session, CallFilter(to=number), limit=limit)
    by_callback_data = find_calls(session, CallFilter(callback_data=text), limit=limit)
    return SearchResult(number=number, by_number=by_number, by_callback_data=by_callback_data)
