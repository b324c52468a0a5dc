"""The fake Infobip's report sender: holds reports until due, posts them or shelves them to pull."""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from app.simulator.pulls import Shelf
from app.simulator.reports import (
    INTERMEDIATE,
    OUTCOMES,
    Message,
    Report,
    encode_reports,
    render_report,
)

logger = logging.getLogger(__name__)

SENDER_THREADS = 4
REORDER_SHARE = 0.3


def _default_mix() -> dict[str, float]:
    """Return the default share of each outcome."""
    return {
        "answered_human": 0.5,
        "answered_machine": 0.1,
        "busy": 0.15,
        "no_answer": 0.15,
        "failed": 0.05,
        "expired": 0.05,
    }


@dataclass
class ReportPlan:
    """How delivery reports are produced."""

    delay: float = 0.2
    mix: dict[str, float] = field(default_factory=_default_mix)
    duplicate_rate: float = 0.0
    reorder: bool = False
    batch_size: int = 1
    enabled: bool = True  # False: reports of calls with a notifyUrl are never posted (lost)
    seed: int | None = None
    drop_rate: float = 0.0  # share of final reports never posted (still in the voice logs)


@dataclass(slots=True)
class _Group:
    """The final reports of one message's accepted calls (to, messageId, outcome), due together."""

    message: Message
    ended_at: datetime
    calls: list[tuple[str, str, str]]


