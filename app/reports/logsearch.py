"""Find calls in Infobip's voice logs with as few requests as its limits allow; no database.

GET /tts/3/logs (INFOBIP.md §6) has no cursor: at most 1000 entries a request, the
last 48 hours, 120 requests a minute (paced by InfobipClient.logs). A bulk with many
calls to find is swept by time windows, one per run of its batches holding at most
1000 calls, cut at the moments ivrdesk sent them; whatever a sweep did not find is
then asked for by messageId, a hundred at a time. Absence is only concluded from
those messageId requests, which a window's limit cannot cut short.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.infobip.client import InfobipClient, LogEntry
from app.infobip.limits import LOGS_MAX_LIMIT, LOGS_WINDOW_HOURS

IDS_PER_REQUEST = 100  # messageIds named in one request: its URL stays short
SWEEP_FROM = 2 * IDS_PER_REQUEST  # fewer calls of a bulk to find: ask by messageId only
CLOCK_SKEW = timedelta(minutes=2)  # Infobip's sentAt may be a little before our clock's
WINDOW = timedelta(hours=LOGS_WINDOW_HOURS)


@dataclass(frozen=True)
class Sending:
    """A batch as ivrdesk sent it: when it was claimed, and how many calls it carried."""

    at: datetime
    size: int


@dataclass
class Search:
    """What a search found, and how many requests it took."""

    entries: dict[str, LogEntry] = field(default_factory=dict)
    requests: int = 0


def find_in_logs(
    client: InfobipClient,
    bulk_id: str,
    message_ids: Sequence[str],
    sendings: Sequence[Sending],
    *,
    now: datetime,
    search: Search,
) -> None:
    """Add to `search` the log entries of these calls of one bulk that Infobip has.

    sendings: the bulk's batches as sent (they place the sweep's windows). A
    ProviderError ends the search and is raised for the caller.
    """
    wanted = set(message_ids)
    if len(wanted) >= SWEEP_FROM and sendings:
        for since, until in sweep_windows(sendings, now=now):
            _keep(search, wanted, _read(client, search, bulk_id=bulk_id, since=since, until=until))
    missing = [message_id for message_id in message_ids if message_id not in search.entries]
    for start in range(0, len(missing), IDS_PER_REQUEST):
        chunk = missing[start : start + IDS_PER_REQUEST]
        _keep(search, wanted, _read(client, search, bulk_id=bulk_id, message_ids=chunk))


def sweep_windows(sendings: Sequence[Sending], *, now: datetime) -> list[tuple[datetime, datetime]]:
    """Cut the time since the first batch into windows of at most LOGS_MAX_LIMIT calls sent.

    A window runs from its first batch's claim to the next window's start; the first
    starts the clock skew earlier, the last runs to now. Nothing older than Infobip's
    48 hours. A call Infobip dated across a cut lands in the next window or the one
    before, whose answer may then be cut short: the lookup by messageId finds it.
    """
    ordered = sorted(sendings, key=lambda sending: sending.at)
    starts: list[datetime] = []
    held = 0
    for sending in ordered:
        if not starts or held + sending.size > LOGS_MAX_LIMIT:
            starts.append(sending.at if starts else sending.at - CLOCK_SKEW)
            held = 0
        held += sending.size
    oldest = now - WINDOW + timedelta(minutes=1)
    bounds = [max(start, oldest) for start in starts] + [now]
    return [(since, until) for since, until in itertools.pairwise(bounds) if since < until]


def _read(
    client: InfobipClient,
    search: Search,
    *,
    bulk_id: str,
    message_ids: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LogEntry]:
    """Make one logs request, counted."""
    search.requests += 1
    return client.logs(bulk_id=bulk_id, message_ids=message_ids, sent_since=since, sent_until=until)


def _keep(search: Search, wanted: set[str], entries: Iterable[LogEntry]) -> None:
    """Keep the entries of wanted calls; an entry of a call ivrdesk does not want is ignored."""
    for entry in entries:
        if entry.message_id in wanted:
            search.entries[entry.message_id] = entry
