"""The HTML admin pages: views, their formatting helpers and the login session."""

from app.web.admin.views import init_app

__all__ = ["init_app"]
