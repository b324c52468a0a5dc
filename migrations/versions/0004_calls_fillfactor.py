"""Leave room in the pages of calls so that status updates stay HOT on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

A call's row is updated two or three times (claimed, answered by Infobip, moved by
its reports). PostgreSQL can write the new version into the same page without
touching the table's seven indexes (a heap-only tuple) when the page has room and no
indexed column changed: the claim and the submit answer never change one. With the
default fillfactor of 100 freshly loaded pages are full, so every one of those updates
added an entry to every index. Pages written from now on keep 30% free; existing
pages get the room when the table is rewritten (VACUUM FULL, pg_repack).
SQLite has no such setting: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 70


def upgrade() -> None:
    """Set the fillfactor of calls (PostgreSQL only)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE calls SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    """Back to the default fillfactor."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE calls RESET (fillfactor)")
