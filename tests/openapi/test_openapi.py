"""The OpenAPI document: valid, complete, public, and true of the real answers on both databases."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.db import utcnow
from app.launch.request import LaunchValidationError, parse_launch
from app.openapi.document import build_document
from app.simulator.server import Simulator
from tests.conftest import NOTIFY_TOKEN, LiveServer, state
from tests.launch.test_launch import flat_body
from tests.reports.test_reports import FIRST, STRANGER, launch_seed, sample

DOCUMENT_URI = "urn:ivrdesk:openapi"
# Routes that are not part of the API: metrics scraping, static files, HTML pages.
UNDOCUMENTED = re.compile(r"^/(metrics|static/|admin)")


def _pointer(*parts: str) -> str:
    """Build a JSON pointer, escaping each part."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


class Oracle:
    """Check real answers against the document's schema for their path, method and status."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)

    def response(self, path: str, method: str, status: int) -> tuple[dict[str, Any], str]:
        """Return the documented response (shared ones resolved) and its pointer."""
        responses = self.document["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
        pointer = _pointer("paths", path, method, "responses", str(status))
        answer = responses[str(status)]
        if "$ref" in answer:
            pointer = answer["$ref"].removeprefix("#")
            name = pointer.rsplit("/", 1)[1]
            answer = self.document["components"]["responses"][name]
        return answer, pointer

    def check(self, path: str, method: str, response: httpx.Response) -> None:
        """Fail unless the answer's status is documented and its body fits the schema."""
        answer, pointer = self.response(path, method, response.status_code)
        if "content" not in answer:
            assert response.content == b""
            return
        media = response.headers["Content-Type"].split(";")[0]
        assert media in answer["content"], f"{media} is not documented for {path}"
        if media != "application/json":
            return
        schema = {"$ref": DOCUMENT_URI + "#" + pointer + _pointer("content", media, "schema")}
        validator = Draft202012Validator(
            schema, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = [
            f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())
        ]
        assert errors == [], f"{method.upper()} {path} {response.status_code}: {errors}"


