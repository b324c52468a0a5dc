"""Launch campaigns: store them (idempotent by bulkId), their calls and batches, then send."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import bulk_insert, utcnow
from app.launch.answer import count_submit_states, launch_status_code
from app.launch.fields import id_problem
from app.launch.request import LaunchRequest, Problem
from app.launch.submission import Submitter, queued_batches, submit_batch
from app.models import Batch, BatchState, Call, Campaign, SubmitState
from app.reports.parked import rematch_campaign

# A synchronous launch submits its own batches; the dispatcher only takes them over
# after this long, in case the worker that stored them died before sending.
SYNC_GRACE = timedelta(seconds=120)
_LOOKUP_CHUNK = 500


@dataclass
class LaunchConflict(Exception):
    """The launch collides with stored data (a bulkId with another body, a used messageId)."""

    message: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        """Say what collides."""
        return self.message


class NotFound(LookupError):
    """No campaign or call has the given id."""


@dataclass(frozen=True)
class Created:
    """A stored campaign, and whether this launch created it or found it."""

    campaign: Campaign
    created: bool


def fingerprint(body: Any) -> str:
    """Hash a launch body so that a re-post can be told apart from a different launch."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def get_campaign(session: Session, bulk_id: str) -> Campaign:
    """Return the campaign with this bulkId, or raise NotFound."""
    if id_problem(bulk_id) is not None:  # no campaign can have it; don't ask the database
        raise NotFound(f"no campaign has bulkId {bulk_id!r}")
    campaign = session.scalar(select(Campaign).where(Campaign.bulk_id == bulk_id))
    if campaign is None:
        raise NotFound(f"no campaign has bulkId {bulk_id!r}")
    return campaign


def _existing(session: Session, bulk_id: str, digest: str) -> Created:
    campaign = get_campaign(session, bulk_id)
    if campaign.fingerprint != digest:
        raise LaunchConflict(
            f"bulkId {bulk_id!r} was already launched with a different body",
            [Problem("bulkId", "already used by another campaign with a different body")],
        )
    return Created(campaign, created=False)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _used_message_ids(session: Session, request: LaunchRequest) -> list[Problem]:
    paths = {}
    for message in request.messages:
        for position, destination in enumerate(message.destinations):
            if destination.message_id is not None:
                prefix = "" if request.flat else f"messages[{message.index}]."
                where = "messageId" if request.flat else f"destinations[{position}].messageId"
                paths[destination.message_id] = prefix + where
    wanted = list(paths)
    used: list[str] = []
    for chunk in _chunks(wanted, _LOOKUP_CHUNK):
        used.extend(session.scalars(select(Call.message_id).where(Call.message_id.in_(chunk))))
    return [Problem(paths[m], f"messageId {m!r} is already used by another call") for m in used]


@dataclass(frozen=True)
class Launched:
    """What a launch did: its campaign, whether it created it, and the calls' submit states."""

    campaign: Campaign
    created: bool
    asynchronous: bool
    states: dict[str, int]

    @property
    def status(self) -> int:
        """Return the HTTP status of the answer (DESIGN.md "Launching a campaign", 6 and 7)."""
        if not self.created:
            return 200
        # Queued for the dispatcher: 202, even if it got to the batches already.
        return 202 if self.asynchronous else launch_status_code(self.states)


# Sends a campaign's queued batches: given its bulkId and the batches' ids, in order.
BatchSender = Callable[[str, list[int]], None]


def launch_campaign(
    session: Session,
    submitter: Submitter,
    request: LaunchRequest,
    *,
    digest: str,
    batch_size: int,
    asynchronous: bool,
    send: BatchSender | None = None,
) -> Launched:
    """Store a campaign and re-match parked reports, then send it unless asynchronous.

    The one launch sequence of the API, the CLI and the admin console (DESIGN.md
    "Launching a campaign", steps 2 to 5). Unlike other domain functions it commits
    the caller's session, twice: everything is stored before anything is sent, and no
    transaction stays open while Infobip is called. Batches go out through the
    submitter's own sessions, by `send` (default: one after the other). A campaign
    found again by its bulkId and body is not sent again.
    """
    created = create_campaign(
        session,
        request,
        digest=digest,
        batch_size=batch_size,
        asynchronous=asynchronous,
        now=utcnow(),
    )
    session.commit()
    campaign = created.campaign
    if created.created:
        rematch_campaign(session, campaign)
        session.commit()
    if created.created and not asynchronous:
        batch_ids = queued_batches(session, campaign.id)
        session.commit()  # ends the read: SQLite holds its write lock until then
        sender = send or (lambda _bulk_id, ids: send_batches(submitter, ids))
        sender(campaign.bulk_id, batch_ids)
    session.expire_all()
    states = count_submit_states(session, campaign.id)
    return Launched(campaign, created.created, asynchronous, states)


def send_batches(
    submitter: Submitter,
    batch_ids: list[int],
    *,
    parallel: int = 1,
    on_sent: Callable[[], None] | None = None,
) -> None:
    """Send batches, up to `parallel` in flight at once; each is claimed first, so never twice.

    While one batch waits for Infobip another is stored or built. `on_sent` is called
    in the caller's thread after each batch (a progress bar).
    """
    if parallel == 1:
        for batch_id in batch_ids:
            submit_batch(submitter, batch_id)
            if on_sent is not None:
                on_sent()
        return
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="send") as pool:
        for future in as_completed(pool.submit(submit_batch, submitter, b) for b in batch_ids):
            future.result()
            if on_sent is not None:
                on_sent()


