"""Reconciliation with Infobip's voice logs: settle submissions in doubt, fill lost reports.

DESIGN.md "Reconciliation with Infobip". The calls still open (not final; submitted,
unknown, or claimed so long ago that their request cannot be in flight) are looked up
in GET /tts/3/logs (app.reports.logsearch), and what the logs say is recorded through
the one recording path with source `reconcile`:

- an unknown or stale `submitting` call found in the logs becomes `accepted`; one
  still missing IVR_RECONCILE_AFTER minutes after it was due becomes `failed`
  (`not_in_infobip_logs`), which `campaigns resubmit` may send again;
- a call whose final report never came, IVR_RECONCILE_AFTER minutes after it was
  due, takes the log's final status as an event, deduplicated like any report.

Nothing is recorded unless every lookup of the round succeeded; a second run finds
nothing left to settle. Flask-free: the CLI and the dispatcher share it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import utcnow
from app.infobip.client import InfobipClient, LogEntry, ProviderError
from app.launch.submission import CallRef, claim_timeout, submit_candidate
from app.models import OPEN_CALLS, Batch, BatchState, Call, Campaign, EventSource, SubmitState
from app.reports.due import due_times
from app.reports.events import IN_INFOBIP_LOGS, NOT_IN_INFOBIP_LOGS, Candidate, report_candidate
from app.reports.items import DeliveryReport, read_item
from app.reports.logsearch import WINDOW, Search, Sending, find_in_logs
from app.reports.record import record

log = logging.getLogger(__name__)

IN_DOUBT = (SubmitState.UNKNOWN.value, SubmitState.SUBMITTING.value)
# One reconciliation at a time across every host (PostgreSQL): a session-level advisory
# lock under this key ("ivrdesk reconcile" in ASCII, shortened to fit a bigint).
ADVISORY_LOCK = 0x69767264_7265636F


@dataclass(frozen=True)
class Rules:
    """When a call is looked up: after the claim timeout, and this long after it was due."""

    after: timedelta
    claim_timeout: timedelta
    since: timedelta = WINDOW  # only calls sent this recently (at most Infobip's 48 hours)


@dataclass
class Settled:
    """What one reconciliation did, for the CLI's line and the metrics."""

    looked_up: int = 0
    requests: int = 0
    accepted: int = 0  # in doubt, found in the logs
    failed: int = 0  # in doubt, not in the logs long after due
    final: int = 0  # a final status recorded from the logs (lost reports filled)
    still_open: int = 0  # looked up, nothing to record yet
    busy: bool = False  # another reconciliation held the lock: nothing was done

    def line(self) -> str:
        """Say what was settled, in one line."""
        if self.busy:
            return "another reconciliation is running: nothing done"
        return (
            f"looked up {self.looked_up} call(s) in Infobip's logs ({self.requests} request(s)): "
            f"{self.accepted} accepted, {self.failed} failed (not in Infobip's logs), "
            f"{self.final} final status(es) recorded, {self.still_open} still open"
        )


@dataclass(frozen=True)
class OpenCall:
    """A call to look up, and whether it is IVR_RECONCILE_AFTER past when it was due."""

    ref: CallRef
    bulk_id: str
    submit_state: str
    batch_id: int | None
    overdue: bool


@dataclass
class Round:
    """The calls of one reconciliation, by bulk, with the bulks' batches as sent."""

    calls: dict[str, list[OpenCall]] = field(default_factory=lambda: defaultdict(list))
    sendings: dict[str, list[Sending]] = field(default_factory=lambda: defaultdict(list))


def reconcile(
    sessions: sessionmaker[Session],
    client: InfobipClient,
    rules: Rules,
    *,
    now: datetime,
    bulk_id: str | None = None,
) -> Settled:
    """Look the open calls up in Infobip's logs and record what they say (one round).

    A ProviderError (logs unavailable, 429 past the retries, a timeout) is raised
    before anything is recorded.
    """
    settled = Settled()
    with sessions() as session, _exclusive(session) as alone:
        if not alone:
            settled.busy = True
            return settled
        found = open_calls(session, rules, now=now, bulk_id=bulk_id)
        session.rollback()  # no transaction stays open across the requests
        search = Search()
        for bulk, calls in found.calls.items():
            ids = [call.ref.message_id for call in calls]
            find_in_logs(client, bulk, ids, found.sendings[bulk], now=now, search=search)
        settled.looked_up = sum(map(len, found.calls.values()))
        settled.requests = search.requests
        candidates = settle(found, search.entries, now=now, settled=settled)
        candidates = _unless_moved_on(session, found, candidates, settled)
        if candidates:
            record(session, candidates)
        _finish_stale_batches(session, found, now=now)
        session.commit()
    return settled


