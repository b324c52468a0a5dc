"""`ivrdesk campaigns list|show|resubmit`: look at and repair campaigns."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app import app_state
from app.cli.launch import PARALLEL, send_with_progress, summary
from app.cli.tables import LIMIT, field_lines, format_table, money, time_cell
from app.db import utcnow
from app.launch.answer import count_submit_states
from app.launch.campaigns import NotFound, get_campaign, prepare_resubmission
from app.launch.submission import claim_timeout, queued_batches
from app.lookups.lists import find_campaigns
from app.lookups.resources import campaign_resource


@click.group("campaigns")
def campaigns_group() -> None:
    """Look at and repair campaigns."""


@campaigns_group.command("list")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@with_appcontext
def campaigns_list(limit: int) -> None:
    """List campaigns, newest first, with their outcome counts."""
    with app_state().sessions() as session:
        page = find_campaigns(session, limit=limit)
    if not page.items:
        click.echo("no campaigns yet")
        return
    headers = ["CREATED", "BULK ID", "NAME", "CALLS", "PENDING", "HUMAN", "MACHINE"]
    headers += ["BUSY", "NO ANSWER", "OTHER", "COST"]
    rows = []
    for c in page.items:
        outcomes = c["outcomes"]
        named = [outcomes.get(k, 0) for k in ("pending", "answered_human", "answered_machine")]
        named += [outcomes.get(k, 0) for k in ("busy", "no_answer")]
        other = sum(outcomes.values()) - sum(named)
        first = [time_cell(c["createdAt"]), c["bulkId"], c["name"], c["totalCalls"]]
        rows.append([*first, *named, other, money(c["cost"])])
    click.echo(format_table(headers, rows))
    if page.next:
        click.echo(f"(the newest {limit}; raise --limit for more)")


def _counts_table(title: str, counts: dict[str, int], total: int) -> str:
    """Render counts with their share of the calls, largest first."""
    rows = [
        [key, count, f"{100 * count / total:.1f}%" if total else "-"]
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return format_table([title, "CALLS", "SHARE"], rows or [["-", 0, "-"]])


@campaigns_group.command("show")
@click.argument("bulk_id")
@with_appcontext
def campaigns_show(bulk_id: str) -> None:
    """Show a campaign with its calls counted by submit state, status group and outcome."""
    with app_state().sessions() as session:
        try:
            campaign = campaign_resource(session, get_campaign(session, bulk_id))
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    total = campaign["totalCalls"]
    summary = field_lines(
        [
            ("bulkId", campaign["bulkId"]),
            ("campaignId", campaign["campaignId"]),
            ("name", campaign["name"]),
            ("scenarioId", campaign["scenarioId"]),
            ("created", time_cell(campaign["createdAt"])),
            ("calls", total),
            ("duration", f"{campaign['totalDuration']} s"),
            ("charged", f"{campaign['totalChargedDuration']} s"),
            ("cost", money(campaign["cost"])),
        ]
    )
    tables = [
        _counts_table("SUBMIT STATE", campaign["submitStates"], total),
        _counts_table("STATUS GROUP", campaign["statusGroups"], total),
        _counts_table("OUTCOME", campaign["outcomes"], total),
    ]
    click.echo("\n\n".join([summary, *tables]))


@campaigns_group.command("resubmit")
@click.argument("bulk_id")
@PARALLEL
@with_appcontext
def campaigns_resubmit(bulk_id: str, parallel: int) -> None:
    """Send a campaign's queued, failed and unknown calls again, reusing their messageIds."""
    state = app_state()
    if state.settings.launch_missing:
        raise click.ClickException(
            "launching is disabled: missing " + ", ".join(state.settings.launch_missing)
        )
    with state.sessions() as session:
        try:
            campaign = get_campaign(session, bulk_id)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from exc
        now = utcnow()
        requeued = prepare_resubmission(
            session, campaign, batch_size=state.settings.batch_size, now=now,
            claimed_before=now - claim_timeout(state.settings.infobip_timeout),
        )  # fmt: skip
        session.commit()
        batch_ids = queued_batches(session, campaign.id)
        in_flight = count_submit_states(session, campaign.id).get("submitting", 0)
    click.echo(f"{requeued} call(s) queued again; {len(batch_ids)} batch(es) to send")
    if in_flight:
        click.echo(
            f"{in_flight} call(s) left alone: their batch was claimed less than "
            f"{claim_timeout(state.settings.infobip_timeout)} ago and may still be on its way"
        )
    send_with_progress(state.submitter("cli"), parallel, bulk_id, batch_ids)
    with state.sessions() as session:
        states = count_submit_states(session, campaign.id)
    sys.exit(summary(campaign, states))
