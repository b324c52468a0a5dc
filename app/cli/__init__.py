"""The `ivrdesk` command group, one module per noun; thin calls into the domain packages."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup

from app.cli.calls import calls_group
from app.cli.campaigns import campaigns_group
from app.cli.db import db_group
from app.cli.dispatch import dispatch_command
from app.cli.launch import launch_command
from app.cli.reconcile import reconcile_command
from app.cli.reports import reports_group
from app.cli.simulator import simulator_command
from app.cli.tokens import tokens_group
from app.cli.users import users_group
from app.config import ConfigError

__all__ = ["init_app", "main"]

COMMANDS = (
    db_group,
    tokens_group,
    users_group,
    launch_command,
    campaigns_group,
    calls_group,
    reports_group,
    reconcile_command,
    dispatch_command,
    simulator_command,
)


def init_app(app: Flask) -> None:
    """Make the commands available as `flask --app wsgi ...` too."""
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app() -> Flask:
    from app import create_app

    return create_app()


class IvrdeskGroup(FlaskGroup):
    """FlaskGroup that lists only its own commands, so `--help` needs no configuration."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Find one of the commands added to this group."""
        return click.Group.get_command(self, ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List the commands added to this group, without loading the app."""
        return click.Group.list_commands(self, ctx)


cli = IvrdeskGroup(
    name="ivrdesk", create_app=_create_app, add_default_commands=False, load_dotenv=False
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Run the `ivrdesk` command; a configuration error is one line and exit status 2."""
    try:
        cli.main(prog_name="ivrdesk")
    except ConfigError as exc:
        click.echo(f"ivrdesk: configuration error: {exc}", err=True)
        sys.exit(2)