def rules_of(settings: Settings, *, since_hours: float | None = None) -> Rules:
    """Build the rules from the settings (IVR_RECONCILE_AFTER, IVR_INFOBIP_TIMEOUT)."""
    since = WINDOW if since_hours is None else min(WINDOW, timedelta(hours=since_hours))
    return Rules(
        after=timedelta(minutes=settings.reconcile_after_minutes),
        claim_timeout=claim_timeout(settings.infobip_timeout),
        since=since,
    )


def reconcile_round(
    sessions: sessionmaker[Session], client: InfobipClient, rules: Rules
) -> Settled | None:
    """Run one round for the dispatcher: log its line, or one warning when Infobip fails.

    Nothing is recorded when the logs cannot be read; the next round tries again.
    """
    try:
        settled = reconcile(sessions, client, rules, now=utcnow())
    except ProviderError as exc:
        log.warning("reconciliation skipped this round, nothing recorded: %s", exc)
        return None
    if settled.looked_up or settled.busy:
        log.info("reconciliation: %s", settled.line())
    return settled


def open_calls(
    session: Session, rules: Rules, *, now: datetime, bulk_id: str | None = None
) -> Round:
    """Select the calls to look up, with when each was due, and their bulks' batches."""
    stale = now - rules.claim_timeout
    oldest = now - min(rules.since, WINDOW)
    query = (
        select(
            Call.id, Call.message_index, Call.message_id, Call.to_number, Call.callback_data,
            Call.submit_state, Call.batch_id, Call.campaign_id, Call.updated_at,
            Batch.claimed_at,
        )
        .outerjoin(Batch, Batch.id == Call.batch_id)
        .where(
            text(OPEN_CALLS),  # word for word the predicate of ix_calls_open: SQLite uses it
            (Call.submit_state != SubmitState.SUBMITTING.value)
            | and_(Batch.claimed_at.is_not(None), Batch.claimed_at < stale),
        )
        .order_by(Call.campaign_id, Call.id)
    )  # fmt: skip
    if bulk_id is not None:
        query = query.join(Campaign, Campaign.id == Call.campaign_id).where(
            Campaign.bulk_id == bulk_id
        )
    rows = session.execute(query).all()
    campaigns = {
        campaign.id: campaign
        for campaign in session.scalars(
            select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows}))
        )
    }
    found = Round()
    for campaign_id, due in due_times(session, campaigns, rows).items():
        campaign = campaigns[campaign_id]
        for row, moment in due:
            attempt = row.claimed_at or row.updated_at
            if attempt < oldest:
                continue  # gone from Infobip's logs: listed by `calls stuck`
            overdue = now >= moment + rules.after
            if row.submit_state not in IN_DOUBT and not overdue:
                continue  # its report may still come: not looked up yet
            ref = CallRef(row.id, row.message_index, row.message_id, row.to_number,
                          row.callback_data)  # fmt: skip
            found.calls[campaign.bulk_id].append(
                OpenCall(ref, campaign.bulk_id, row.submit_state, row.batch_id, overdue)
            )
    for bulk in found.calls:
        found.sendings[bulk] = _sendings(session, bulk)
    return found


def _sendings(session: Session, bulk_id: str) -> list[Sending]:
    """Return a bulk's batches as they were sent, for the sweep's windows."""
    query = (
        select(Batch.claimed_at, Batch.finished_at, Batch.size)
        .join(Campaign, Campaign.id == Batch.campaign_id)
        .where(Campaign.bulk_id == bulk_id, Batch.claimed_at.is_not(None))
    )
    return [
        Sending(claimed, answered, size)
        for claimed, answered, size in session.execute(query)
        if claimed is not None
    ]


