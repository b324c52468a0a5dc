"""Hostile bodies for the notify endpoint, through gunicorn.

Every class of bad input gets a clear 4xx in the common error shape (or, for one bad
result inside a readable report body, a 200 that marks that item invalid: DESIGN.md
"Receiving", step 3), never a 5xx; a call recorded before the sweep keeps its status and
history (the `recorded` fixture checks after each case), and nothing is sent to Infobip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.models import InboundReport
from tests.conftest import NOTIFY_TOKEN
from tests.reliability.support import JSON_TYPE, MAX_REPORT_BYTES, Stack
from tests.reliability.sweep import Recorded, assert_error_shape

XML = "application/xml"
DEEP = 100_000
HUGE_INT = "9" * 5000
NOT_PASSWD = b"root:"  # what /etc/passwd would leak
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    + "]>\n<reportResponse><results><result><messageId>{m}</messageId>"
    "<callbackData>&lol9;</callbackData></result></results></reportResponse>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<reportResponse><results><result><messageId>{m}</messageId>"
    "<callbackData>&xxe;</callbackData></result></results></reportResponse>"
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % remote SYSTEM "file:///etc/passwd">'
    " %remote;]>\n<reportResponse><results/></reportResponse>"
)
PLAIN_DOCTYPE = '<!DOCTYPE reportResponse SYSTEM "file:///etc/passwd"><results/>'
_DROP = object()  # later_busy(..., field=_DROP) leaves the field out


def later_busy(message_id: str, **changes: Any) -> dict[str, Any]:
    """Return a final report that WOULD replace the recorded call's status if it were used."""
    item: dict[str, Any] = {
        "messageId": message_id,
        "sentAt": "2026-12-01T10:00:00.000+0000",
        "voiceCall": {"endTime": "2026-12-01T10:00:30.000+0000", "duration": 30},
        "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 97, "name": "BUSY"},
    }
    for path, value in changes.items():
        target = item
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is _DROP:
            del target[leaf]
        else:
            target[leaf] = value
    return item


def results(*items: Any) -> bytes:
    """Return a JSON report body carrying these results."""
    return json.dumps({"results": list(items)}).encode()


def raw_json(template: str) -> Callable[[str], bytes]:
    """Return a body builder from JSON text with {m} for the recorded messageId."""
    return lambda m: template.replace("{m}", m).encode()


@dataclass(frozen=True)
class Bad:
    """One hostile notify POST and the answer it must get."""

    body: Callable[[str], bytes]
    content_type: str | None = JSON_TYPE
    status: int = 400
    code: str | None = "invalid_report"
    reason: str = ""  # in the error message, or in the invalid item's reason
    stored: int = 1  # raw bodies kept: 0 before authentication or the size check
    token: str | None = None


def _item(reason: str, build: Callable[[str], Any]) -> Bad:
    """A readable body with one bad result: 200, that item invalid."""
    return Bad(lambda m: results(build(m)), status=200, code=None, reason=reason)


def _oversize(_: str) -> bytes:
    """Return a JSON body one byte over the stack's IVR_MAX_REPORT_BYTES."""
    return b"{" + b" " * MAX_REPORT_BYTES + b"}"