def test_openapi_document_is_valid_public_and_names_this_server(live: LiveServer) -> None:
    response = httpx.get(f"{live.url}/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    # IVR_PUBLIC_URL, never the request's Host (tests/web/test_hosts.py).
    assert document["servers"] == [{"url": state(live.app).settings.public_url}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["app"]["type"] == "apiKey"
    assert (schemes["app"]["in"], schemes["app"]["name"]) == ("header", "Authorization")
    assert build_document() is build_document()  # built once per process
    assert "servers" not in build_document()


def test_openapi_describes_every_route_and_method(app: Flask) -> None:
    documented = {
        (re.sub(r"\{[^}]+\}", "{}", path), method.upper())
        for path, item in build_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if UNDOCUMENTED.match(rule.rule):
            continue
        path = re.sub(r"<[^>]+>", "{}", rule.rule)
        explicit_head = "HEAD" in rule.methods and "GET" not in (rule.methods or ())
        for method in (rule.methods or set()) - {"OPTIONS"}:
            if method != "HEAD" or explicit_head or path.startswith("/notify/"):
                routed.add((path, method))
    assert routed == documented


def test_request_schemas_come_from_the_launch_models() -> None:
    schemas = build_document()["components"]["schemas"]
    message = schemas["LaunchMessage"]
    assert message["additionalProperties"] is True  # unknown message fields are passed on
    assert {"scenarioId", "from", "notifyContentType", "sendingSpeed", "destinations"} <= set(
        message["properties"]
    )
    assert message["required"] == ["scenarioId", "destinations"]
    assert schemas["FlatLaunchBody"]["additionalProperties"] is False
    assert schemas["SendingSpeed"]["properties"]["timeUnit"]["enum"] == [
        "second",
        "minute",
        "hour",
        "day",
    ]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorObject"}
    for name in ("Call", "CallDetail", "Campaign", "LaunchAnswer", "NotifyAnswer", "ErrorObject"):
        # Answers always carry every key (null when unknown), and nothing else.
        assert schemas[name]["additionalProperties"] is False
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name


def test_real_answers_fit_the_document(
    http: httpx.Client, live: LiveServer, viewer_token: str, simulator: Simulator
) -> None:
    oracle = Oracle(httpx.get(f"{live.url}/api/v1/openapi.json").json())
    viewer = {"Authorization": f"App {viewer_token}"}
    json_type = {"Content-Type": "application/json"}
    notify = f"/notify/ivr/{NOTIFY_TOKEN}"

    launch_seed(http)
    oracle.check(
        "/api/v1/campaigns",
        "post",
        http.post(
            "/api/v1/campaigns",
            json=flat_body("41793026731", bulk_id="clamped") | {"validityPeriod": 9000},
        ),
    )
    asynchronous = http.post(
        "/voice/ivr/1/messages",
        json=flat_body("41793026732", bulk_id="later"),
        headers={"Prefer": "respond-async"},
    )
    assert asynchronous.status_code == 202
    oracle.check("/voice/ivr/1/messages", "post", asynchronous)
    simulator.reject_prefixes = ("4179302674",)
    refused = http.post("/api/v1/campaigns", json=flat_body("41793026740", bulk_id="refused"))
    assert refused.status_code == 502
    oracle.check("/api/v1/campaigns", "post", refused)
    again = http.post("/api/v1/campaigns", json=flat_body("41793026740", bulk_id="refused"))
    assert again.status_code == 200
    oracle.check("/api/v1/campaigns", "post", again)
    for body, status in (
        (flat_body("0911234567"), 400),
        (flat_body("41793026750", bulk_id="refused"), 409),
    ):
        response = http.post("/api/v1/campaigns", json=body)
        assert response.status_code == status, response.text
        oracle.check("/api/v1/campaigns", "post", response)
    as_viewer = httpx.post(f"{live.url}/api/v1/campaigns", json=flat_body("1"), headers=viewer)
    assert as_viewer.status_code == 403
    oracle.check("/api/v1/campaigns", "post", as_viewer)
    text = http.post("/api/v1/campaigns", content=b"x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    oracle.check("/api/v1/campaigns", "post", text)

    reports = {
        "report-v2-answered.json": json_type,
        "report-v2.xml": {"Content-Type": "text/xml"},
        "report-v1.json": json_type,
    }
    for name, headers in reports.items():
        posted = http.post(notify, content=sample(name), headers=headers)
        assert posted.status_code == 200, posted.text
        oracle.check("/notify/ivr/{token}", "post", posted)
    stranger = json.dumps({"results": [{"messageId": STRANGER, "status": {"groupId": 3}}]})
    oracle.check(
        "/notify/ivr/{token}", "post", http.post(notify, content=stranger, headers=json_type)
    )
    for content, headers, status in (
        (b"{", json_type, 400),
        (b"a=b", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ):
        response = http.post(notify, content=content, headers=headers)
        assert response.status_code == status
        oracle.check("/notify/ivr/{token}", "post", response)
    for method in ("get", "head"):
        oracle.check("/notify/ivr/{token}", method, http.request(method, notify))
        wrong = http.request(method, "/notify/ivr/wrong-token-0123456789")
        assert wrong.status_code == 401
        oracle.check("/notify/ivr/{token}", method, wrong)

    lookups = {
        "/api/v1/calls/{messageId}": f"/api/v1/calls/{FIRST}",
        "/api/v1/calls": "/api/v1/calls?limit=1",
        "/api/v1/campaigns": "/api/v1/campaigns?limit=2",
        "/api/v1/campaigns/{bulkId}": "/api/v1/campaigns/refused",
        "/api/v1/campaigns/{bulkId}/calls": "/api/v1/campaigns/clamped/calls",
        "/api/v1/campaigns/{bulkId}/calls.csv": "/api/v1/campaigns/clamped/calls.csv",
        "/api/v1/reports/unmatched": "/api/v1/reports/unmatched",
        "/healthz": "/healthz",
        "/readyz": "/readyz",
        "/api/v1/openapi.json": "/api/v1/openapi.json",
    }
    for template, url in lookups.items():
        response = httpx.get(live.url + url, headers=viewer)
        assert response.status_code == 200, (url, response.text)
        oracle.check(template, "get", response)
    detail = httpx.get(f"{live.url}/api/v1/calls/{FIRST}", headers=viewer).json()
    assert detail["collected"] is not None
    assert len(detail["history"]) >= 2
    assert httpx.get(f"{live.url}/api/v1/reports/unmatched", headers=viewer).json()["items"]
    for template, url, status in (
        ("/api/v1/calls/{messageId}", "/api/v1/calls/nobody", 404),
        ("/api/v1/calls", "/api/v1/calls?limit=0", 400),
        ("/api/v1/calls", "/api/v1/calls?bulkId=nobody", 404),
        ("/api/v1/campaigns", "/api/v1/campaigns?cursor=@@", 400),
        ("/api/v1/campaigns/{bulkId}/calls.csv", "/api/v1/campaigns/nobody/calls.csv", 404),
    ):
        response = httpx.get(live.url + url, headers=viewer)
        assert response.status_code == status, url
        oracle.check(template, "get", response)
    anonymous = httpx.get(f"{live.url}/api/v1/campaigns")
    assert anonymous.status_code == 401
    oracle.check("/api/v1/campaigns", "get", anonymous)


SENDERS = ["123", "1" * 14, 100, 99_999_999_999_999, "12", "1" * 15, "InfoSMS", "+4179302670"]
# (Not "123\n": Python's re lets `$` match before a final newline, ECMA 262's does not.)
SENDERS += ["4179 3026", "", "\u0663\u0663\u0663", 99, 10**14, -123, True, 12.5]


def test_sender_schema_agrees_with_the_launch_validation() -> None:
    schemas = build_document()["components"]["schemas"]
    for form, name in (("flat", "FlatLaunchBody"), ("messages", "LaunchMessage")):
        validator = Draft202012Validator(schemas[name]["properties"]["from"])
        for sender in SENDERS:
            body = flat_body("41793026727") | {"from": sender}
            if form == "messages":
                body = {"messages": [{"scenarioId": "S1", "from": sender, "destinations": []}]}
                body["messages"][0]["destinations"] = [{"to": "41793026727"}]
            try:
                parse_launch(body, now=utcnow())
                accepted = True
            except LaunchValidationError:
                accepted = False
            assert validator.is_valid(sender) == accepted, (form, sender)
