"""The OpenAPI document, public at /api/v1/openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from app.openapi.document import build_document

bp = Blueprint("docs", __name__)


@bp.get("/api/v1/openapi.json")
def openapi_document() -> Response:
    """Serve the OpenAPI 3.1 document, with this request's base URL as its server."""
    server = request.host_url.rstrip("/")  # behind the proxy: its scheme and host (ProxyFix)
    return jsonify({**build_document(), "servers": [{"url": server}]})
