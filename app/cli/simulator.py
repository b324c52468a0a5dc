"""`ivrdesk simulator`: the fake Infobip."""

from __future__ import annotations

import click


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
