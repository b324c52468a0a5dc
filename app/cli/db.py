"""`ivrdesk db upgrade`: migrate the database."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import app_state
from app.migrate import upgrade


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    upgrade(app_state().engine)
    click.echo("database is at the newest revision")
