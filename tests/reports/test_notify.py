"""Delivery-report parsing: samples, timestamps, coercion, bad items, bad bodies, XML hardening."""

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest

from app.reports import xml as notify_xml
from app.reports.parse import (
    DeliveryReport,
    ErrorInfo,
    InvalidItem,
    ParsedItem,
    ReportParseError,
    StatusInfo,
    parse_json,
    parse_report_body,
    parse_timestamp,
    parse_xml,
)

DATA = Path(__file__).parents[1] / "data"
MESSAGE_ID = "0f6c1d52-3b1e-4d55-9a34-2c1b7d9e0a11"
DROP = object()


def at(year: int, month: int, day: int, hour: int, minute: int, second: int, ms: int) -> datetime:
    """Return an aware UTC datetime with milliseconds."""
    return datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=UTC)


def sample_item() -> dict[str, Any]:
    """Return the answered version 2 report item from tests/data."""
    body = json.loads((DATA / "report-v2-answered.json").read_text())
    item: dict[str, Any] = body["results"][0]
    return item


def v1_item() -> dict[str, Any]:
    """Return the version 1 report item from tests/data."""
    body = json.loads((DATA / "report-v1.json").read_text())
    item: dict[str, Any] = body["results"][0]
    return item


def changed(item: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of item with dotted paths set (DROP removes the key)."""
    result = copy.deepcopy(item)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = result
        for key in parents:
            target = target[key]
        if value is DROP:
            target.pop(last, None)
        else:
            target[last] = value
    return result


def body_of(*items: Any) -> bytes:
    """Return a JSON body carrying the items."""
    return json.dumps({"results": list(items)}).encode()


def only(parsed: list[ParsedItem]) -> ParsedItem:
    """Return the single parsed item."""
    assert len(parsed) == 1
    return parsed[0]


def report(item: Any) -> DeliveryReport:
    """Return the report of a single-item JSON body, failing if it is invalid."""
    result = only(parse_json(body_of(item)))
    assert isinstance(result, DeliveryReport), result
    return result


def invalid(item: Any) -> InvalidItem:
    """Return the invalid item of a single-item JSON body, failing if it parsed."""
    result = only(parse_json(body_of(item)))
    assert isinstance(result, InvalidItem), result
    return result


def xml_report(inner: str) -> ParsedItem:
    """Return the single item of `<reportResponse><results>inner</results></reportResponse>`."""
    body = f"<reportResponse><results>{inner}</results></reportResponse>".encode()
    return only(parse_xml(body))


def test_parse_json_v2_answered_sample() -> None:
    result = only(parse_json((DATA / "report-v2-answered.json").read_bytes()))

    assert isinstance(result, DeliveryReport)
    assert result.model_dump(exclude={"raw"}) == {
        "index": 0,
        "version": 2,
        "message_id": MESSAGE_ID,
        "bulk_id": "spring-reminders-2026-04",
        "to": "385981112233",
        "sender": "38517771234",
        "mcc_mnc": "21910",
        "callback_data": "patient-batch-17",
        "sent_at": at(2026, 4, 2, 7, 0, 1, 120),
        "start_time": at(2026, 4, 2, 7, 0, 2, 0),
        "answer_time": at(2026, 4, 2, 7, 0, 9, 0),
        "end_time": at(2026, 4, 2, 7, 0, 41, 500),
        "done_at": None,
        "occurred_at": at(2026, 4, 2, 7, 0, 41, 500),
        "occurred_at_text": "2026-04-02T07:00:41.500+0000",
        "duration": 32,
        "charged_duration": 60,
        "file_duration": 0.0,
        "price_per_second": Decimal("0.0012"),
        "currency": "EUR",
        "answered_by": "HUMAN",
        "dtmf_codes": "1",
        "feature": "Voice-message",
        "scenario_id": "A1B2C3D4E5F60718293A4B5C6D7E8F90",
        "scenario_name": "Appointment reminder",
        "call_recording_file_id": None,
        "direction": None,
        "collected": {
            "collectedDtmfs": {"confirm": "1"},
            "collectedMappedDtmfs": None,
            "spokenInput": None,
            "matchedSpokenInput": None,
        },
        "status": {
            "group_id": 3,
            "group_name": "DELIVERED",
            "id": 5,
            "name": "DELIVERED_TO_HANDSET",
            "description": "Message delivered to handset",
        },
        "error": {
            "group_id": 0,
            "group_name": "OK",
            "id": 10000,
            "name": "NORMAL_HANGUP",
            "description": "The call ended normally.",
            "permanent": True,
        },
    }
    assert result.raw == sample_item()
    assert isinstance(result.status, StatusInfo)
    assert isinstance(result.error, ErrorInfo)


def test_parse_xml_sample_equals_json_sample() -> None:
    from_xml = only(parse_xml((DATA / "report-v2.xml").read_bytes()))
    from_json = only(parse_json((DATA / "report-v2-answered.json").read_bytes()))

    assert isinstance(from_xml, DeliveryReport)
    assert isinstance(from_json, DeliveryReport)
    assert from_xml.model_dump(exclude={"raw"}) == from_json.model_dump(exclude={"raw"})
    assert from_xml.raw["voiceCall"]["duration"] == "32"
    assert from_xml.raw["voiceCall"]["ivr"]["spokenInput"] is None
    assert from_xml.raw["error"]["permanent"] == "true"


def test_parse_json_v1_sample_reads_epoch_milliseconds() -> None:
    result = only(parse_json((DATA / "report-v1.json").read_bytes()))

    assert isinstance(result, DeliveryReport)
    assert result.version == 1
    assert result.sent_at == at(2026, 4, 2, 7, 0, 1, 120)
    assert result.start_time == at(2026, 4, 2, 7, 0, 2, 0)
    assert result.answer_time == at(2026, 4, 2, 7, 0, 9, 0)
    assert result.end_time == at(2026, 4, 2, 7, 0, 41, 500)
    assert result.done_at == at(2026, 4, 2, 7, 0, 41, 900)
    assert (result.occurred_at, result.occurred_at_text) == (
        at(2026, 4, 2, 7, 0, 41, 500),
        "1775113241500",
    )
    assert (result.duration, result.file_duration) == (32, 0.0)
    assert (result.scenario_id, result.scenario_name) == (
        "A1B2C3D4E5F60718293A4B5C6D7E8F90",
        "Appointment reminder",
    )
    assert result.dtmf_codes == "1"
    assert result.collected == {
        "collectedDtmfs": {"confirm": "1"},
        "collectedMappedDtmfs": None,
        "spokenInput": None,
        "matchedSpokenInput": None,
    }
    assert result.price_per_second == Decimal("0.0012")
    assert result.error == ErrorInfo(
        group_id=0,
        group_name="OK",
        id=5000,
        name="VOICE_ANSWERED",
        description="Call answered by human",
        permanent=True,
    )
    assert result.sender is None


def test_parse_json_batch_sample_gives_two_reports() -> None:
    first, second = parse_json((DATA / "report-v2-batch.json").read_bytes())

    assert isinstance(first, DeliveryReport)
    assert isinstance(second, DeliveryReport)
    assert [first.index, second.index] == [0, 1]
    assert [first.message_id, second.message_id] == [
        "caller-chosen-id-0002",
        "4c1e8a90-77d2-4f0e-8d65-0b7a3c2e9f31",
    ]
    assert first.answer_time is None
    assert first.dtmf_codes is None
    assert first.collected is None
    assert first.occurred_at == at(2026, 4, 2, 7, 0, 47, 300)
    assert first.price_per_second == Decimal("0.0")
    assert first.status == StatusInfo(
        group_id=2,
        group_name="UNDELIVERABLE",
        id=96,
        name="NO_ANSWER",
        description="Call delivered to device, but not answered",
    )
    assert (second.status and second.status.id, second.error and second.error.id) == (97, 10201)
    assert second.occurred_at == at(2026, 4, 2, 7, 0, 5, 100)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-25T13:38:14.730+0000", at(2026, 6, 25, 13, 38, 14, 730)),
        ("2026-06-25T13:38:14.730-0300", at(2026, 6, 25, 16, 38, 14, 730)),
        ("2026-06-25T13:38:14+01:00", at(2026, 6, 25, 12, 38, 14, 0)),
        ("2026-06-25T13:38:14.730+05:30", at(2026, 6, 25, 8, 8, 14, 730)),
        ("2026-06-25T13:38:14Z", at(2026, 6, 25, 13, 38, 14, 0)),
        ("2026-06-25T13:38:14.5Z", at(2026, 6, 25, 13, 38, 14, 500)),
        (
            "2026-06-25T13:38:14.123456Z",
            datetime(2026, 6, 25, 13, 38, 14, 123456, tzinfo=UTC),
        ),
        ("2026-06-25T13:38:14.730", at(2026, 6, 25, 13, 38, 14, 730)),
        ("2026-06-25T13:38:14", at(2026, 6, 25, 13, 38, 14, 0)),
        ("2026-01-01T00:30:00.000+0100", at(2025, 12, 31, 23, 30, 0, 0)),
        (1775113241500, at(2026, 4, 2, 7, 0, 41, 500)),
        ("1775113241500", at(2026, 4, 2, 7, 0, 41, 500)),
        (1775113241500.0, at(2026, 4, 2, 7, 0, 41, 500)),
        ("100000000000", at(1973, 3, 3, 9, 46, 40, 0)),
    ],
)
def test_parse_timestamp_reads_aware_utc(value: object, expected: datetime) -> None:
    moment, text = parse_timestamp(value)

    assert moment == expected
    assert moment is not None
    assert moment.utcoffset() == timedelta(0)
    assert moment.tzinfo == UTC
    assert text == (value if isinstance(value, str) else str(value))


def test_parse_timestamp_keeps_null() -> None:
    assert parse_timestamp(None) == (None, None)


def test_parse_timestamp_keeps_original_offset_text() -> None:
    moment, text = parse_timestamp("2026-06-25T13:38:14.730-0300")

    assert text == "2026-06-25T13:38:14.730-0300"
    assert moment == datetime(2026, 6, 25, 13, 38, 14, 730000, tzinfo=timezone(-timedelta(hours=3)))


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2026-06-25",
        "2026-06-25T13:38",
        "2026-02-30T10:00:00Z",
        "2026-06-25T25:00:00Z",
        "2026-06-25T13:38:14+2400",
        "2026-06-25T13:38:14+0060",
        "2026-06-25T13:38:14.1234567Z",
        "2026-06-25T13:38:14 +0000",
        "25.06.2026 13:38",
        "12345",
        "9999-12-31T23:59:59-0100",
        10**30,
        float("nan"),
        float("inf"),
        True,
        {"at": "2026-06-25T13:38:14Z"},
        ["2026-06-25T13:38:14Z"],
    ],
)
def test_parse_timestamp_refuses_non_timestamps(value: object) -> None:
    with pytest.raises(ValueError, match=r"^not a timestamp: "):
        parse_timestamp(value)


def test_parse_timestamp_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"^not a timestamp: 'yesterday'$"):
        parse_timestamp("yesterday")


@pytest.mark.parametrize(
    "results",
    [
        "<result><messageId>m0</messageId></result><result><messageId>m1</messageId></result>",
        "<results><messageId>m0</messageId></results><results><messageId>m1</messageId></results>",
        "<result><messageId>m0</messageId></result><message><messageId>m1</messageId></message>",
    ],
)
def test_parse_xml_reads_every_child_of_results(results: str) -> None:
    body = f"<reportResponse><results>{results}</results></reportResponse>".encode()

    parsed = parse_xml(body)

    assert [(item.index, getattr(item, "message_id", None)) for item in parsed] == [
        (0, "m0"),
        (1, "m1"),
    ]


def test_parse_xml_accepts_results_as_root() -> None:
    body = b"<results><result><messageId>m0</messageId></result></results>"

    result = only(parse_xml(body))

    assert isinstance(result, DeliveryReport)
    assert result.message_id == "m0"


def test_parse_xml_strips_namespaces() -> None:
    body = (
        b'<ib:reportResponse xmlns:ib="urn:infobip" xmlns="urn:default"><ib:results>'
        b"<result><messageId>m0</messageId><ib:status><groupId>3</groupId></ib:status>"
        b"</result></ib:results></ib:reportResponse>"
    )

    result = only(parse_xml(body))

    assert isinstance(result, DeliveryReport)
    assert result.raw == {"messageId": "m0", "status": {"groupId": "3"}}
    assert result.status == StatusInfo(group_id=3)


def test_parse_xml_reads_empty_elements_as_null() -> None:
    result = xml_report(
        "<result><messageId>m0</messageId><to/><callbackData>  </callbackData><status/>"
        "<voiceCall><dtmfCodes></dtmfCodes><duration/></voiceCall></result>"
    )

    assert isinstance(result, DeliveryReport)
    assert result.raw == {
        "messageId": "m0",
        "to": None,
        "callbackData": None,
        "status": None,
        "voiceCall": {"dtmfCodes": None, "duration": None},
    }
    assert (result.to, result.callback_data, result.status) == (None, None, None)
    assert (result.dtmf_codes, result.duration) == (None, None)


def test_parse_xml_makes_repeated_tags_a_list() -> None:
    result = xml_report(
        "<result><messageId>m0</messageId>"
        "<voiceCall><duration>1</duration><duration>2</duration></voiceCall></result>"
    )

    assert isinstance(result, InvalidItem)
    assert result.raw["voiceCall"] == {"duration": ["1", "2"]}
    assert result.reason == "voiceCall.duration: not an integer: ['1', '2']"


def test_parse_xml_refuses_a_text_report() -> None:
    result = xml_report("<result>m0</result>")

    assert result == InvalidItem(index=0, raw="m0", reason="result is not an object: 'm0'")


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    + "]>\n<reportResponse><results><result><messageId>&lol9;</messageId></result>"
    "</results></reportResponse>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<reportResponse><results><result><messageId>&xxe;</messageId></result></results>"
    "</reportResponse>"
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % remote SYSTEM "file:///etc/passwd">'
    " %remote;]>\n<reportResponse><results/></reportResponse>"
)
PLAIN_DOCTYPE = '<!DOCTYPE reportResponse SYSTEM "http://127.0.0.1:9/report.dtd"><results/>'


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS.encode(),
        EXTERNAL_ENTITY.encode(),
        PARAMETER_ENTITY.encode(),
        PLAIN_DOCTYPE.encode(),
        EXTERNAL_ENTITY.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode(
            "utf-16"
        ),
        BILLION_LAUGHS.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode(
            "utf-16-be"
        ),
    ],
    ids=["billion-laughs", "external", "parameter", "doctype", "utf16-external", "utf16-laughs"],
)
def test_parse_xml_refuses_dtd_and_entities(body: bytes) -> None:
    with pytest.raises(ReportParseError, match=r"^DTD/entities are not allowed$"):
        parse_xml(body)


@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE r [<!ENTITY % remote SYSTEM "{url}"> %remote;]><results/>',
        '<!DOCTYPE r [<!ENTITY xxe SYSTEM "{url}">]><results><r><m>&xxe;</m></r></results>',
        '<!DOCTYPE results SYSTEM "{url}"><results/>',
    ],
    ids=["parameter", "external", "doctype"],
)
def test_parse_xml_parser_loads_nothing_even_past_the_byte_check(
    template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    external = tmp_path / "external.dtd"
    external.write_text("<!ENTITY % broken")  # a parse error, if it were ever read
    monkeypatch.setattr(notify_xml, "_DTD_MARKERS", ())

    with pytest.raises(ReportParseError, match=r"^DTD/entities are not allowed$"):
        parse_xml(template.format(url=external.as_uri()).encode())


def test_parse_report_body_refuses_dtd_behind_a_charset() -> None:
    with pytest.raises(ReportParseError, match=r"^DTD/entities are not allowed$"):
        parse_report_body(EXTERNAL_ENTITY.encode("utf-16"), "text/xml; charset=utf-16")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<results>",
        b"<results></result>",
        b"<results/>trailing",
        b"<results><r><messageId>&undeclared;</messageId></r></results>",
        b'{"results": []}',
    ],
)
def test_parse_xml_refuses_malformed_xml(body: bytes) -> None:
    with pytest.raises(ReportParseError, match=r"^XML is not well-formed: \S"):
        parse_xml(body)


def test_parse_xml_refuses_a_body_without_results() -> None:
    with pytest.raises(ReportParseError, match=r"^no `<results>` element$"):
        parse_xml(b"<reportResponse><result><messageId>m0</messageId></result></reportResponse>")


def test_parse_xml_refuses_deep_nesting() -> None:
    deep = "<a>" * 70 + "x" + "</a>" * 70

    with pytest.raises(ReportParseError, match=r"^nested too deeply$"):
        xml_report(f"<result><messageId>m0</messageId>{deep}</result>")


def test_parse_xml_empty_results_gives_nothing() -> None:
    assert parse_xml(b"<reportResponse><results/></reportResponse>") == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;charset="UTF-8"',
        "application/xml",
        "application/xml;charset=UTF-8",
        "text/xml",
        "text/xml; charset=utf-8",
    ],
)
def test_parse_report_body_dispatches_on_media_type(content_type: str) -> None:
    sample = "report-v2-answered.json" if "json" in content_type.lower() else "report-v2.xml"

    result = only(parse_report_body((DATA / sample).read_bytes(), content_type))

    assert isinstance(result, DeliveryReport)
    assert result.message_id == MESSAGE_ID
    assert result.duration == 32


@pytest.mark.parametrize(
    "declaration", ["", '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml version="1.0"?>']
)
def test_parse_report_body_honours_xml_charset(declaration: str) -> None:
    body = (
        f"{declaration}<reportResponse><results><result><messageId>m0</messageId>"
        "<callbackData>café</callbackData></result></results></reportResponse>"
    ).encode("latin-1")

    result = only(parse_report_body(body, "text/xml; charset=ISO-8859-1"))

    assert isinstance(result, DeliveryReport)
    assert result.callback_data == "café"


def test_parse_report_body_honours_json_charset() -> None:
    body = json.dumps({"results": [{"messageId": "m0", "callbackData": "Pošta"}]})

    result = only(parse_report_body(body.encode("utf-16"), "application/json; charset=utf-16"))

    assert isinstance(result, DeliveryReport)
    assert result.callback_data == "Pošta"


def test_parse_report_body_drops_a_utf8_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf" + body_of({"messageId": "m0"})

    assert isinstance(only(parse_report_body(body, "application/json")), DeliveryReport)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"results": [{"messageId": "\xff"}]}', "application/json", "not valid utf-8"),
        (b'{"results": [{"messageId": "\xc3"}]}', "application/json; charset=utf-8", "utf-8"),
        (b"\xff\xfe\x00", "text/xml; charset=utf-8", "not valid utf-8"),
        (b'{"results": []}', "application/json; charset=klingon", "unknown charset 'klingon'"),
        (b'{"results": []}', "application/json; charset=rot13", "unknown charset 'rot13'"),
        (b'{"results": []}', "text/plain", "unsupported content type 'text/plain'"),
        (b'{"results": []}', "", "unsupported content type ''"),
        (b"results=1", "application/x-www-form-urlencoded", "unsupported content type"),
        (b'{"results": []}', "application/problem+json", "unsupported content type"),
    ],
)
def test_parse_report_body_refuses_unreadable_bodies(
    body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(ReportParseError, match=message):
        parse_report_body(body, content_type)


def test_parse_json_refuses_invalid_utf8() -> None:
    with pytest.raises(ReportParseError, match=r"^body is not valid utf-8: invalid start byte"):
        parse_json(b'{"results": [{"messageId": "\xff"}]}')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON: Expecting value at line 1 column 1"),
        (b"{", "not valid JSON: Expecting property name enclosed in double quotes"),
        (b'{"results": [}', "not valid JSON: Expecting value at line 1 column 14"),
        (b'{"results": [NaN]}', "not valid JSON: NaN is not allowed"),
        (b'{"results": [Infinity]}', "not valid JSON: Infinity is not allowed"),
        (b"[]", "the body is not a JSON object"),
        (b'[{"messageId": "m0"}]', "the body is not a JSON object"),
        (b'"results"', "the body is not a JSON object"),
        (b'{"messageId": "m0", "status": {"groupId": 3}}', "no `results` list"),
        (b'{"results": null}', "no `results` list"),
        (b'{"results": {"messageId": "m0"}}', "no `results` list"),
        (b'{"result": []}', "no `results` list"),
        (b'{"results": [' + b"[" * 63 + b"]" * 63 + b"]}", "nested too deeply"),
        (b'{"results": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested too deeply"),
        (
            b'{"results": [' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"]}",
            "nested too deeply",
        ),
    ],
)
def test_parse_json_refuses_unreadable_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ReportParseError, match=f"^{message}"):
        parse_json(body)


def test_parse_json_allows_64_levels() -> None:
    body = b'{"results": [' + b"[" * 62 + b"]" * 62 + b"]}"

    result = only(parse_json(body))

    assert isinstance(result, InvalidItem)
    assert result.reason.startswith("result is not an object: ")


def test_parse_json_empty_results_gives_nothing() -> None:
    assert parse_json(b'{"results": []}') == []


def test_parse_json_duplicate_keys_last_wins() -> None:
    result = only(parse_json(b'{"results": [{"messageId": "first", "messageId": "last"}]}'))

    assert isinstance(result, DeliveryReport)
    assert result.message_id == "last"


def test_parse_json_item_without_message_id_leaves_the_others() -> None:
    without = changed(sample_item(), {"messageId": DROP})

    parsed = parse_json(body_of(sample_item(), without, changed(sample_item(), {"messageId": "b"})))

    assert isinstance(parsed[0], DeliveryReport)
    assert parsed[1] == InvalidItem(index=1, raw=without, reason="messageId is missing")
    assert isinstance(parsed[2], DeliveryReport)
    assert (parsed[2].index, parsed[2].message_id) == (2, "b")


@pytest.mark.parametrize(
    ("message_id", "reason"),
    [
        (None, "messageId is missing"),
        ("", "messageId is empty"),
        ("   ", "messageId is empty"),
        ({"id": "m0"}, "messageId: not a string: {'id': 'm0'}"),
        (True, "messageId: not a string: True"),
    ],
)
def test_parse_json_refuses_bad_message_ids(message_id: object, reason: str) -> None:
    assert invalid({"messageId": message_id}).reason == reason


def test_parse_json_reads_a_numeric_message_id_as_text() -> None:
    assert report({"messageId": 4242}).message_id == "4242"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"voiceCall.duration": "abc"}, "voiceCall.duration: not an integer: 'abc'"),
        ({"voiceCall.duration": 32.5}, "voiceCall.duration: not an integer: 32.5"),
        ({"voiceCall.chargedDuration": [60]}, "voiceCall.chargedDuration: not an integer: [60]"),
        ({"voiceCall.fileDuration": "long"}, "voiceCall.fileDuration: not a number: 'long'"),
        ({"sentAt": "yesterday"}, "sentAt: not a timestamp: 'yesterday'"),
        ({"voiceCall.endTime": "2026-02-30T10:00:00Z"}, "voiceCall.endTime: not a timestamp: "),
        ({"error.permanent": "maybe"}, "error.permanent: not a boolean: 'maybe'"),
        ({"error.permanent": 1}, "error.permanent: not a boolean: 1"),
        ({"status": "DELIVERED"}, "status: not an object: 'DELIVERED'"),
        ({"status.groupId": True}, "status.groupId: not an integer: True"),
        ({"status.name": {"n": 1}}, "status.name: not a string: {'n': 1}"),
        ({"voiceCall": "x"}, "voiceCall: not an object: 'x'"),
        ({"voiceCall.ivr": 5}, "voiceCall.ivr: not an object: 5"),
        ({"price": []}, "price: not an object: []"),
        ({"price.pricePerSecond": "cheap"}, "price.pricePerSecond: not a number: 'cheap'"),
        ({"price.pricePerSecond": "nan"}, "price.pricePerSecond: not a number: 'nan'"),
        ({"to": ["385981112233"]}, "to: not a string: ['385981112233']"),
        ({"to": False}, "to: not a string: False"),
        ({"callbackData": "x" * 100}, None),
    ],
)
def test_parse_json_names_the_bad_field(changes: dict[str, Any], reason: str | None) -> None:
    result = only(parse_json(body_of(changed(sample_item(), changes))))

    if reason is None:
        assert isinstance(result, DeliveryReport)
    else:
        assert isinstance(result, InvalidItem)
        assert result.reason.startswith(reason)
        assert result.raw == changed(sample_item(), changes)


def test_parse_json_refuses_a_result_that_is_not_an_object() -> None:
    parsed = parse_json(b'{"results": [42, null, {"messageId": "m0"}]}')

    assert parsed[:2] == [
        InvalidItem(index=0, raw=42, reason="result is not an object: 42"),
        InvalidItem(index=1, raw=None, reason="result is not an object: None"),
    ]
    assert isinstance(parsed[2], DeliveryReport)


HUGE = "9" * 5000


@pytest.mark.parametrize(
    ("field", "literal", "reason"),
    [
        ("voiceCall.duration", "1e400", "voiceCall.duration: out of range: '1e400'"),
        ("voiceCall.duration", HUGE, "voiceCall.duration: out of range: '99999"),
        ("voiceCall.duration", "9223372036854775808", "voiceCall.duration: out of range: "),
        ("voiceCall.duration", "1e30", "voiceCall.duration: out of range: 1e+30"),
        ("voiceCall.fileDuration", "-1e400", "voiceCall.fileDuration: out of range: '-1e400'"),
        ("voiceCall.fileDuration", HUGE, "voiceCall.fileDuration: out of range: '99999"),
        ("price.pricePerSecond", "1e400", "price.pricePerSecond: out of range: '1e400'"),
        ("price.pricePerSecond", HUGE + ".5", "price.pricePerSecond: out of range: "),
        ("status.groupId", HUGE, "status.groupId: out of range: '99999"),
        ("voiceCall.endTime", HUGE, "voiceCall.endTime: not a timestamp: '99999"),
        ("voiceCall.endTime", "1e400", "voiceCall.endTime: not a timestamp: '1e400'"),
        ("to", HUGE, None),
    ],
)
def test_parse_json_huge_numbers_make_an_invalid_item(
    field: str, literal: str, reason: str | None
) -> None:
    marker = "__HUGE__"
    text = json.dumps({"results": [changed(sample_item(), {field: marker})]})
    body = text.replace(f'"{marker}"', literal).encode()

    result = only(parse_json(body))

    if reason is None:
        assert isinstance(result, DeliveryReport)
        assert result.to == HUGE
    else:
        assert isinstance(result, InvalidItem)
        assert result.reason.startswith(reason)
        assert len(result.reason) < 120


def test_parse_json_keeps_huge_numbers_as_their_text_in_raw() -> None:
    body = ('{"results": [{"messageId": "m0", "duration": ' + HUGE + ', "x": 1e400}]}').encode()

    result = only(parse_json(body))

    assert isinstance(result, InvalidItem)
    assert result.raw == {"messageId": "m0", "duration": HUGE, "x": "1e400"}


def test_parse_json_coerces_numbers_and_booleans_in_text() -> None:
    as_text = changed(
        sample_item(),
        {
            "voiceCall.duration": "32",
            "voiceCall.chargedDuration": " 60 ",
            "voiceCall.fileDuration": "0",
            "price.pricePerSecond": "0.0012",
            "status.groupId": "3",
            "status.id": 5.0,
            "error.id": "10000",
            "error.permanent": "TRUE",
        },
    )

    assert report(as_text).model_dump(exclude={"raw"}) == report(sample_item()).model_dump(
        exclude={"raw"}
    )


@pytest.mark.parametrize(
    ("price", "expected"),
    [(0.1, Decimal("0.1")), (0.0012, Decimal("0.0012")), (1e-05, Decimal("0.00001")), (2, 2)],
)
def test_parse_json_reads_prices_without_binary_noise(price: float, expected: Decimal) -> None:
    result = report(changed(sample_item(), {"price.pricePerSecond": price}))

    assert result.price_per_second == expected
    assert isinstance(result.price_per_second, Decimal)


def test_parse_json_keeps_unknown_fields_in_raw() -> None:
    item = changed(
        sample_item(),
        {"newField": {"nested": [1, 2]}, "voiceCall.futureField": "x", "status.extra": None},
    )

    result = report(item)

    assert result.raw == item
    assert result.raw["newField"] == {"nested": [1, 2]}
    assert result.duration == 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"menu":"2"}', {"menu": "2"}),
        ("[1, 2]", [1, 2]),
        ('"2"', "2"),
        ("not json", "not json"),
        ("{broken", "{broken"),
        ("", ""),
        ("NaN", "NaN"),
        ("[" * 100 + "]" * 100, "[" * 100 + "]" * 100),
        ({"menu": "2"}, {"menu": "2"}),
        (["1", "2"], ["1", "2"]),
    ],
)
def test_parse_json_decodes_collected_values(value: Any, expected: Any) -> None:
    result = report(changed(sample_item(), {"voiceCall.ivr.spokenInput": value}))

    assert result.collected is not None
    assert result.collected["spokenInput"] == expected
    assert result.collected["collectedDtmfs"] == {"confirm": "1"}


def test_parse_json_collected_is_none_when_all_are_null() -> None:
    nothing = changed(sample_item(), {"voiceCall.ivr.collectedDtmfs": None})
    no_ivr = changed(sample_item(), {"voiceCall.ivr": DROP})

    assert report(nothing).collected is None
    assert report(no_ivr).collected is None
    assert report(no_ivr).scenario_id is None


def test_parse_json_v1_keeps_undecodable_dtmf_json_as_text() -> None:
    result = report(changed(v1_item(), {"dtmfCodesAsJson": "1#"}))

    assert result.collected == {
        "collectedDtmfs": "1#",
        "collectedMappedDtmfs": None,
        "spokenInput": None,
        "matchedSpokenInput": None,
    }


@pytest.mark.parametrize(("value", "expected"), [("", ""), (None, None), ("12#", "12#")])
def test_parse_json_keeps_dtmf_codes(value: str | None, expected: str | None) -> None:
    assert report(changed(sample_item(), {"voiceCall.dtmfCodes": value})).dtmf_codes == expected


@pytest.mark.parametrize(
    ("item", "occurred_at", "text"),
    [
        (
            changed(sample_item(), {"voiceCall.endTime": DROP}),
            at(2026, 4, 2, 7, 0, 1, 120),
            "2026-04-02T07:00:01.120+0000",
        ),
        (
            changed(sample_item(), {"voiceCall.endTime": None, "doneAt": "2026-04-02T07:00:50Z"}),
            at(2026, 4, 2, 7, 0, 50, 0),
            "2026-04-02T07:00:50Z",
        ),
        (
            changed(v1_item(), {"endTime": DROP}),
            at(2026, 4, 2, 7, 0, 41, 900),
            "2026-04-02T07:00:41.900+0000",
        ),
        (
            changed(v1_item(), {"endTime": None, "doneAt": None}),
            at(2026, 4, 2, 7, 0, 1, 120),
            "2026-04-02T07:00:01.120+0000",
        ),
        (
            changed(v1_item(), {"endTime": "1775113241500"}),
            at(2026, 4, 2, 7, 0, 41, 500),
            "1775113241500",
        ),
        ({"messageId": "m0"}, None, None),
    ],
    ids=["v2-sent", "v2-done", "v1-done", "v1-sent", "v1-digit-text", "none"],
)
def test_parse_json_chooses_occurred_at(
    item: dict[str, Any], occurred_at: datetime | None, text: str | None
) -> None:
    result = report(item)

    assert (result.occurred_at, result.occurred_at_text) == (occurred_at, text)


@pytest.mark.parametrize(
    ("item", "version"),
    [
        ({"messageId": "m0"}, 2),
        ({"messageId": "m0", "sentAt": "2026-04-02T07:00:01Z", "status": None}, 2),
        ({"messageId": "m0", "doneAt": "2026-04-02T07:00:01Z"}, 1),
        ({"messageId": "m0", "dtmfCodesAsJson": None}, 1),
        ({"messageId": "m0", "voiceCall": {"duration": 3}, "doneAt": None}, 2),
        ({"messageId": "m0", "voiceCall": None, "duration": 3}, 1),
    ],
)
def test_parse_json_detects_the_version(item: dict[str, Any], version: int) -> None:
    assert report(item).version == version


def test_parse_json_v1_reads_flat_fields_only() -> None:
    result = report(changed(v1_item(), {"voiceCall": DROP, "answeredBy": "MACHINE"}))

    assert (result.version, result.answered_by, result.duration) == (1, "MACHINE", 32)


def test_delivery_report_is_frozen() -> None:
    result = report(sample_item())

    with pytest.raises(pydantic.ValidationError):
        result.message_id = "other"  # type: ignore[misc]
