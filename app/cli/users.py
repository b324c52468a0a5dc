"""`ivrdesk users create|list|password|disable`: admin users."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app import app_state
from app.accounts.tokens import (
    AccountError,
    change_password,
    create_user,
    disable_user,
    find_users,
)
from app.cli.tables import format_table
from app.db import utcnow


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


@users_group.command("list")
@with_appcontext
def users_list() -> None:
    """List the admin users: name, role, created, disabled."""
    with app_state().sessions() as session:
        rows = [(u.name, u.role, u.created_at, u.disabled) for u in find_users(session)]
    click.echo(format_table(["name", "role", "created", "disabled"], rows))


@users_group.command("password")
@click.argument("name")
@with_appcontext
def users_password(name: str) -> None:
    """Set a user's password (prompted for, or read from standard input); ends their sessions."""
    password = _read_password()
    with app_state().sessions() as session:
        try:
            user = change_password(session, name, password)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"changed the password of {user.name!r}; every session of the user ended")


@users_group.command("disable")
@click.argument("name")
@with_appcontext
def users_disable(name: str) -> None:
    """Disable a user: no more logins, and every session of the user ends at once."""
    with app_state().sessions() as session:
        try:
            user = disable_user(session, name)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"disabled {user.name!r}; every session of the user ended")