def settle(
    found: Round, entries: dict[str, LogEntry], *, now: datetime, settled: Settled
) -> list[Candidate]:
    """Turn what the logs say of each open call into candidate events (pure).

    Every call of the round is in doubt or overdue (open_calls keeps no other).
    """
    candidates: list[Candidate] = []
    for calls in found.calls.values():
        for call in calls:
            entry = entries.get(call.ref.message_id)
            in_doubt = call.submit_state in IN_DOUBT
            made: list[Candidate] = []
            if entry is not None and in_doubt:
                made.append(_submit(call, SubmitState.ACCEPTED, IN_INFOBIP_LOGS, now=now))
                settled.accepted += 1
            elif entry is None and in_doubt and call.overdue:
                made.append(_submit(call, SubmitState.FAILED, NOT_IN_INFOBIP_LOGS, now=now))
                settled.failed += 1
            logged = None if entry is None else log_candidate(entry, now=now)
            if logged is not None and logged.final:
                made.append(logged)
                settled.final += 1
            if not made:
                settled.still_open += 1
            for candidate in made:
                candidate.index = len(candidates)
                candidates.append(candidate)
    return candidates


def log_candidate(entry: LogEntry, *, now: datetime) -> Candidate | None:
    """Build the event of a log entry, read like a flat (version 1) report; None if unreadable.

    Its doneAt is the call's end, as in the report Infobip would have posted, so the
    two share a dedupe key: whichever comes second is counted as a duplicate.
    """
    report = read_item(0, entry.raw)
    if not isinstance(report, DeliveryReport):
        return None
    return report_candidate(report, received_at=now, source=EventSource.RECONCILE)


def _submit(call: OpenCall, state: SubmitState, reason: str, *, now: datetime) -> Candidate:
    """Settle a submission in doubt; the event never moves the call's status."""
    return submit_candidate(
        call.ref, state.value, {}, None, now=now, source=EventSource.RECONCILE,
        keeps_status=reason,
    )  # fmt: skip


def _unless_moved_on(
    session: Session, found: Round, candidates: list[Candidate], settled: Settled
) -> list[Candidate]:
    """Drop the settlements of calls whose submission moved on during the lookups.

    An operator may have resubmitted a call meanwhile (its batch changed) or its late
    answer may have come: the in-doubt calls are locked, in id order (the recording
    path's order), and read again; a call no longer as it was keeps what it has now.
    """
    seen = {call.ref.id: call for calls in found.calls.values() for call in calls
            if call.submit_state in IN_DOUBT}  # fmt: skip
    if not seen:
        return candidates
    query = select(Call.id, Call.submit_state, Call.batch_id).where(Call.id.in_(seen))
    if session.get_bind().dialect.name == "postgresql":
        query = query.order_by(Call.id).with_for_update()
    moved = {
        seen[call_id].ref.message_id
        for call_id, state, batch_id in session.execute(query)
        if (state, batch_id) != (seen[call_id].submit_state, seen[call_id].batch_id)
    }
    kept = []
    for candidate in candidates:
        if candidate.submit_state is not None and candidate.message_id in moved:
            if candidate.submit_state == SubmitState.ACCEPTED:
                settled.accepted -= 1
            else:
                settled.failed -= 1
            settled.still_open += 1
            continue
        kept.append(candidate)
    return kept


def _finish_stale_batches(session: Session, found: Round, *, now: datetime) -> None:
    """Mark done the stale `submitting` batches whose every call the round settled."""
    batch_ids = {call.batch_id for calls in found.calls.values() for call in calls
                 if call.submit_state == SubmitState.SUBMITTING.value}  # fmt: skip
    if not batch_ids:
        return
    still = select(Call.id).where(
        Call.batch_id == Batch.id, Call.submit_state == SubmitState.SUBMITTING.value
    )
    session.execute(
        update(Batch)
        .where(
            Batch.id.in_(batch_ids),
            Batch.state == BatchState.SUBMITTING.value,
            ~still.exists(),
        )
        .values(state=BatchState.DONE.value, finished_at=now, error="settled by reconciliation")
        .execution_options(synchronize_session=False)
    )


@contextmanager
def _exclusive(session: Session) -> Iterator[bool]:
    """Hold the reconciliation lock on PostgreSQL for the block; False when another has it.

    The lock belongs to a connection of its own, held for the block (a session's
    connection goes back to the pool at each commit). SQLite runs one dispatcher
    (DESIGN.md "The dispatcher"): no lock is needed there.
    """
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        taken = bool(
            connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK})
        )
        connection.commit()
        try:
            yield taken
        finally:
            if taken:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK})
                connection.commit()
