"""`ivrdesk dispatch`: the worker that submits queued batches and applies parked reports."""

from __future__ import annotations

import functools
import signal
import threading

import click
from flask.cli import with_appcontext

from app import app_state
from app.launch.dispatch import Duty, run_dispatcher
from app.reports.pull import pull_duty
from app.services import AppState


def dispatcher_duties(state: AppState) -> list[Duty]:
    """Name the dispatcher's periodic duties: in pull mode, pulling reports from Infobip."""
    settings = state.settings
    if not settings.pull_mode:
        return []
    if settings.infobip_missing:
        missing = ", ".join(settings.infobip_missing)
        click.echo(f"pulling reports is disabled (missing {missing})", err=True)
        return []
    pull = functools.partial(pull_duty, state.sessions, state.client())
    return [Duty("pull", settings.pull_interval, pull)]


@click.command("dispatch")
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
@with_appcontext
def dispatch_command(interval: float) -> None:
    """Submit queued batches and apply parked reports until SIGTERM or Ctrl-C.

    In pull mode (IVR_REPORTS_MODE=pull) also pull reports every IVR_PULL_INTERVAL seconds.
    """
    state = app_state()
    submitter = None
    if state.settings.launch_missing:
        missing = ", ".join(state.settings.launch_missing)
        click.echo(
            f"launching is disabled (missing {missing}): only sweeping parked reports", err=True
        )
    else:
        submitter = state.submitter("dispatch")
    duties = dispatcher_duties(state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(state.sessions, submitter, stop, interval=interval, duties=duties)
