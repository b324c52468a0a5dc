"""`ivrdesk users create`: admin users."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app.accounts.tokens import AccountError, create_user
from app.db import utcnow
from app.services import app_state


@click.group("users")
def users_group() -> None:
    """Manage admin users."""


def _read_password() -> str:
    if sys.stdin.isatty():
        value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        return value
    return sys.stdin.readline().rstrip("\r\n")


@users_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator"]), required=True)
@with_appcontext
def users_create(name: str, role: str) -> None:
    """Create an admin user; the password is prompted for, or read from standard input."""
    password = _read_password()
    with app_state().sessions() as session:
        try:
            user = create_user(session, name, role, password, now=utcnow())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"created {user.role} user {user.name!r}")
