"""Find calls in Infobip's voice logs with as few requests as its limits allow; no database.

GET /tts/3/logs (INFOBIP.md §6) has no cursor: at most 1000 entries a request, the
last 48 hours, 120 requests a minute (paced by InfobipClient.logs). A bulk with many
calls to find is swept by time windows, one per run of its batches holding at most
1000 calls, cut at the moments ivrdesk sent them; a window whose answer reached the
limit is split at the times Infobip gave; whatever a sweep did not find is then asked
for by messageId, a hundred at a time. Absence is only concluded from those messageId
requests, which a window's limit cannot cut short.
"""

from __future__ import annotations

import collections
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.infobip.client import InfobipClient, LogEntry
from app.infobip.limits import LOGS_MAX_LIMIT, LOGS_WINDOW_HOURS
from app.reports.fields import parse_timestamp

IDS_PER_REQUEST = 100  # messageIds named in one request: its URL stays short
SWEEP_FROM = 2 * IDS_PER_REQUEST  # fewer calls of a bulk to find: ask by messageId only
TICK = timedelta(milliseconds=1)  # the resolution of Infobip's times
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
        _sweep(client, search, wanted, bulk_id, sweep_windows(sendings, now=now))
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


def _sweep(
    client: InfobipClient,
    search: Search,
    wanted: set[str],
    bulk_id: str,
    windows: Sequence[tuple[datetime, datetime]],
) -> None:
    """Read the windows; while calls are missing, split those whose answer was cut short.

    A batch Infobip dated across a cut, or batches sent in parallel, fill a window past
    the limit. Such a window is split at the median time of what it returned (or around
    that one moment, when every entry had it), after every first window was read, and
    only while splitting costs fewer requests than asking for the missing calls by
    messageId would.
    """
    queue = collections.deque((since, until, False) for since, until in windows)
    missing = len(wanted - search.entries.keys())
    splits = 0
    while queue and missing:
        since, until, split = queue.popleft()
        if split:
            if splits >= math.ceil(missing / IDS_PER_REQUEST):
                return
            splits += 1
        entries = _read(client, search, bulk_id=bulk_id, since=since, until=until)
        missing -= _keep(search, wanted, entries)
        if len(entries) >= LOGS_MAX_LIMIT:
            queue.extend((*part, True) for part in split_window(since, until, entries))


def split_window(
    since: datetime, until: datetime, entries: Sequence[LogEntry]
) -> list[tuple[datetime, datetime]]:
    """Cut a window whose answer reached the limit in two, each without one moment it held.

    The cut is the median sentAt of the entries returned. When they all share one
    moment, the window is cut around it: what Infobip holds at that very moment is
    left to the lookup by messageId.
    """
    times = sorted(
        moment for moment in map(_sent_at, entries) if moment and since <= moment <= until
    )
    if not times:
        return []
    first, last = times[0], times[-1]
    if first == last:
        parts = [(since, first - TICK), (first + TICK, until)]
    else:
        cut = times[len(times) // 2]
        if cut == first:
            cut = next(moment for moment in times if moment > first)
        parts = [(since, cut - TICK), (cut, until)]
    return [(start, end) for start, end in parts if start <= end]


def _sent_at(entry: LogEntry) -> datetime | None:
    """Read when Infobip says it sent the call; None when it does not say it readably."""
    try:
        moment, _ = parse_timestamp(entry.raw.get("sentAt"))
    except ValueError:
        return None
    return moment


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


def _keep(search: Search, wanted: set[str], entries: Iterable[LogEntry]) -> int:
    """Keep the entries of wanted calls; return how many were new.

    An entry of a call ivrdesk does not want is ignored.
    """
    new = 0
    for entry in entries:
        if entry.message_id in wanted:
            new += entry.message_id not in search.entries
            search.entries[entry.message_id] = entry
    return new
