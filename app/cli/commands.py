"""The `ivrdesk` command group; thin calls into the domain modules."""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

import app.cli.lookups  # registers the lookup commands
import app.cli.reports  # noqa: F401  (registers the reports commands)
from app.accounts.tokens import AccountError, create_token, create_user
from app.cli.groups import calls_group, campaigns_group, reports_group
from app.config import ConfigError
from app.db import utcnow
from app.launch.answer import count_submit_states, launch_status_code
from app.launch.campaigns import (
    LaunchConflict,
    fingerprint,
    get_campaign,
    launch_campaign,
    prepare_resubmission,
    send_batches,
)
from app.launch.csv import CsvLaunchError, read_csv_launch
from app.launch.dispatch import run_dispatcher
from app.launch.request import LaunchValidationError, parse_launch
from app.launch.submission import Submitter, queued_batches
from app.migrate import upgrade
from app.models import Campaign
from app.services import AppState, app_state


def _state() -> AppState:
    return app_state()


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    upgrade(_state().engine)
    click.echo("database is at the newest revision")


@click.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator"]), required=True)
@with_appcontext
def tokens_create(name: str, role: str) -> None:
    """Create an API token; the token is printed once, as the last line."""
    with _state().sessions() as session:
        try:
            token, secret = create_token(session, name, role, now=utcnow())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(
            f"created {token.role} token {token.name!r} (id {token.id}); it is shown only now:"
        )
    click.echo(secret)


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
    with _state().sessions() as session:
        try:
            user = create_user(session, name, role, password, now=utcnow())
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"created {user.role} user {user.name!r}")


def _launch(body: Any, parallel: int) -> int:
    state = _state()
    if state.settings.launch_missing:
        missing = ", ".join(state.settings.launch_missing)
        raise click.ClickException(f"launching is disabled: missing {missing}")
    try:
        request = parse_launch(body, now=utcnow())
    except LaunchValidationError as exc:
        lines = [f"  {p.path or '(body)'}: {p.message}" for p in exc.problems]
        raise click.ClickException(
            "the launch is invalid; nothing was stored\n" + "\n".join(lines)
        ) from exc
    submitter = state.submitter("cli")
    with state.sessions() as session:
        try:
            launched = launch_campaign(
                session,
                submitter,
                request,
                digest=fingerprint(body),
                batch_size=state.settings.batch_size,
                asynchronous=False,
                send=functools.partial(_send_with_progress, submitter, parallel),
            )
        except LaunchConflict as exc:
            details = "".join(f"\n  {p.path}: {p.message}" for p in exc.problems)
            raise click.ClickException(f"{exc.message}{details}") from exc
    campaign = launched.campaign
    if not launched.created:
        click.echo(f"campaign {campaign.bulk_id} exists already with this body; nothing sent")
    return _summary(campaign, launched.states)


PARALLEL = click.option(
    "--parallel",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="batches in flight to Infobip at once",
)


def _send_with_progress(
    submitter: Submitter, parallel: int, bulk_id: str, batch_ids: list[int]
) -> None:
    with click.progressbar(
        length=len(batch_ids), label=f"sending {bulk_id}", file=sys.stderr
    ) as bar:
        send_batches(submitter, batch_ids, parallel=parallel, on_sent=lambda: bar.update(1))


def _summary(campaign: Campaign, states: dict[str, int]) -> int:
    summary = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    click.echo(f"campaign {campaign.bulk_id} ({campaign.campaign_id}): {summary}")
    return 0 if launch_status_code(states) < 500 else 1


@click.command("launch")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scenario", help="scenarioId (with --csv)")
@click.option("--from", "sender", help="caller number (with --csv)")
@click.option("--callback-data", help="callbackData for every call (with --csv)")
@click.option("--bulk-id", help="bulkId (with --csv; default: a new one)")
@click.option("--name", help="campaign name (with --csv)")
@PARALLEL
@with_appcontext
def launch_command(
    file: Path | None,
    csv_file: Path | None,
    scenario: str | None,
    sender: str | None,
    callback_data: str | None,
    bulk_id: str | None,
    name: str | None,
    parallel: int,
) -> None:
    """Launch a campaign from a JSON request body, or from a CSV of numbers."""
    if (file is None) == (csv_file is None):
        raise click.UsageError("give either FILE.json or --csv FILE")
    if file is not None:
        try:
            body = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{file}: not valid JSON: {exc}") from exc
    else:
        assert csv_file is not None
        if not scenario:
            raise click.UsageError("--csv needs --scenario")
        try:
            body = read_csv_launch(
                csv_file,
                scenario_id=scenario,
                sender=sender,
                callback_data=callback_data,
                bulk_id=bulk_id,
                name=name,
            )
        except CsvLaunchError as exc:
            raise click.ClickException(str(exc)) from exc
    sys.exit(_launch(body, parallel))


@campaigns_group.command("resubmit")
@click.argument("bulk_id")
@PARALLEL
@with_appcontext
def campaigns_resubmit(bulk_id: str, parallel: int) -> None:
    """Send a campaign's queued, failed and unknown calls again, reusing their messageIds."""
    state = _state()
    if state.settings.launch_missing:
        raise click.ClickException(
            "launching is disabled: missing " + ", ".join(state.settings.launch_missing)
        )
    with state.sessions() as session:
        try:
            campaign = get_campaign(session, bulk_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        requeued = prepare_resubmission(
            session, campaign, batch_size=state.settings.batch_size, now=utcnow()
        )
        session.commit()
        batch_ids = queued_batches(session, campaign.id)
    click.echo(f"{requeued} call(s) queued again; {len(batch_ids)} batch(es) to send")
    _send_with_progress(state.submitter("cli"), parallel, bulk_id, batch_ids)
    with state.sessions() as session:
        states = count_submit_states(session, campaign.id)
    sys.exit(_summary(campaign, states))


@click.command("dispatch")
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
@with_appcontext
def dispatch_command(interval: float) -> None:
    """Submit queued batches and apply parked reports until SIGTERM or Ctrl-C."""
    state = _state()
    submitter = None
    if state.settings.launch_missing:
        missing = ", ".join(state.settings.launch_missing)
        click.echo(
            f"launching is disabled (missing {missing}): only sweeping parked reports", err=True
        )
    else:
        submitter = state.submitter("dispatch")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(state.sessions, submitter, stop, interval=interval)


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--api-key", default="sim-key", show_default=True, envvar="SIMULATOR_API_KEY")
@click.option("--delay", default=2.0, show_default=True, help="seconds before reports are posted")
def simulator_command(host: str, port: int, api_key: str, delay: float) -> None:
    """Run the fake Infobip on HOST:PORT."""
    from app.simulator.server import ReportPlan, Simulator, serve

    click.echo(f"fake Infobip on http://{host}:{port} (API key {api_key!r})", err=True)
    serve(host, port, Simulator(api_key=api_key, plan=ReportPlan(delay=delay)))


COMMANDS = (
    db_group,
    tokens_group,
    users_group,
    launch_command,
    campaigns_group,
    calls_group,
    reports_group,
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
