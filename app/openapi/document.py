"""The OpenAPI 3.1 document of ivrdesk's HTTP interface, built from app/openapi/schemas.py; pure.

Every schema comes from a pydantic model's JSON Schema (DESIGN.md "Stack":
never a hand-kept copy); this module only says which model goes where. The
document is built once per process; the view adds `servers` from the request.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.infobip.codes import Outcome
from app.lookups.paging import DEFAULT_LIMIT, MAX_LIMIT
from app.openapi import schemas

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_JSON = "application/json"
_TEXT_LIMIT = 200  # app/listings.py: text filters longer than this are refused
API: list[dict[str, list[str]]] = [{"bearer": []}, {"app": []}]
PUBLIC: list[dict[str, list[str]]] = []

# Answers shared by many operations: status -> (name, description).
_COMMON = {
    "400": ("BadRequest", "The request is not valid; `details` names each problem by path."),
    "401": ("Unauthorized", "No valid API token (or notify token) was given."),
    "403": ("Forbidden", "The token's role is too low, or the source address is not allowed."),
    "404": ("NotFound", "No campaign or call has this id."),
    "409": ("Conflict", "The bulkId exists with another body, or a messageId is taken."),
    "413": ("PayloadTooLarge", "The body is larger than the endpoint accepts."),
    "415": ("UnsupportedMediaType", "The body's content type is not accepted here."),
}


def _package_version() -> str:
    """Return the installed ivrdesk version."""
    try:
        return version("ivrdesk")
    except PackageNotFoundError:
        return "0+unknown"


def _json(name: str, description: str) -> dict[str, Any]:
    """Describe a JSON answer whose schema is a named component."""
    return {"description": description, "content": {_JSON: {"schema": _ref(name)}}}


def _ref(name: str) -> dict[str, str]:
    """Point at a schema component."""
    return {"$ref": _REF.format(model=name)}


def _errors(*statuses: str) -> dict[str, Any]:
    """Refer to the shared error answers of these statuses."""
    return {status: {"$ref": f"#/components/responses/{_COMMON[status][0]}"} for status in statuses}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Describe an optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    """Describe an id in the path (DESIGN.md: 1-200 characters of A-Z a-z 0-9 . _ : -)."""
    schema = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,200}$"}
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _text(name: str, description: str) -> dict[str, Any]:
    """Describe a text filter."""
    return _query(name, description, {"type": "string", "maxLength": _TEXT_LIMIT})


PAGING = [
    _query(
        "limit",
        f"Page size (default {DEFAULT_LIMIT}).",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    _query("cursor", "The `next` of the previous page.", {"type": "string", "maxLength": 512}),
]
CALL_FILTERS = [
    _text("to", "A number, normalised as at launch."),
    _text("callbackData", "Exact callbackData."),
    _query("outcome", "One outcome.", {"type": "string", "enum": [o.value for o in Outcome]}),
    _text("status", "A status name or a status group name (case-insensitive)."),
]


def _lookup(summary: str, operation_id: str, answer: str, **extra: Any) -> dict[str, Any]:
    """Describe a GET of the lookups API (viewer or operator token)."""
    responses = {"200": _json(answer, summary)}
    responses.update(_errors(*extra.pop("errors", ("401",))))
    return {
        "get": {
            "tags": ["lookups"],
            "summary": summary,
            "operationId": operation_id,
            "security": API,
            "responses": responses,
            **extra,
        }
    }


def _launch(operation_id: str, summary: str) -> dict[str, Any]:
    """Describe a launch endpoint (DESIGN.md "Launching a campaign")."""
    failure = "No call got through; the campaign is stored. "
    responses = {
        "200": _json("LaunchAnswer", "The same body was launched before: nothing was sent."),
        "201": _json("LaunchAnswer", "Stored and submitted; at least one call was accepted."),
        "202": _json("LaunchAnswer", "Stored; the dispatcher submits it (asynchronous)."),
        **_errors("400", "401", "403", "409", "413", "415"),
        "502": _json("LaunchFailure", failure + "Infobip rejected every call."),
        "503": _json(
            "LaunchFailure",
            failure + "Infobip was unreachable, or launching is "
            "not configured (then the body is the error alone).",
        ),
        "504": _json("LaunchFailure", failure + "Infobip may have the calls: resubmit."),
    }
    responses["503"]["content"][_JSON]["schema"] = {"anyOf": [_ref("LaunchFailure"), _ref("Error")]}
    prefer = {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "`respond-async` answers 202 at once and leaves sending to the dispatcher.",
        "schema": {"type": "string"},
    }
    return {
        "post": {
            "tags": ["launch"],
            "summary": summary,
            "operationId": operation_id,
            "security": API,
            "parameters": [prefer],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": _ref("LaunchRequestBody")}},
            },
            "responses": responses,
        }
    }


def _notify() -> dict[str, Any]:
    """Describe the notify endpoint (DESIGN.md "Receiving delivery reports")."""
    token = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "One of IVR_NOTIFY_TOKENS (the secret in the notify URL).",
        "schema": {"type": "string", "minLength": 1},
    }
    probe = {"200": _json("Probe", "The notify URL is reachable."), **_errors("401")}
    report = {"schema": _ref("ReportBody")}
    return {
        "parameters": [token],
        "post": {
            "tags": ["reports"],
            "summary": "Receive Infobip delivery reports (JSON or XML, versions 1 and 2).",
            "operationId": "receiveReports",
            "security": PUBLIC,
            "requestBody": {
                "required": True,
                "content": {_JSON: report, "application/xml": report, "text/xml": report},
            },
            "responses": {
                "200": _json("NotifyAnswer", "The body is stored and every result recorded."),
                **_errors("400", "401", "403", "413", "415"),
                "503": _json("Error", "The database is unavailable; retry (see Retry-After)."),
            },
        },
        "get": {
            "tags": ["reports"],
            "summary": "Answer a reachability probe.",
            "operationId": "probeNotifyUrl",
            "security": PUBLIC,
            "responses": probe,
        },
        "head": {
            "tags": ["reports"],
            "summary": "Answer a reachability probe (no body).",
            "operationId": "probeNotifyUrlHead",
            "security": PUBLIC,
            "responses": {
                "200": {"description": "The notify URL is reachable."},
                "401": {"description": "Unknown notify token."},
            },
        },
    }


def _operations() -> dict[str, Any]:
    """Describe the health endpoints."""
    ready = {
        "200": _json("Ready", "The database is reachable and migrated."),
        "503": _json("NotReady", "Do not send traffic here."),
    }
    return {
        "/healthz": {
            "get": {
                "tags": ["operations"],
                "summary": "Say the process is alive.",
                "operationId": "healthz",
                "security": PUBLIC,
                "responses": {"200": _json("Probe", "Alive.")},
            }
        },
        "/readyz": {
            "get": {
                "tags": ["operations"],
                "summary": "Say whether to send traffic.",
                "operationId": "readyz",
                "security": PUBLIC,
                "responses": ready,
            }
        },
    }


def _paths() -> dict[str, Any]:
    """Describe every path."""
    bulk_id = _path("bulkId", "The campaign's bulkId.")
    campaigns = _lookup(
        "List campaigns, newest first.",
        "listCampaigns",
        "CampaignList",
        parameters=PAGING,
        errors=("400", "401"),
    )
    campaigns.update(_launch("launchCampaign", "Launch a campaign (Infobip's body, plus name)."))
    csv = _lookup(
        "Export a campaign's calls as CSV.",
        "exportCampaignCalls",
        "Error",
        parameters=[bulk_id],
        errors=("401", "404"),
    )
    csv["get"]["responses"]["200"] = {
        "description": "Spreadsheet-safe CSV, streamed.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    openapi = _lookup("This document.", "getOpenApi", "OpenApiDocument", errors=())
    openapi["get"].update(tags=["operations"], security=PUBLIC)
    return {
        "/api/v1/openapi.json": openapi,
        "/api/v1/campaigns": campaigns,
        "/voice/ivr/1/messages": _launch(
            "launchInfobipCompatible", "Launch a campaign at Infobip's own path."
        ),
        "/api/v1/campaigns/{bulkId}": _lookup(
            "Show a campaign with its counts.",
            "getCampaign",
            "Campaign",
            parameters=[bulk_id],
            errors=("401", "404"),
        ),
        "/api/v1/campaigns/{bulkId}/calls": _lookup(
            "List a campaign's calls in launch order.",
            "listCampaignCalls",
            "CallList",
            parameters=[bulk_id, *CALL_FILTERS, *PAGING],
            errors=("400", "401", "404"),
        ),
        "/api/v1/campaigns/{bulkId}/calls.csv": csv,
        "/api/v1/calls": _lookup(
            "Find calls, newest first.",
            "listCalls",
            "CallList",
            parameters=[*CALL_FILTERS, _text("bulkId", "A campaign's bulkId."), *PAGING],
            errors=("400", "401", "404"),
        ),
        "/api/v1/calls/{messageId}": _lookup(
            "Show a call with its whole history.",
            "getCall",
            "CallDetail",
            parameters=[_path("messageId", "The call's messageId.")],
            errors=("401", "404"),
        ),
        "/api/v1/reports/unmatched": _lookup(
            "List parked report results, newest first.",
            "listUnmatchedReports",
            "UnmatchedList",
            parameters=PAGING,
            errors=("400", "401"),
        ),
        "/notify/ivr/{token}": _notify(),
        **_operations(),
    }


def _components() -> dict[str, Any]:
    """Collect the models' JSON Schemas, the shared answers and the security schemes."""
    keys: list[tuple[type[BaseModel], Any]] = [(m, "validation") for m in schemas.REQUEST_MODELS]
    keys += [(m, "serialization") for m in schemas.RESPONSE_MODELS]
    _, definitions = models_json_schema(keys, ref_template=_REF)
    responses = {name: _json("Error", text) for name, text in _COMMON.values()}
    security = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <API token>`.",
        },
        "app": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Authorization: App <API token>` (Infobip's scheme).",
        },
    }
    return {"schemas": definitions["$defs"], "responses": responses, "securitySchemes": security}


@functools.cache
def build_document() -> dict[str, Any]:
    """Build the OpenAPI 3.1 document (without `servers`); built once, never modify it."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "ivrdesk",
            "version": _package_version(),
            "description": (
                "Launch outbound IVR campaigns through Infobip, receive its delivery reports "
                "and look up every call's status history. API tokens: `ivrdesk tokens create`."
            ),
        },
        "tags": [
            {"name": "launch", "description": "Operator token."},
            {"name": "lookups", "description": "Viewer or operator token."},
            {"name": "reports", "description": "Infobip's delivery reports (token in the URL)."},
            {"name": "operations", "description": "Health and this document."},
        ],
        "paths": _paths(),
        "components": _components(),
        "security": API,
    }
