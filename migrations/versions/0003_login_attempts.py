"""Failed admin logins, counted per user name and per client address for the rate limit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

The counters live in the database, not in process memory, so every gunicorn
worker on every host sees the same failures (DESIGN.md "Scaling out"). Rows
older than the rate limit's window are deleted as new failures come in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create login_attempts and its indexes."""
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index(
        "ix_login_attempts_user_name_attempted_at",
        "login_attempts",
        ["user_name", "attempted_at"],
    )
    op.create_index(
        "ix_login_attempts_address_attempted_at", "login_attempts", ["address", "attempted_at"]
    )
    op.create_index("ix_login_attempts_attempted_at", "login_attempts", ["attempted_at"])


def downgrade() -> None:
    """Drop login_attempts."""
    op.drop_index("ix_login_attempts_attempted_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_address_attempted_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_user_name_attempted_at", table_name="login_attempts")
    op.drop_table("login_attempts")
