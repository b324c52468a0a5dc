"""The schema: campaigns, batches, calls, their event history, raw reports, users, tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

PK = Annotated[int, mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime)]
Id200 = Annotated[str, mapped_column(String(200))]


class SubmitState(enum.StrEnum):
    """What happened when a call was handed to Infobip (DESIGN.md "Launching", step 4)."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"


class BatchState(enum.StrEnum):
    """A batch is queued, claimed for sending, or sent (whatever the answer)."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    DONE = "done"


class EventSource(enum.StrEnum):
    """Where a history event came from."""

    SUBMIT = "submit"
    REPORT = "report"
    PULL = "pull"
    OPERATOR = "operator"
    RECONCILE = "reconcile"  # settled from Infobip's voice logs (app.reports.reconcile)


class Role(enum.StrEnum):
    """What a user or token may do: viewers look, operators also launch."""

    VIEWER = "viewer"
    OPERATOR = "operator"


def _enum_check(name: str, column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class StatusColumns:
    """What a call takes on from the event that sets its status, under the same names.

    Calls and events both carry these; a call also keeps whether its status is final
    and when it occurred (status_final, status_occurred_at).
    """

    status_group_id: Mapped[int | None]
    status_group_name: Mapped[str | None] = mapped_column(String(64))
    status_id: Mapped[int | None]
    status_name: Mapped[str | None] = mapped_column(String(100))
    status_description: Mapped[str | None] = mapped_column(Text)
    error_group_id: Mapped[int | None]
    error_group_name: Mapped[str | None] = mapped_column(String(64))
    error_id: Mapped[int | None]
    error_name: Mapped[str | None] = mapped_column(String(100))
    error_description: Mapped[str | None] = mapped_column(Text)
    error_permanent: Mapped[bool | None] = mapped_column(Boolean)
    duration: Mapped[int | None]
    charged_duration: Mapped[int | None]
    price_per_second: Mapped[Decimal | None] = mapped_column(Numeric(18, 8))
    currency: Mapped[str | None] = mapped_column(String(3))
    answered_by: Mapped[str | None] = mapped_column(String(16))
    dtmf: Mapped[str | None] = mapped_column(Text)
    collected: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The names of StatusColumns, in order: what every path copies from an event to its call.
STATUS_COLUMNS: tuple[str, ...] = tuple(StatusColumns.__annotations__)


class Campaign(Base):
    """What an operator launched: one Infobip bulk of one or more messages."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_created_at_id", "created_at", "id"),)

    id: Mapped[PK]
    campaign_id: Mapped[str] = mapped_column(String(36), unique=True)
    bulk_id: Mapped[Id200] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    scenario_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    total_calls: Mapped[int]
    asynchronous: Mapped[bool] = mapped_column(Boolean, default=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    client_notify_urls: Mapped[list[str | None]] = mapped_column(JSON)
    clamped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    batches: Mapped[list[Batch]] = relationship(back_populates="campaign", order_by="Batch.seq")

    def message_fields(self, index: int) -> dict[str, Any]:
        """Return the stored fields of one launch message ({} when there is no such index)."""
        messages = self.messages or []
        fields = messages[index] if 0 <= index < len(messages) else {}
        return fields if isinstance(fields, dict) else {}


class Batch(Base):
    """Up to IVR_BATCH_SIZE calls sent to Infobip in one request, claimed once."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq"),
        _enum_check("state", "state", BatchState),
        Index("ix_batches_state_not_before", "state", "not_before"),
    )

    id: Mapped[PK]
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default=BatchState.QUEUED.value)
    size: Mapped[int]
    not_before: Mapped[Timestamp]
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resubmission: Mapped[bool] = mapped_column(Boolean, default=False)
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="batches")


OPEN_CALLS = "NOT status_final AND submit_state IN ('accepted', 'unknown', 'submitting')"


class Call(StatusColumns, Base):
    """One destination of a campaign (Infobip's "message"), with its current state."""

    __tablename__ = "calls"
    __table_args__ = (
        _enum_check("submit_state", "submit_state", SubmitState),
        Index("ix_calls_to_number_id", "to_number", "id"),
        Index("ix_calls_callback_data_id", "callback_data", "id"),
        Index("ix_calls_batch_id", "batch_id"),
        Index("ix_calls_campaign_id_id", "campaign_id", "id"),
        # The calls a reconciliation looks at (app.reports.reconcile): not final yet.
        Index(
            "ix_calls_open",
            "campaign_id",
            "id",
            postgresql_where=text(OPEN_CALLS),
            sqlite_where=text(OPEN_CALLS),
        ),
    )

    id: Mapped[PK]
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"))
    message_index: Mapped[int]
    message_id: Mapped[Id200] = mapped_column(unique=True)
    to_number: Mapped[str] = mapped_column(String(20))
    callback_data: Mapped[str | None] = mapped_column(String(200))
    submit_state: Mapped[str] = mapped_column(String(16), default=SubmitState.QUEUED.value)
    submit_error: Mapped[str | None] = mapped_column(Text)
    status_final: Mapped[bool] = mapped_column(Boolean, default=False)
    status_occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    updated_at: Mapped[Timestamp] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship()


RECONCILE_EVENTS = "source = 'reconcile'"


class CallEvent(StatusColumns, Base):
    """One row of a call's history; append-only. call_id is null while parked."""

    __tablename__ = "call_events"
    __table_args__ = (
        _enum_check("source", "source", EventSource),
        Index("ix_call_events_call_id_received_at", "call_id", "received_at"),
        Index(
            "ix_call_events_parked_message_id",
            "message_id",
            postgresql_where=text("call_id IS NULL"),
            sqlite_where=text("call_id IS NULL"),
        ),
        Index(
            "ix_call_events_parked",
            "received_at",
            "id",
            postgresql_where=text("call_id IS NULL"),
            sqlite_where=text("call_id IS NULL"),
        ),
        # What the reconciliation recorded, counted by every /metrics scrape.
        Index(
            "ix_call_events_reconcile",
            "submit_state",
            postgresql_where=text(RECONCILE_EVENTS),
            sqlite_where=text(RECONCILE_EVENTS),
        ),
    )

    id: Mapped[PK]
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(200))
    inbound_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_reports.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(16))
    submit_state: Mapped[str | None] = mapped_column(String(16))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    occurred_at_text: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    callback_data: Mapped[str | None] = mapped_column(String(200))
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    duplicates: Mapped[int] = mapped_column(default=0)

    call: Mapped[Call | None] = relationship()


class InboundReport(Base):
    """A raw body posted to the notify endpoint, kept before anything parses it."""

    __tablename__ = "inbound_reports"

    id: Mapped[PK]
    received_at: Mapped[Timestamp] = mapped_column(default=utcnow, index=True)
    content_type: Mapped[str] = mapped_column(String(200))
    peer: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    items: Mapped[int | None]
    parse_error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A person who logs in to the admin pages; the password is stored hashed."""

    __tablename__ = "users"
    __table_args__ = (_enum_check("role", "role", Role),)

    id: Mapped[PK]
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # In the session cookie; raised by logout, a password change and disabling, which
    # ends every session of the user on every host at once.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (_enum_check("role", "role", Role),)

    id: Mapped[PK]
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Timestamp] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginAttempt(Base):
    """A failed admin login, kept for the rate limit's window (app/accounts/throttle.py)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_user_name_attempted_at", "user_name", "attempted_at"),
        Index("ix_login_attempts_address_attempted_at", "address", "attempted_at"),
        Index("ix_login_attempts_attempted_at", "attempted_at"),
    )

    id: Mapped[PK]
    user_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[Timestamp]