class ReportSender:
    """Schedule the reports of accepted calls: post them to their notifyUrl, or shelve them.

    Only reports of calls sent without a notifyUrl are shelved for GET /voice/1/reports
    (INFOBIP.md §6); a report whose POST fails is lost, as with Infobip.
    """

    reports_posted: int
    reports_failed: int
    reports_dropped: int
    reports_withheld: int

    def __init__(
        self,
        cond: threading.Condition,
        closed: threading.Event,
        plan: ReportPlan,
        on_final: Callable[[Report], None],
        shelf: Shelf,
    ) -> None:
        """Share the simulator's lock and closing flag; threads start with the first call.

        on_final: told of every call's final report when it falls due (lock held).
        shelf: where due reports of calls sent without a notifyUrl wait to be pulled.
        """
        self._on_final = on_final
        self._shelf = shelf
        self._cond = cond
        self._closed = closed
        self._workers: list[threading.Thread] = []
        self._client: httpx.Client | None = None
        self._seq = itertools.count()
        self._in_flight = 0
        self.plan = plan
        self.clear()

    @property
    def plan(self) -> ReportPlan:
        """Return the report plan."""
        return self._plan

    @plan.setter
    def plan(self, plan: ReportPlan) -> None:
        """Replace the report plan and re-seed the outcome generator."""
        with self._cond:
            self._plan = plan
            self._rng = random.Random(plan.seed)  # noqa: S311  # simulated outcomes, not secrets

    def clear(self) -> None:
        """Forget every report not yet posted (not those in flight) and the counters."""
        with self._cond:
            self.reports_posted = 0
            self.reports_failed = 0
            self.reports_dropped = 0
            self.reports_withheld = 0
            self._sent: list[tuple[str, str, bytes]] = []
            self._heap: list[tuple[float, int, Report | _Group]] = []
            self._waiting = 0
            self._ready: dict[tuple[str, str], collections.deque[Report]] = {}
            self._cond.notify_all()

    def sent(self) -> list[tuple[str, str, bytes]]:
        """Return (url, content type, body) of every report POST made, successful or not."""
        with self._cond:
            return list(self._sent)

    def counts(self) -> dict[str, int]:
        """Return the report counters as the control API shows them (lock held)."""
        return {
            "reports_posted": self.reports_posted,
            "reports_failed": self.reports_failed,
            "reports_dropped": self.reports_dropped,
            "reports_withheld": self.reports_withheld,
            "pending_reports": self._outstanding(),
            "pullable_reports": len(self._shelf),
        }

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no report is waiting to be posted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding() == 0, timeout)

    def draw_outcomes(self, count: int) -> list[str]:
        """Draw the outcomes of count calls from the plan's mix (lock held)."""
        weights = [self.plan.mix.get(name, 0.0) for name in OUTCOMES]
        return self._rng.choices(OUTCOMES, weights, k=count)

    def schedule(self, message: Message, calls: list[tuple[str, str, str]]) -> None:
        """Schedule the final reports of one message's accepted calls (lock held)."""
        ended_at = datetime.now(UTC) + timedelta(seconds=self.plan.delay)
        self._push(time.monotonic() + self.plan.delay, _Group(message, ended_at, calls))

    def start(self) -> None:
        """Start the sender threads and the HTTP client once (lock held)."""
        if self._workers or self._closed.is_set():
            return
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0))
        for number in range(SENDER_THREADS):
            worker = threading.Thread(
                target=self._work, name=f"simulator-sender-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def close(self) -> None:
        """Stop the sender threads and close the HTTP client, once the closing flag is set."""
        with self._cond:
            workers, self._workers = self._workers, []
            self._cond.notify_all()
        for worker in workers:
            worker.join(timeout=10)
        if self._client is not None:
            self._client.close()
            self._client = None

    def _push(self, due: float, item: Report | _Group) -> None:
        """Put a report or a group of final reports on the due-time heap (lock held)."""
        heapq.heappush(self._heap, (due, next(self._seq), item))
        self._waiting += len(item.calls) if isinstance(item, _Group) else 1

    def _outstanding(self) -> int:
        """Count reports scheduled, ready or being posted (lock held)."""
        return self._waiting + sum(map(len, self._ready.values())) + self._in_flight

    def release_due(self) -> None:
        """Move due reports to the ready groups or to the shelf (lock held)."""
        now, kept = time.monotonic(), len(self._shelf)
        while self._heap and self._heap[0][0] <= now:
            due, _, item = heapq.heappop(self._heap)
            if isinstance(item, _Group):
                self._waiting -= len(item.calls)
                self._expand(due, item)
            else:
                self._waiting -= 1
                self._route(item)
        if len(self._shelf) != kept:
            self._cond.notify_all()

    def _expand(self, due: float, group: _Group) -> None:
        """Turn a due group into final reports, with reordering and duplicates (lock held)."""
        plan, rng = self.plan, self._rng
        for to, message_id, outcome in group.calls:
            salt = rng.getrandbits(32)
            report = Report(group.message, to, message_id, outcome, salt, group.ended_at)
            if plan.reorder:
                shift = rng.uniform(0, plan.delay)
                report.ended_at += timedelta(seconds=shift)
                self._push(due + shift, report)
                if rng.random() < REORDER_SHARE:
                    late = dataclasses.replace(report, intermediate=rng.choice(INTERMEDIATE))
                    self._push(due + shift + rng.uniform(0.005, plan.delay + 0.005), late)
            else:
                self._route(report)
            self._on_final(report)
            if plan.duplicate_rate and rng.random() < plan.duplicate_rate:
                self._push(due + rng.uniform(0, plan.delay / 2), report)

    def _route(self, report: Report) -> None:
        """Shelve a due report of a call without a notifyUrl, or queue it for its notifyUrl.

        A report withheld (plan.enabled False) or dropped (plan.drop_rate) is lost as a
        real one can be: never posted, never pullable; the voice logs still show the
        call's final status. Lock held.
        """
        url = report.message.notify_url
        if url is None:
            self._shelf.keep(report)
        elif not self.plan.enabled:
            self.reports_withheld += 1
        elif self.plan.drop_rate and self._rng.random() < self.plan.drop_rate:
            self.reports_dropped += 1
        else:
            key = (url, report.message.content_type)
            self._ready.setdefault(key, collections.deque()).append(report)

    def _take_batch(self) -> tuple[tuple[str, str], list[Report]] | None:
        """Take up to batch_size ready reports for one URL and content type (lock held)."""
        if not self._ready:
            return None
        key = next(iter(self._ready))
        queue = self._ready.pop(key)
        batch = [queue.popleft() for _ in range(min(self.plan.batch_size, len(queue)))]
        if queue:
            self._ready[key] = queue
        return key, batch

    def _next_batch(self) -> tuple[tuple[str, str], list[Report]] | None:
        """Wait for the next batch to post; None when closing."""
        with self._cond:
            while not self._closed.is_set():
                self.release_due()
                taken = self._take_batch()
                if taken is not None:
                    self._in_flight += len(taken[1])
                    return taken
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                self._cond.wait(wait)
        return None

    def _work(self) -> None:
        """Post batches of reports until closed."""
        while (taken := self._next_batch()) is not None:
            (url, content_type), batch = taken
            body = encode_reports([render_report(report) for report in batch], content_type)
            delivered = self._post(url, content_type, body)
            with self._cond:
                self._in_flight -= len(batch)
                self._sent.append((url, content_type, body))
                if delivered:
                    self.reports_posted += len(batch)
                else:
                    self.reports_failed += len(batch)
                self._cond.notify_all()

    def _post(self, url: str, content_type: str, body: bytes) -> bool:
        """POST one report body; True when the receiver answered 2xx."""
        client = self._client
        if client is None:
            return False
        try:
            answer = client.post(url, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            logger.info("report POST failed: %s", type(exc).__name__)
            return False
        return answer.is_success
