"""`ivrdesk tokens create`: API tokens."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app import app_state
from app.accounts.tokens import AccountError, create_token
from app.db import utcnow


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator"]), required=True)
@with_appcontext
def tokens_create(name: str, role: str) -> None:
    """Create an API token; the token is printed once, as the last line."""
    with app_state().sessions() as session:
        try:
            token, secret = create_token(session, name, role, now=utcnow())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(
            f"created {token.role} token {token.name!r} (id {token.id}); it is shown only now:"
        )
    click.echo(secret)
