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
from app.reports.reconcile import reconcile_round, rules_of
from app.services import AppState


def dispatcher_duties(state: AppState) -> list[Duty]:
    """Name the dispatcher's periodic duties: reconciling, and pulling reports in pull mode.

    Both read Infobip (its logs, its kept reports): they need its address and credentials.
    """
    settings = state.settings
    wanted = settings.pull_mode or settings.reconcile_interval > 0
    if not wanted:
        return []
    if settings.infobip_missing:
        missing = ", ".join(settings.infobip_missing)
        click.echo(f"reconciling and pulling reports are disabled (missing {missing})", err=True)
        return []
    duties = []
    if settings.reconcile_interval:
        reconcile = functools.partial(
            reconcile_round, state.sessions, state.client(), rules_of(settings)
        )
        duties.append(Duty("reconcile", settings.reconcile_interval, reconcile))
    if settings.pull_mode:
        pull = functools.partial(pull_duty, state.sessions, state.client())
        duties.append(Duty("pull", settings.pull_interval, pull))
    return duties


@click.command("dispatch")
@click.option("--interval", default=1.0, show_default=True, help="seconds between passes")
@with_appcontext
def dispatch_command(interval: float) -> None:
    """Submit queued batches and apply parked reports until SIGTERM or Ctrl-C.

    Also reconcile with Infobip's logs every IVR_RECONCILE_INTERVAL seconds, and in pull
    mode (IVR_REPORTS_MODE=pull) pull reports every IVR_PULL_INTERVAL seconds.
    """
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
    duties = dispatcher_duties(state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_dispatcher(state.sessions, submitter, stop, interval=interval, duties=duties)
