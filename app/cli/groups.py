"""The `ivrdesk` command groups that several modules add commands to."""

from __future__ import annotations

import click


@click.group("campaigns")
def campaigns_group() -> None:
    """Look at and repair campaigns."""


@click.group("calls")
def calls_group() -> None:
    """Look at calls."""


@click.group("reports")
def reports_group() -> None:
    """Replay stored reports and pull missed ones from Infobip."""
