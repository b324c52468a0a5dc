"""Reporting views (docs/REPORTING.md) and the indexes behind the paginated lookups.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The views are raw SQL, the same text on both databases except where a dialect
needs its own words (the UTC day of a timestamp). They stay out of autogenerate
through migrations/env.py. The SQL is written out here, not imported from app/,
so that this revision keeps creating what it created when it was written.

A later revision that rebuilds `calls` or `campaigns` on SQLite (batch "move and
copy") must drop these views first and create them again afterwards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a call cost: Infobip charges pricePerSecond for the charged duration, or for
# the duration when no charged duration was reported (DESIGN.md "Looking up").
_COST = "c.price_per_second * COALESCE(c.charged_duration, c.duration)"

REPORT_CALLS = f"""
CREATE VIEW report_calls AS
SELECT
    c.id AS call_id,
    cp.bulk_id AS bulk_id,
    cp.campaign_id AS campaign_id,
    c.message_id AS message_id,
    c.to_number AS to_number,
    c.callback_data AS callback_data,
    c.submit_state AS submit_state,
    c.status_group_id AS status_group_id,
    c.status_group_name AS status_group_name,
    c.status_id AS status_id,
    c.status_name AS status_name,
    c.error_id AS error_id,
    c.error_name AS error_name,
    c.outcome AS outcome,
    c.answered_by AS answered_by,
    c.duration AS duration_s,
    c.charged_duration AS charged_duration_s,
    c.price_per_second AS price_per_second,
    ROUND({_COST}, 8) AS cost,
    c.currency AS currency,
    c.dtmf AS dtmf,
    c.collected AS collected,
    c.created_at AS created_at,
    c.sent_at AS sent_at,
    c.answered_at AS answered_at,
    c.ended_at AS ended_at,
    c.updated_at AS updated_at
FROM calls c
JOIN campaigns cp ON cp.id = c.campaign_id
"""

# A call is priced when its cost can be computed; only priced calls name a currency.
_PRICED_CURRENCY = f"CASE WHEN {_COST} IS NOT NULL THEN c.currency END"


def _count_where(condition: str, name: str) -> str:
    return f"    SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) AS {name},"


_GROUP_COUNTS = [
    _count_where(f"c.status_group_id = {group_id}", name)
    for group_id, name in [
        (1, "pending"),
        (3, "delivered"),
        (2, "undeliverable"),
        (4, "expired"),
        (5, "rejected"),
    ]
]
_OUTCOME_COUNTS = [
    _count_where(f"c.outcome = '{outcome}'", name)
    for outcome, name in [
        ("answered_human", "answered_human"),
        ("answered_machine", "answered_machine"),
        ("busy", "busy"),
        ("no_answer", "no_answer"),
        ("declined", "declined"),
        ("failed", "failed"),
        ("not_sent", "not_sent"),
        ("unknown", "unknown"),
        ("expired", "outcome_expired"),
        ("rejected", "outcome_rejected"),
        ("pending", "outcome_pending"),
    ]
]
_COUNTS = "\n".join(_GROUP_COUNTS + _OUTCOME_COUNTS)

REPORT_CAMPAIGN_SUMMARY = f"""
CREATE VIEW report_campaign_summary AS
SELECT
    cp.bulk_id AS bulk_id,
    cp.campaign_id AS campaign_id,
    cp.name AS name,
    cp.created_at AS created_at,
    COUNT(c.id) AS total_calls,
{_COUNTS}
    COALESCE(SUM(c.duration), 0) AS total_duration_s,
    COALESCE(SUM(c.charged_duration), 0) AS total_charged_duration_s,
    CASE WHEN COUNT(DISTINCT {_PRICED_CURRENCY}) = 1
         THEN ROUND(SUM({_COST}), 8) END AS total_cost,
    CASE COUNT(DISTINCT {_PRICED_CURRENCY})
         WHEN 0 THEN NULL
         WHEN 1 THEN MAX({_PRICED_CURRENCY})
         ELSE 'MIXED' END AS currency
FROM campaigns cp
LEFT JOIN calls c ON c.campaign_id = cp.id
GROUP BY cp.id, cp.bulk_id, cp.campaign_id, cp.name, cp.created_at
"""

REPORT_CAMPAIGN_COSTS = f"""
CREATE VIEW report_campaign_costs AS
SELECT
    cp.bulk_id AS bulk_id,
    c.currency AS currency,
    COUNT(c.id) AS priced_calls,
    ROUND(SUM({_COST}), 8) AS total_cost
FROM calls c
JOIN campaigns cp ON cp.id = c.campaign_id
WHERE {_COST} IS NOT NULL AND c.currency IS NOT NULL
GROUP BY cp.bulk_id, c.currency
"""

# The moment a call ended: Infobip's end time, else the time of its current status
# (a report without an end time, a refusal at submission), else its last change.
_ENDED = "COALESCE(c.ended_at, c.status_occurred_at, c.updated_at)"
# SQLite keeps UTC timestamps as text 'YYYY-MM-DD HH:MM:SS.ffffff'; PostgreSQL as timestamptz.
_DAY = {
    "sqlite": f"date({_ENDED})",
    "postgresql": f"CAST(({_ENDED} AT TIME ZONE 'UTC') AS date)",
}


def _daily_outcomes(dialect: str) -> str:
    return f"""
CREATE VIEW report_daily_outcomes AS
SELECT
    {_DAY[dialect]} AS day,
    c.outcome AS outcome,
    COUNT(*) AS calls,
    COALESCE(SUM(c.duration), 0) AS duration_s,
    COALESCE(SUM(c.charged_duration), 0) AS charged_duration_s
FROM calls c
WHERE c.outcome <> 'pending'
GROUP BY {_DAY[dialect]}, c.outcome
"""


VIEWS = [
    "report_calls",
    "report_campaign_summary",
    "report_campaign_costs",
    "report_daily_outcomes",
]


def upgrade() -> None:
    """Create the lookup indexes and the reporting views."""
    op.create_index("ix_campaigns_created_at_id", "campaigns", ["created_at", "id"])
    op.create_index("ix_calls_campaign_id_id", "calls", ["campaign_id", "id"])
    # Parked results are few among millions of events: a partial index finds them newest first.
    op.create_index(
        "ix_call_events_parked",
        "call_events",
        ["received_at", "id"],
        postgresql_where=sa.text("call_id IS NULL"),
        sqlite_where=sa.text("call_id IS NULL"),
    )
    dialect = op.get_bind().dialect.name
    for statement in [
        REPORT_CALLS,
        REPORT_CAMPAIGN_SUMMARY,
        REPORT_CAMPAIGN_COSTS,
        _daily_outcomes(dialect),
    ]:
        op.execute(statement)


def downgrade() -> None:
    """Drop the reporting views and the lookup indexes."""
    for view in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.drop_index("ix_call_events_parked", table_name="call_events")
    op.drop_index("ix_calls_campaign_id_id", table_name="calls")
    op.drop_index("ix_campaigns_created_at_id", table_name="campaigns")
