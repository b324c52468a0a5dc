"""The OpenAPI document, public at /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app import app_state
from app.openapi.document import build_document

bp = Blueprint("docs", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI 3.1 document; its server is IVR_PUBLIC_URL, else this request's."""
    # Without IVR_PUBLIC_URL the Host is echoed: IVR_ALLOWED_HOSTS (app.web.hosts) limits it.
    server = app_state().settings.public_url or request.host_url.rstrip("/")
    return jsonify({**build_document(), "servers": [{"url": server}]})