NOTIFY_CASES: dict[str, Bad] = {
    "wrong-token": Bad(
        lambda m: results(later_busy(m)),
        status=401,
        code="unauthorized",
        stored=0,
        token="not-the-token",
    ),
    "text-plain": Bad(
        lambda m: results(later_busy(m)), "text/plain", 415, "unsupported_media_type"
    ),
    "form-urlencoded": Bad(
        lambda m: b"results=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"
    ),
    "no-content-type": Bad(lambda m: results(later_busy(m)), None, 415, "unsupported_media_type"),
    "not-json": Bad(lambda m: b"{not json", reason="not valid JSON"),
    "json-array": Bad(lambda m: json.dumps([later_busy(m)]).encode(), reason="not a JSON object"),
    "json-string": Bad(lambda m: b'"results"', reason="not a JSON object"),
    "no-results": Bad(lambda m: b"{}", reason="no `results` list"),
    "results-null": Bad(lambda m: b'{"results": null}', reason="no `results` list"),
    "results-object": Bad(
        lambda m: json.dumps({"results": later_busy(m)}).encode(), reason="no `results` list"
    ),
    "nan": Bad(
        raw_json('{"results": [{"messageId": "{m}", "voiceCall": {"duration": NaN}}]}'),
        reason="NaN is not allowed",
    ),
    "item-number": _item("result is not an object", lambda m: 42),
    "item-list": _item("result is not an object", lambda m: [later_busy(m)]),
    "missing-messageId": _item("messageId is missing", lambda m: later_busy(m, messageId=_DROP)),
    "blank-messageId": _item("messageId is empty", lambda m: later_busy(m, messageId="   ")),
    "object-messageId": _item("messageId: not a string", lambda m: later_busy(m, messageId={})),
    "status-not-object": _item("status: not an object", lambda m: later_busy(m, status="BUSY")),
    "endTime-impossible": _item(
        "voiceCall.endTime: not a timestamp",
        lambda m: later_busy(m, voiceCall__endTime="2026-13-45T99:61:00.000+0000"),
    ),
    "endTime-text": _item(
        "voiceCall.endTime: not a timestamp", lambda m: later_busy(m, voiceCall__endTime="soon")
    ),
    "endTime-year-0": _item(
        "voiceCall.endTime: not a timestamp",
        lambda m: later_busy(m, voiceCall__endTime="0000-01-01T00:00:00Z"),
    ),
    "sentAt-object": _item("sentAt: not a timestamp", lambda m: later_busy(m, sentAt={"a": 1})),
    "endTime-1e400": Bad(
        raw_json('{"results": [{"messageId": "{m}", "voiceCall": {"endTime": 1e400}}]}'),
        status=200,
        code=None,
        reason="voiceCall.endTime: not a timestamp",
    ),
    "duration-1e400": Bad(
        raw_json(
            '{"results": [{"messageId": "{m}", "voiceCall": {"duration": 1e400},'
            ' "status": {"groupId": 2, "id": 97, "name": "BUSY"}}]}'
        ),
        status=200,
        code=None,
        reason="voiceCall.duration: out of range",
    ),
    "price-minus-1e400": Bad(
        raw_json('{"results": [{"messageId": "{m}", "price": {"pricePerSecond": -1e400}}]}'),
        status=200,
        code=None,
        reason="price.pricePerSecond: out of range",
    ),
    "groupId-5000-digits": Bad(
        raw_json('{"results": [{"messageId": "{m}", "status": {"groupId": ' + HUGE_INT + "}}]}"),
        status=200,
        code=None,
        reason="status.groupId: out of range",
    ),
    "duration-beyond-column": _item(
        "duration is out of range", lambda m: later_busy(m, voiceCall__duration=2**40)
    ),
    "deep-json": Bad(lambda m: b"[" * DEEP + b"]" * DEEP, reason="nested too deeply"),
    "deep-json-in-item": Bad(
        lambda m: results(later_busy(m))[:-3] + b', "x": ' + b"[" * DEEP + b"]" * DEEP + b"}]}",
        reason="nested too deeply",
    ),
    "invalid-utf8": Bad(
        lambda m: results(later_busy(m)).replace(b"BUSY", b"BU\xffSY"), reason="not valid utf-8"
    ),
    "unknown-charset": Bad(
        lambda m: results(later_busy(m)),
        "application/json; charset=klingon",
        reason="unknown charset",
    ),
    "billion-laughs": Bad(
        lambda m: BILLION_LAUGHS.replace("{m}", m).encode(),
        XML,
        reason="DTD/entities are not allowed",
    ),
    "external-entity": Bad(
        lambda m: EXTERNAL_ENTITY.replace("{m}", m).encode(),
        XML,
        reason="DTD/entities are not allowed",
    ),
    "external-entity-utf16": Bad(
        lambda m: EXTERNAL_ENTITY.replace("{m}", m).encode("utf-16"),
        "text/xml; charset=utf-16",
        reason="DTD/entities are not allowed",
    ),
    "parameter-entity": Bad(
        lambda m: PARAMETER_ENTITY.encode(), "text/xml", reason="DTD/entities are not allowed"
    ),
    "doctype": Bad(lambda m: PLAIN_DOCTYPE.encode(), XML, reason="DTD/entities are not allowed"),
    "xml-not-well-formed": Bad(
        lambda m: b"<reportResponse><results>", XML, reason="XML is not well-formed"
    ),
    "deep-xml": Bad(lambda m: b"<a>" * DEEP + b"</a>" * DEEP, XML, reason="XML"),
    "xml-without-results": Bad(lambda m: b"<reportResponse/>", XML, reason="no `<results>`"),
    "oversize": Bad(_oversize, status=413, code="payload_too_large", stored=0),
    "empty-json": Bad(lambda m: b"", reason="not valid JSON"),
    "empty-xml": Bad(lambda m: b"", XML, reason="XML"),
}


@pytest.fixture
def stack(swept: tuple[Stack, Recorded]) -> Stack:
    """The stack the sweep shares (not wiped between its cases)."""
    return swept[0]


def last_inbound_id(stack: Stack) -> int:
    """Return the id of the newest raw report body (0 when none)."""
    with stack.sessions() as session:
        return session.scalar(select(func.max(InboundReport.id))) or 0


@pytest.mark.parametrize("name", list(NOTIFY_CASES))
def test_notify_refuses_hostile_input(stack: Stack, recorded: Recorded, name: str) -> None:
    case = NOTIFY_CASES[name]
    last = last_inbound_id(stack)
    body = case.body(recorded.message_id)
    token = case.token
    response = stack.notify(body, case.content_type, *(() if token is None else (token,)))

    assert NOT_PASSWD not in response.content
    if case.code is None:
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["invalid"], answer["applied"], answer["notApplied"]) == (1, 0, 0)
        (item,) = answer["items"]
        assert item["result"] == "invalid"
        assert case.reason in item["reason"]
    else:
        error = assert_error_shape(response, case.status, case.code)
        assert case.reason in error["message"]
    with stack.sessions() as session:
        kept = session.scalars(select(InboundReport.body).where(InboundReport.id > last)).all()
    assert len(kept) == case.stored
    assert all(NOT_PASSWD not in stored for stored in kept)


def test_notify_refuses_an_oversize_chunked_body(stack: Stack, recorded: Recorded) -> None:
    chunk = b" " * 65536
    pieces = MAX_REPORT_BYTES // len(chunk) + 1
    last = last_inbound_id(stack)
    response = httpx.post(
        f"{stack.url}/notify/ivr/{NOTIFY_TOKEN}",
        content=(chunk for _ in range(pieces)),
        headers={"Content-Type": JSON_TYPE},
        timeout=30,
    )
    assert_error_shape(response, 413, "payload_too_large")
    assert last_inbound_id(stack) == last
