"""Submit batches to Infobip: claim once, send with bounded retries, judge every call.

DESIGN.md "Launching a campaign", step 4. A batch is claimed by one conditional
UPDATE (queued -> submitting) that is committed before the request is sent, and
the answer is recorded in a second transaction: no transaction is open across
the HTTP call. The caller passes a session factory because this is the one
workflow that needs two commits around the call.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.db import utcnow
from app.infobip.client import FailureKind, InfobipClient, ProviderError
from app.infobip.codes import (
    Outcome,
    Status,
    is_accepted_at_submit,
    is_already_accepted,
    is_final,
    submit_outcome,
)
from app.launch.body import build_launch_body
from app.models import Batch, BatchState, Call, Campaign, EventSource, SubmitState
from app.reports.events import ALREADY_ACCEPTED, EVENT_COLUMNS, Candidate
from app.reports.record import record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for 429/5xx/no connection: 3 attempts, 0.5 s doubling, full jitter."""

    attempts: int = 3
    base_delay: float = 0.5
    max_retry_after: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Return how long to wait before the next attempt, or None to stop retrying."""
        if attempt >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return float(self.jitter() * self.base_delay * 2 ** (attempt - 1))


def claim_timeout(infobip_timeout: float, policy: RetryPolicy = RetryPolicy()) -> timedelta:
    """How long a claimed batch may still have its request in flight (DESIGN.md).

    Every attempt may wait the whole Infobip timeout; a minute covers the backoff
    between attempts and the recording of the answer.
    """
    return timedelta(seconds=infobip_timeout * policy.attempts + 60)


@dataclass
class Sent:
    """What one batch's request produced: Infobip's answer or the final error."""

    answer: dict[str, Any] | None
    error: ProviderError | None
    attempts: int


@dataclass(frozen=True)
class CallRef:
    """The few columns of a call that sending it needs."""

    id: int
    message_index: int
    message_id: str
    to_number: str
    callback_data: str | None


@dataclass
class BatchResult:
    """Counts of submit states after a batch was sent."""

    batch_id: int
    states: dict[str, int] = field(default_factory=dict)
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Submitter:
    """Everything needed to send batches: sessions, the client and ivrdesk's notify URL.

    notify_url is None in pull mode: calls are then sent without a notifyUrl.
    """

    sessions: sessionmaker[Session]
    client: InfobipClient
    notify_url: str | None
    notify_content_type: str
    claimant: str
    policy: RetryPolicy = RetryPolicy()


def claim_batch(session: Session, batch_id: int, *, claimant: str, now: datetime) -> bool:
    """Move a batch from queued to submitting; True for the one claimant that wins."""
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.state == BatchState.QUEUED.value)
        .values(state=BatchState.SUBMITTING.value, claimed_at=now, claimed_by=claimant)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(Call)
        .where(Call.batch_id == batch_id)
        .values(submit_state=SubmitState.SUBMITTING.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


def send_with_retries(client: InfobipClient, body: dict[str, Any], policy: RetryPolicy) -> Sent:
    """Send one request; retry only what surely did not reach Infobip (429/5xx/no connection)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            with metrics.timed_infobip_call("launch"):
                answer = client.launch(body)
            return Sent(answer, None, attempt)
        except ProviderError as exc:
            wait = policy.delay(attempt, exc.retry_after)
            if exc.kind is not FailureKind.UNAVAILABLE or wait is None:
                return Sent(None, exc, attempt)
            log.warning(
                "Infobip unavailable (%s), attempt %d; retrying in %.2fs", exc, attempt, wait
            )
            policy.sleep(wait)


