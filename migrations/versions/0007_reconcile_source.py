"""Events settled from Infobip's voice logs: call_events.source may be 'reconcile'.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

DESIGN.md "Reconciliation with Infobip": an unknown submission or a missing final
report is settled from GET /tts/3/logs and recorded with source 'reconcile'. The
CHECK constraint ck_call_events_source is widened; on SQLite, Alembic's batch mode
rebuilds call_events (no view reads that table, so the reporting views stay). Two
partial indexes: the calls a reconciliation looks at (not final, submitted or in
doubt), and the events it recorded, which every /metrics scrape counts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "source IN ('submit', 'report', 'pull', 'operator')"
NEW = "source IN ('submit', 'report', 'pull', 'operator', 'reconcile')"
RECONCILE_EVENTS = "source = 'reconcile'"
OPEN_CALLS = "NOT status_final AND submit_state IN ('accepted', 'unknown', 'submitting')"


def _replace_check(condition: str) -> None:
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_call_events_source"), type_="check")
        batch_op.create_check_constraint(op.f("ck_call_events_source"), condition)


def upgrade() -> None:
    """Allow source 'reconcile'; index the calls still open."""
    _replace_check(NEW)
    op.create_index(
        "ix_calls_open",
        "calls",
        ["campaign_id", "id"],
        postgresql_where=sa.text(OPEN_CALLS),
        sqlite_where=sa.text(OPEN_CALLS),
    )
    op.create_index(
        "ix_call_events_reconcile",
        "call_events",
        ["submit_state"],
        postgresql_where=sa.text(RECONCILE_EVENTS),
        sqlite_where=sa.text(RECONCILE_EVENTS),
    )


def downgrade() -> None:
    """Drop the indexes; events of source 'reconcile' become 'pull' (the closest older kind)."""
    op.drop_index("ix_call_events_reconcile", table_name="call_events")
    op.drop_index("ix_calls_open", table_name="calls")
    op.execute("UPDATE call_events SET source = 'pull' WHERE source = 'reconcile'")
    _replace_check(OLD)
