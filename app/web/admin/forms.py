"""Size limits of the admin forms (login, logout, search): each is a few short fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Request

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

URL_PREFIX = "/admin"
# The longest field of any admin form is a password of at most 1,024 characters.
MAX_FORM_FIELD = 4 * 1024
# A whole admin request: its few fields with room for escaping. Nothing is uploaded.
MAX_FORM_BODY = 16 * 1024


class AdminFormRequest(Request):
    """Flask's request; under /admin/ the body and each multipart field are size-limited.

    The limits are set as the request is made, so they hold before anything reads
    the form (CSRF protection reads it first): a larger body answers 413, and so
    does a body without a Content-Length (browsers always send one), which Werkzeug
    would otherwise cut silently at the limit.
    """

    def __init__(
        self, environ: WSGIEnvironment, populate_request: bool = True, shallow: bool = False
    ) -> None:
        """Make the request, with the limits when it is for an admin page."""
        super().__init__(environ, populate_request, shallow)
        if self.path.startswith(f"{URL_PREFIX}/"):
            self.max_content_length = MAX_FORM_BODY if self.content_length is not None else 0
            self.max_form_memory_size = MAX_FORM_FIELD
