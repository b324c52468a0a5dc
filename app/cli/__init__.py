"""The `ivrdesk` command group, one module per noun."""

from app.cli.commands import init_app, main

__all__ = ["init_app", "main"]
