"""`ivrdesk dispatch`: the worker that submits queued batches and applies parked reports."""

from __future__ import annotations

import signal
import threading

import click
from flask.cli import with_appcontext

from app import app_state
from app.launch.dispatch import Duty, run_dispatcher
from app.reports.reconcile import reconcile_round, rules_of


@click.command("dispatch")
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
@with_appcontext
def dispatch_command(interval: float) -> None:
    """Submit queued batches and apply parked reports until SIGTERM or Ctrl-C."""
    state = app_state()
    settings = state.settings
    submitter = None
    if settings.launch_missing:
        missing = ", ".join(state.settings.launch_missing)
        click.echo(
            f"launching is disabled (missing {missing}): only sweeping parked reports", err=True
        )
    else:
        submitter = state.submitter("dispatch")
    duties = []
    if settings.reconcile_interval and not settings.infobip_missing:
        rules = rules_of(settings)
        duties.append(
            Duty(
                "reconcile",
                settings.reconcile_interval,
                lambda: reconcile_round(state.sessions, state.client(), rules),
            )
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(state.sessions, submitter, stop, interval=interval, duties=duties)
