"""One JSON error shape for every API failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.launch.campaigns import LaunchConflict, NotFound
from app.launch.request import LaunchValidationError, Problem

API_PREFIXES = ("/api/", "/voice/", "/notify/")


class ApiError(Exception):
    """An answer in the common error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Describe the error; details name JSON paths."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_body(code: str, message: str, details: list[Problem] | None = None) -> dict[str, Any]:
    """Build the common error object."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [{"path": p.path, "message": p.message} for p in details or []],
        }
    }


def error_response(error: ApiError) -> Response:
    """Turn an ApiError into a JSON response."""
    response = jsonify(error_body(error.code, error.message, error.details))
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if not request.path.startswith(API_PREFIXES):
        return exc
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(ApiError(exc.code or 500, code, exc.description or code))
    if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that map exceptions to the error shape."""
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(LaunchValidationError)
    def _invalid(exc: LaunchValidationError) -> Response:
        count = len(exc.problems)
        message = f"the launch has {count} problem{'s' if count != 1 else ''}; nothing was stored"
        return error_response(ApiError(400, "validation_error", message, exc.problems))

    @app.errorhandler(LaunchConflict)
    def _conflict(exc: LaunchConflict) -> Response:
        return error_response(ApiError(409, "conflict", exc.message, exc.problems))

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return error_response(ApiError(404, "not_found", str(exc)))
