"""`ivrdesk dispatch`: the worker that submits queued batches and applies parked reports."""

from __future__ import annotations

import signal
import threading

import click
from flask.cli import with_appcontext

from app import app_state
from app.launch.dispatch import run_dispatcher


@click.command("dispatch")
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
@with_appcontext
def dispatch_command(interval: float) -> None:
    """Submit queued batches and apply parked reports until SIGTERM or Ctrl-C."""
    state = app_state()
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
