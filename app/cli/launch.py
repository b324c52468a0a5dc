"""`ivrdesk launch`: a campaign from a JSON request body or a CSV of numbers."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from app import app_state
from app.db import utcnow
from app.launch.answer import launch_status_code
from app.launch.campaigns import LaunchConflict, fingerprint, launch_campaign, send_batches
from app.launch.csv import CsvLaunchError, read_csv_launch
from app.launch.request import LaunchValidationError, parse_launch
from app.launch.submission import Submitter
from app.models import Campaign


def _launch(body: Any, parallel: int) -> int:
    state = app_state()
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
                send=functools.partial(send_with_progress, submitter, parallel),
            )
        except LaunchConflict as exc:
            details = "".join(f"\n  {p.path}: {p.message}" for p in exc.problems)
            raise click.ClickException(f"{exc.message}{details}") from exc
    campaign = launched.campaign
    if not launched.created:
        click.echo(f"campaign {campaign.bulk_id} exists already with this body; nothing sent")
    return summary(campaign, launched.states)


PARALLEL = click.option(
    "--parallel",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="batches in flight to Infobip at once",
)


def send_with_progress(
    submitter: Submitter, parallel: int, bulk_id: str, batch_ids: list[int]
) -> None:
    """Send a campaign's batches, `parallel` in flight, under a progress bar on stderr."""
    with click.progressbar(
        length=len(batch_ids), label=f"sending {bulk_id}", file=sys.stderr
    ) as bar:
        send_batches(submitter, batch_ids, parallel=parallel, on_sent=lambda: bar.update(1))


def summary(campaign: Campaign, states: dict[str, int]) -> int:
    """Print a campaign's calls by submit state; return the exit status (1: none got through)."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    click.echo(f"campaign {campaign.bulk_id} ({campaign.campaign_id}): {counts}")
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
