"""A session version per admin user: logout, a password change and disabling end every session.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The admin session is a signed cookie; it carries the user's session version and
is accepted only while the user's row still has that version (app/web/admin/session.py).
Raising the version in the database ends every cookie of the user on every host.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add users.session_version, 0 for the users there are."""
    op.add_column(
        "users", sa.Column("session_version", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    """Drop users.session_version (SQLite 3.35 and later drop a column in place)."""
    op.drop_column("users", "session_version")
