"""The dispatcher: claim queued batches and submit them, until told to stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.launch.submission import BatchResult, Submitter, claim_batch, submit_batch
from app.models import Batch, BatchState
from app.reports.parked import apply_parked

log = logging.getLogger(__name__)

DUTY_GRACE = 5.0  # seconds a running duty is given once the dispatcher is told to stop


def claim_next_batch(session: Session, *, claimant: str, now: datetime) -> int | None:
    """Claim the oldest batch that is due; None when there is none (or another won it)."""
    query = (
        select(Batch.id)
        .where(Batch.state == BatchState.QUEUED.value, Batch.not_before <= now)
        .order_by(Batch.not_before, Batch.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Several dispatchers on several hosts: each skips the rows another holds.
        query = query.with_for_update(skip_locked=True)
    batch_id = session.scalar(query)
    if batch_id is None:
        return None
    return batch_id if claim_batch(session, batch_id, claimant=claimant, now=now) else None


def dispatch_once(
    submitter: Submitter, on_batch: Callable[[BatchResult], None] | None = None
) -> int:
    """Submit every batch that is due now; return how many were sent."""
    sent = 0
    while True:
        with submitter.sessions() as session:
            batch_id = claim_next_batch(session, claimant=submitter.claimant, now=utcnow())
            if batch_id is None:
                session.rollback()
                return sent
            session.commit()
        result = submit_batch(submitter, batch_id, claimed=True)
        if result is not None:
            sent += 1
            if on_batch is not None:
                on_batch(result)


def sweep_parked(sessions: sessionmaker[Session]) -> int:
    """Apply parked reports whose call exists now; return how many found their call."""
    with sessions() as session:
        matched = apply_parked(session)
        session.commit()
    if matched:
        log.info("applied %d parked report(s)", matched)
    return matched


@dataclass
class Duty:
    """A periodic task of the dispatcher: run every `every` seconds (the first pass at once)."""

    name: str
    every: float
    run: Callable[[], object]
    due: float = 0.0  # time.monotonic() of the next run


def run_duties(duties: Sequence[Duty], *, now: float) -> None:
    """Run every duty that is due; a duty that fails is logged and tried again when next due."""
    for duty in duties:
        if now < duty.due:
            continue
        duty.due = now + duty.every
        try:
            duty.run()
        except Exception:  # a database or network hiccup must not end the worker
            log.exception("dispatcher duty %s failed; next try in %.0fs", duty.name, duty.every)


def run_dispatcher(
    sessions: sessionmaker[Session],
    submitter: Submitter | None,
    stop: threading.Event,
    *,
    interval: float = 1.0,
    duties: Sequence[Duty] = (),
) -> None:
    """Loop until stop is set: submit due batches (when Infobip is configured), sweep parked.

    `duties` run on their own periods (reconciliation, pulling reports) in a thread of
    their own, so that a long reconciliation round never holds up the batches. When
    stopped, a duty still running is given a few seconds; what it had not committed
    is rolled back with the process (a reconciliation records a round in one go).
    """
    name = submitter.claimant if submitter else "sweep-only"
    log.info("dispatcher %s started", name)
    worker = None
    if duties:
        worker = threading.Thread(
            target=_run_duties_until, args=(duties, stop, interval), name="dispatcher-duties",
            daemon=True,
        )  # fmt: skip
        worker.start()
    while not stop.is_set():
        try:
            if submitter is not None:
                dispatch_once(submitter)
            sweep_parked(sessions)
        except Exception:  # a database or network hiccup must not end the worker
            log.exception("dispatcher pass failed; retrying in %.1fs", interval)
        stop.wait(interval)
    if worker is not None:
        worker.join(DUTY_GRACE)
    log.info("dispatcher %s stopped", name)


def _run_duties_until(duties: Sequence[Duty], stop: threading.Event, interval: float) -> None:
    """Run the duties that are due, every `interval` seconds, until stop is set."""
    while not stop.is_set():
        run_duties(duties, now=time.monotonic())
        stop.wait(interval)