def create_campaign(
    session: Session,
    request: LaunchRequest,
    *,
    digest: str,
    batch_size: int,
    asynchronous: bool,
    now: datetime,
) -> Created:
    """Store the campaign, its calls (queued) and its batches; find it again on a re-post."""
    if request.bulk_id is not None and session.scalar(
        select(func.count()).select_from(Campaign).where(Campaign.bulk_id == request.bulk_id)
    ):
        return _existing(session, request.bulk_id, digest)
    conflicts = _used_message_ids(session, request)
    if conflicts:
        raise LaunchConflict("a messageId is already used by another call", conflicts)
    bulk_id = request.bulk_id or f"ivr-{uuid.uuid4()}"
    campaign = Campaign(
        campaign_id=str(uuid.uuid4()),
        bulk_id=bulk_id,
        name=request.name or bulk_id,
        scenario_id=str(request.messages[0].fields.get("scenarioId", "")),
        created_at=now,
        total_calls=request.destination_count,
        asynchronous=asynchronous,
        fingerprint=digest,
        messages=[dict(message.fields) for message in request.messages],
        client_notify_urls=[message.notify_url for message in request.messages],
        clamped=[clamp.as_json() for clamp in request.clamped],
    )
    try:
        with session.begin_nested():
            session.add(campaign)
            session.flush()
            _store_calls(session, campaign, request, batch_size, asynchronous, now)
    except IntegrityError as exc:
        if request.bulk_id is not None and session.scalar(
            select(func.count()).select_from(Campaign).where(Campaign.bulk_id == request.bulk_id)
        ):
            return _existing(session, request.bulk_id, digest)
        raise LaunchConflict("a messageId is already used by another call") from exc
    return Created(campaign, created=True)


def _call_rows(request: LaunchRequest) -> Iterator[tuple[int, str, str, str | None]]:
    for message in request.messages:
        callback_data = message.fields.get("callbackData")
        for destination in message.destinations:
            message_id = destination.message_id or str(uuid.uuid4())
            yield message.index, message_id, destination.to, callback_data


def _store_calls(
    session: Session,
    campaign: Campaign,
    request: LaunchRequest,
    batch_size: int,
    asynchronous: bool,
    now: datetime,
) -> None:
    not_before = now if asynchronous else now + SYNC_GRACE
    total = request.destination_count
    batch_ids = add_batches(session, campaign, total, batch_size, not_before, now=now)
    rows = (
        {
            "campaign_id": campaign.id,
            "batch_id": batch_ids[position // batch_size],
            "message_index": index,
            "message_id": message_id,
            "to_number": to,
            "callback_data": callback_data,
            "submit_state": SubmitState.QUEUED.value,
            "outcome": "pending",
            "status_final": False,
            "created_at": now,
            "updated_at": now,
        }
        for position, (index, message_id, to, callback_data) in enumerate(_call_rows(request))
    )
    bulk_insert(session, cast(Table, Call.__table__), rows)  # flat memory, COPY on PostgreSQL


def add_batches(
    session: Session,
    campaign: Campaign,
    calls: int,
    batch_size: int,
    not_before: datetime,
    *,
    now: datetime,
    resubmission: bool = False,
) -> list[int]:
    """Add the batches that will carry this many calls; return their ids in order."""
    first_seq = (
        session.scalar(select(func.max(Batch.seq)).where(Batch.campaign_id == campaign.id)) or 0
    )
    batches = [
        Batch(
            campaign_id=campaign.id,
            seq=first_seq + 1 + number,
            state=BatchState.QUEUED.value,
            size=min(batch_size, calls - start),
            not_before=not_before,
            created_at=now,
            resubmission=resubmission,
        )
        for number, start in enumerate(range(0, calls, batch_size))
    ]
    session.add_all(batches)
    session.flush()
    return [batch.id for batch in batches]


RESUBMITTABLE = (SubmitState.FAILED.value, SubmitState.UNKNOWN.value)


def prepare_resubmission(
    session: Session,
    campaign: Campaign,
    *,
    batch_size: int,
    now: datetime,
    claimed_before: datetime,
) -> int:
    """Queue the campaign's failed, unknown and stuck calls again, with the same messageIds.

    Stuck calls are those of batches claimed before `claimed_before` (the claim
    timeout, app.launch.submission.claim_timeout): a batch claimed since may still
    have its request in flight, and is left alone. Infobip answers status 23 for a
    messageId it already has, recorded as "already accepted": nobody is called
    twice. Returns how many calls were queued again (batches that were never sent
    stay queued as they are).
    """
    stale = select(Batch.id).where(
        Batch.campaign_id == campaign.id,
        Batch.state == BatchState.SUBMITTING.value,
        or_(Batch.claimed_at.is_(None), Batch.claimed_at < claimed_before),
    )
    call_ids = list(
        session.scalars(
            select(Call.id)
            .where(
                Call.campaign_id == campaign.id,
                or_(
                    Call.submit_state.in_(RESUBMITTABLE),
                    and_(
                        Call.submit_state == SubmitState.SUBMITTING.value,
                        Call.batch_id.in_(stale),
                    ),
                ),
            )
            .order_by(Call.id)
        )
    )
    if not call_ids:
        return 0
    session.execute(
        update(Batch)
        .where(Batch.id.in_(stale))
        .values(state=BatchState.DONE.value, finished_at=now, error="superseded by resubmission")
        .execution_options(synchronize_session=False)
    )
    batch_ids = add_batches(
        session, campaign, len(call_ids), batch_size, now, now=now, resubmission=True
    )
    for number, batch_id in enumerate(batch_ids):
        chunk = call_ids[number * batch_size : (number + 1) * batch_size]
        session.execute(
            update(Call)
            .where(Call.id.in_(chunk))
            .values(batch_id=batch_id, submit_state=SubmitState.QUEUED.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(call_ids)