def _status_of(entry: dict[str, Any]) -> dict[str, Any]:
    status = entry.get("status")
    return status if isinstance(status, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


Judged = tuple["CallRef", str, dict[str, Any], str | None]


def judge_calls(calls: list[CallRef], sent: Sent, *, retry: bool) -> list[Judged]:
    """Give each call its submit state, Infobip's status entry and a reason."""
    if sent.answer is None:
        assert sent.error is not None
        state = {
            FailureKind.REFUSED: SubmitState.REJECTED,
            FailureKind.UNAVAILABLE: SubmitState.FAILED,
            FailureKind.TIMEOUT: SubmitState.UNKNOWN,
        }[sent.error.kind].value
        return [(call, state, {}, str(sent.error)) for call in calls]
    entries = {}
    for entry in sent.answer.get("messages") or []:
        if isinstance(entry, dict) and entry.get("messageId") is not None:
            entries[str(entry["messageId"])] = entry
    judged: list[Judged] = []
    for call in calls:
        found = entries.get(call.message_id)
        if found is None:
            judged.append((call, SubmitState.UNKNOWN.value, {}, "missing from Infobip's answer"))
            continue
        raw = _status_of(found)
        status = Status(_int(raw.get("groupId")), _int(raw.get("id")), raw.get("name"))
        if is_accepted_at_submit(status, retry=retry):
            judged.append((call, SubmitState.ACCEPTED.value, raw, None))
        else:
            reason = str(raw.get("name") or raw.get("description") or "rejected by Infobip")
            judged.append((call, SubmitState.REJECTED.value, raw, reason))
    return judged


def submit_candidate(
    call: CallRef,
    state: str,
    raw: dict[str, Any],
    reason: str | None,
    *,
    now: datetime,
    source: EventSource = EventSource.SUBMIT,
    keeps_status: str | None = None,
) -> Candidate:
    """Build the event of one call's submit answer (a non-final status at submission).

    A destination Infobip already had (status 23 on a retry or resubmission) is
    recorded as accepted, `already_accepted`, and never becomes the current status.
    A reconciliation settles a submission the same way (source `reconcile`), with
    the reason it never moves the status (keeps_status).
    """
    status = Status(_int(raw.get("groupId")), _int(raw.get("id")), raw.get("name"))
    accepted = state == SubmitState.ACCEPTED
    event: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    event.update(
        message_id=call.message_id,
        source=source.value,
        submit_state=state,
        status_group_id=status.group_id,
        status_group_name=raw.get("groupName"),
        status_id=status.id,
        status_name=status.name,
        status_description=raw.get("description"),
        outcome=(Outcome.PENDING if accepted else submit_outcome(state)).value,
        occurred_at=now,
        received_at=now,
        callback_data=call.callback_data,
        raw=raw or None,
        duplicates=0,
    )
    keeps = ALREADY_ACCEPTED if accepted and is_already_accepted(status) else keeps_status
    return Candidate(
        call.message_index, call.message_id, event, is_final(status), now, None,
        submit_state=state, submit_error=reason, keeps_status=keeps,
    )  # fmt: skip


def record_sent(
    session: Session, batch: Batch, calls: list[CallRef], sent: Sent, *, now: datetime
) -> BatchResult:
    """Record every call's submit answer through the one recording path; mark the batch done."""
    judged = judge_calls(calls, sent, retry=batch.resubmission or sent.attempts > 1)
    result = BatchResult(batch.id)
    candidates = []
    for call, state, raw, reason in judged:
        result.states[state] = result.states.get(state, 0) + 1
        candidates.append(submit_candidate(call, state, raw, reason, now=now))
    record(session, candidates)
    error = sent.error
    session.execute(
        update(Batch)
        .where(Batch.id == batch.id)
        .values(
            state=BatchState.DONE.value,
            finished_at=now,
            http_status=error.status_code if error else 200,
            error=str(error) if error else None,
        )
        .execution_options(synchronize_session=False)
    )
    result.http_status = error.status_code if error else 200
    result.error = str(error) if error else None
    return result


def submit_batch(
    submitter: Submitter, batch_id: int, *, claimed: bool = False
) -> BatchResult | None:
    """Claim (unless already claimed), send and record one batch; None when another has it."""
    with submitter.sessions() as session:
        if not claimed:
            if not claim_batch(session, batch_id, claimant=submitter.claimant, now=utcnow()):
                session.rollback()
                return None
            session.commit()
        batch = session.get_one(Batch, batch_id)
        campaign = session.get_one(Campaign, batch.campaign_id)
        calls = [
            CallRef(*row)
            for row in session.execute(
                select(Call.id, Call.message_index, Call.message_id, Call.to_number,
                       Call.callback_data)
                .where(Call.batch_id == batch_id)
                .order_by(Call.id)
            )
        ]  # fmt: skip

        body = build_launch_body(
            campaign,
            calls,
            notify_url=submitter.notify_url,
            notify_content_type=submitter.notify_content_type,
        )
        session.commit()  # end the read transaction: nothing stays open across the call
        sent = send_with_retries(submitter.client, body, submitter.policy)
        result = record_sent(session, batch, calls, sent, now=utcnow())
        session.commit()
    log.info(
        "batch %d of campaign %s sent: %s",
        batch_id,
        campaign.bulk_id,
        ", ".join(f"{k}={v}" for k, v in sorted(result.states.items())),
    )
    return result


def queued_batches(session: Session, campaign_id: int) -> list[int]:
    """Return the ids of a campaign's batches still queued, in order."""
    return list(
        session.scalars(
            select(Batch.id)
            .where(Batch.campaign_id == campaign_id, Batch.state == BatchState.QUEUED.value)
            .order_by(Batch.seq)
        )
    )


def submit_campaign(submitter: Submitter, campaign_id: int) -> list[BatchResult]:
    """Send every queued batch of a campaign that no one else claims first."""
    with submitter.sessions() as session:
        batch_ids = queued_batches(session, campaign_id)
    results = []
    for batch_id in batch_ids:
        result = submit_batch(submitter, batch_id)
        if result is not None:
            results.append(result)
    return results
