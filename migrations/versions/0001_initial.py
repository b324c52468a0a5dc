"""Initial schema: campaigns, batches, calls, call_events, inbound_reports, users, api_tokens.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'operator')", name=op.f("ck_api_tokens_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("bulk_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scenario_id", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_calls", sa.Integer(), nullable=False),
        sa.Column("asynchronous", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("client_notify_urls", sa.JSON(), nullable=False),
        sa.Column("clamped", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("bulk_id", name=op.f("uq_campaigns_bulk_id")),
        sa.UniqueConstraint("campaign_id", name=op.f("uq_campaigns_campaign_id")),
    )
    op.create_table(
        "inbound_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=True),
        sa.Column("parse_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_reports")),
    )
    with op.batch_alter_table("inbound_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_reports_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'operator')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resubmission", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'submitting', 'done')", name=op.f("ck_batches_state")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_batches_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("campaign_id", "seq", name=op.f("uq_batches_campaign_id_seq")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index("ix_batches_state_not_before", ["state", "not_before"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("message_index", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("callback_data", sa.String(length=200), nullable=True),
        sa.Column("submit_state", sa.String(length=16), nullable=False),
        sa.Column("submit_error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("status_group_id", sa.Integer(), nullable=True),
        sa.Column("status_group_name", sa.String(length=64), nullable=True),
        sa.Column("status_id", sa.Integer(), nullable=True),
        sa.Column("status_name", sa.String(length=100), nullable=True),
        sa.Column("status_description", sa.Text(), nullable=True),
        sa.Column("status_final", sa.Boolean(), nullable=False),
        sa.Column("status_occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_group_id", sa.Integer(), nullable=True),
        sa.Column("error_group_name", sa.String(length=64), nullable=True),
        sa.Column("error_id", sa.Integer(), nullable=True),
        sa.Column("error_name", sa.String(length=100), nullable=True),
        sa.Column("error_description", sa.Text(), nullable=True),
        sa.Column("error_permanent", sa.Boolean(), nullable=True),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("charged_duration", sa.Integer(), nullable=True),
        sa.Column("price_per_second", sa.Numeric(precision=18, scale=8), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("answered_by", sa.String(length=16), nullable=True),
        sa.Column("dtmf", sa.Text(), nullable=True),
        sa.Column("collected", sa.JSON(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "submit_state IN ('queued', 'submitting', 'accepted', 'rejected', 'failed', 'unknown')",
            name=op.f("ck_calls_submit_state"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_calls_batch_id_batches"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_calls_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("message_id", name=op.f("uq_calls_message_id")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_batch_id", ["batch_id"], unique=False)
        batch_op.create_index("ix_calls_callback_data", ["callback_data"], unique=False)
        batch_op.create_index(
            "ix_calls_campaign_id_outcome", ["campaign_id", "outcome"], unique=False
        )
        batch_op.create_index("ix_calls_to_number", ["to_number"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("call_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column(
            "inbound_report_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("submit_state", sa.String(length=16), nullable=True),
        sa.Column("status_group_id", sa.Integer(), nullable=True),
        sa.Column("status_group_name", sa.String(length=64), nullable=True),
        sa.Column("status_id", sa.Integer(), nullable=True),
        sa.Column("status_name", sa.String(length=100), nullable=True),
        sa.Column("status_description", sa.Text(), nullable=True),
        sa.Column("error_group_id", sa.Integer(), nullable=True),
        sa.Column("error_group_name", sa.String(length=64), nullable=True),
        sa.Column("error_id", sa.Integer(), nullable=True),
        sa.Column("error_name", sa.String(length=100), nullable=True),
        sa.Column("error_description", sa.Text(), nullable=True),
        sa.Column("error_permanent", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at_text", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("charged_duration", sa.Integer(), nullable=True),
        sa.Column("price_per_second", sa.Numeric(precision=18, scale=8), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("answered_by", sa.String(length=16), nullable=True),
        sa.Column("dtmf", sa.Text(), nullable=True),
        sa.Column("collected", sa.JSON(), nullable=True),
        sa.Column("callback_data", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=True),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "source IN ('submit', 'report', 'pull', 'operator')", name=op.f("ck_call_events_source")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["inbound_report_id"],
            ["inbound_reports.id"],
            name=op.f("fk_call_events_inbound_report_id_inbound_reports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_call_events_dedupe_key")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_call_events_call_id_received_at", ["call_id", "received_at"], unique=False
        )
        batch_op.create_index("ix_call_events_message_id", ["message_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""

    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index("ix_call_events_message_id")
        batch_op.drop_index("ix_call_events_call_id_received_at")

    op.drop_table("call_events")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_to_number")
        batch_op.drop_index("ix_calls_campaign_id_outcome")
        batch_op.drop_index("ix_calls_callback_data")
        batch_op.drop_index("ix_calls_batch_id")

    op.drop_table("calls")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index("ix_batches_state_not_before")

    op.drop_table("batches")
    op.drop_table("users")
    with op.batch_alter_table("inbound_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_reports_received_at"))

    op.drop_table("inbound_reports")
    op.drop_table("campaigns")
    op.drop_table("api_tokens")
