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
    """A batch as ivrdesk sent it: when it was claimed and answered, how many calls it carried."""

    claimed: datetime
    answered: datetime | None  # None: no answer recorded (a request in doubt)
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

    A batch is in Infobip's logs by the time its answer came back (the moment its
    request was claimed is a poor guess when batches are sent in parallel): windows
    end at those moments, each after as many batches as fit. The first starts at the
    first claim less the clock skew, the last runs to now; nothing older than Infobip's
    48 hours. A call Infobip dated across a cut lands in a neighbouring window, whose
    answer may then reach the limit: split_window and the lookup by messageId find it.
    """
    ordered = sorted(sendings, key=lambda sending: sending.answered or sending.claimed)
    ends: list[datetime] = []
    held = 0
    for sending in ordered:
        moment = sending.answered or sending.claimed
        if ends and held + sending.size <= LOGS_MAX_LIMIT:
            ends[-1] = moment
            held += sending.size
        else:
            ends.append(moment)
            held = sending.size
    oldest = now - WINDOW + timedelta(minutes=1)
    first = min(sending.claimed for sending in sendings) - CLOCK_SKEW
    bounds = [max(bound, oldest) for bound in [first, *ends[:-1]]] + [now]
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
    the limit. What is left of such a window (split_window) is read after every first
    window, in at most as many requests as asking for every call by messageId would
    take: whatever happens, the sweep and its lookups cost at most twice that.
    """
    queue = collections.deque((since, until, False) for since, until in windows)
    missing = len(wanted - search.entries.keys())
    budget = math.ceil(missing / IDS_PER_REQUEST)  # what asking by messageId would cost
    while queue and missing:
        since, until, split = queue.popleft()
        if split:
            if budget == 0:
                return
            budget -= 1
        entries = _read(client, search, bulk_id=bulk_id, since=since, until=until)
        missing -= _keep(search, wanted, entries)
        if len(entries) >= LOGS_MAX_LIMIT:
            queue.extend((*part, True) for part in split_window(since, until, entries))


def split_window(
    since: datetime, until: datetime, entries: Sequence[LogEntry]
) -> list[tuple[datetime, datetime]]:
    """Give what is left to read of a window whose answer reached the limit.

    An answer in time order (oldest or newest first) read the window up to its last
    moment: the rest of the window follows, from that moment on. Otherwise the window
    is cut in two at the median moment. Either way a moment that held every entry of
    the answer is left out: what Infobip holds then is asked for by messageId.
    """
    times = [moment for moment in map(_sent_at, entries) if moment and since <= moment <= until]
    if not times:
        return []
    ordered = sorted(times)
    first, last = ordered[0], ordered[-1]
    if first == last:  # one moment, in no telling order: both sides of it
        parts = [(since, first - TICK), (first + TICK, until)]
    elif times == ordered:  # oldest first: everything before `last` was returned
        parts = [(last, until)]
    elif times == ordered[::-1]:  # newest first: everything after `first` was returned
        parts = [(since, first)]
    else:
        cut = ordered[len(ordered) // 2]
        if cut == first:
            cut = next(moment for moment in ordered if moment > first)
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
