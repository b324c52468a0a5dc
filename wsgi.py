"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

import sys

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.stderr.write(f"ivrdesk: configuration error: {exc}\n")
    raise SystemExit(2) from exc
