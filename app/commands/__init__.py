"""Commands of the `ivrdesk` group that live beside app/cli.py, one module per topic."""
