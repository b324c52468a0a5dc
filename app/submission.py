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
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app import metrics
from app.campaigns import build_launch_body
from app.db import utcnow
from app.infobip import FailureKind, InfobipClient, ProviderError
from app.models import Batch, BatchState, Call, CallEvent, Campaign, EventSource, SubmitState
from app.status import Outcome, Status, is_accepted_at_submit, is_final, submit_outcome

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


@dataclass
class Sent:
    """What one batch's request produced: Infobip's answer or the final error."""

    answer: dict[str, Any] | None
    error: ProviderError | None
    attempts: int


@dataclass
class BatchResult:
    """Counts of submit states after a batch was sent."""

    batch_id: int
    states: dict[str, int] = field(default_factory=dict)
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Submitter:
    """Everything needed to send batches: sessions, the client and ivrdesk's notify URL."""

    sessions: sessionmaker[Session]
    client: InfobipClient
    notify_url: str
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


Judged = tuple[Call, str, dict[str, Any], str | None]


def judge_calls(calls: list[Call], sent: Sent, *, retry: bool) -> list[Judged]:
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


def record_sent(
    session: Session, batch: Batch, calls: list[Call], sent: Sent, *, now: datetime
) -> BatchResult:
    """Store every call's submit state and a submit event; mark the batch done."""
    judged = judge_calls(calls, sent, retry=batch.resubmission or sent.attempts > 1)
    result = BatchResult(batch.id)
    state_rows, status_rows, events = [], [], []
    for call, state, raw, reason in judged:
        result.states[state] = result.states.get(state, 0) + 1
        status = Status(_int(raw.get("groupId")), _int(raw.get("id")), raw.get("name"))
        outcome = submit_outcome(state) if state != SubmitState.ACCEPTED else Outcome.PENDING
        status_fields = {
            "status_group_id": status.group_id,
            "status_group_name": raw.get("groupName"),
            "status_id": status.id,
            "status_name": status.name,
            "status_description": raw.get("description"),
        }
        state_rows.append(
            {
                "pk": call.id,
                "state": state,
                "reason": reason,
                "new_outcome": outcome.value,
                "now": now,
            }
        )
        if raw:
            status_rows.append(
                {"pk": call.id, **status_fields, "final": is_final(status), "at": now}
            )
        events.append(
            {
                "call_id": call.id,
                "message_id": call.message_id,
                "source": EventSource.SUBMIT.value,
                "submit_state": state,
                **status_fields,
                "outcome": outcome.value,
                "occurred_at": now,
                "received_at": now,
                "callback_data": call.callback_data,
                "raw": raw or None,
                "applied": True,
                "reason": reason,
                "duplicates": 0,
            }
        )
    _write_states(session, state_rows, status_rows)
    for start in range(0, len(events), 5000):
        session.execute(insert(CallEvent), events[start : start + 5000])
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


def _write_states(
    session: Session, state_rows: list[dict[str, Any]], status_rows: list[dict[str, Any]]
) -> None:
    # Parameter keys must not be named like columns: Core adds those to the SET clause.
    # A report may already have given the call a final status: the submit answer
    # then changes only the submit state, never the status or the outcome.
    connection = session.connection()
    connection.execute(
        update(Call.__table__)  # type: ignore[arg-type]
        .where(Call.__table__.c.id == bindparam("pk"))
        .values(
            submit_state=bindparam("state"),
            submit_error=bindparam("reason"),
            updated_at=bindparam("now"),
        ),
        state_rows,
    )
    table = Call.__table__
    connection.execute(
        update(table)  # type: ignore[arg-type]
        .where(
            table.c.id == bindparam("pk"),
            table.c.status_final.is_(False),
            table.c.status_occurred_at.is_(None),
        )
        .values(outcome=bindparam("new_outcome")),
        state_rows,
    )
    if status_rows:
        connection.execute(
            update(table)  # type: ignore[arg-type]
            .where(table.c.id == bindparam("pk"), table.c.status_final.is_(False))
            .values(
                status_group_id=bindparam("status_group_id"),
                status_group_name=bindparam("status_group_name"),
                status_id=bindparam("status_id"),
                status_name=bindparam("status_name"),
                status_description=bindparam("status_description"),
                status_final=bindparam("final"),
                status_occurred_at=bindparam("at"),
            ),
            status_rows,
        )


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
        calls = list(
            session.scalars(select(Call).where(Call.batch_id == batch_id).order_by(Call.id))
        )
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
