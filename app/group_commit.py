"""Group commit: the concurrent requests of one process share one transaction.

A request hands its work to the committer and waits. When no group is being written
it leads: it takes everything queued (its own work first), runs `process` once for
the whole group (one transaction, one durable commit), hands every member its outcome
and wakes the next waiting request to lead the next group. Under load the requests
that arrive while a group is being written form the next one; alone, a request is a
group of one and waits for nobody. Nothing runs in a background thread, so nothing
needs care across gunicorn's fork.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Work = TypeVar("Work")
Outcome = TypeVar("Outcome")


class _Ticket(Generic[Work, Outcome]):
    __slots__ = ("done", "error", "lead", "outcome", "work")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.done = threading.Event()


class GroupCommitter(Generic[Work, Outcome]):
    """Run `process` on groups of concurrently submitted work; thread-safe."""

    def __init__(
        self,
        process: Callable[[Sequence[Work]], Sequence[Outcome | BaseException]],
        max_group: int = 64,
    ) -> None:
        """`process` returns one outcome (or exception to raise) per piece of work, in order."""
        self._process = process
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Ticket[Work, Outcome]] = []
        self._leading = False

    def submit(self, work: Work) -> Outcome:
        """Have `work` processed in the next group; return its outcome or raise its error."""
        ticket: _Ticket[Work, Outcome] = _Ticket(work)
        with self._lock:
            self._queue.append(ticket)
            if not self._leading:
                self._leading = ticket.lead = True
        if not ticket.lead:
            ticket.done.wait()  # set when processed, or when promoted to lead
        if ticket.lead:
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        return ticket.outcome  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            group = self._queue[: self._max_group]
            del self._queue[: len(group)]
        try:
            outcomes: Sequence[Outcome | BaseException] = self._process([t.work for t in group])
            if len(outcomes) != len(group):
                raise RuntimeError("group commit: one outcome per piece of work expected")
        except BaseException as exc:  # every member learns of it; nobody waits forever
            outcomes = [exc] * len(group)
        for ticket, outcome in zip(group, outcomes, strict=True):
            ticket.lead = False
            if isinstance(outcome, BaseException):
                ticket.error = outcome
            else:
                ticket.outcome = outcome
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        for ticket in group:
            ticket.done.set()
        if successor is not None:
            successor.done.set()
