"""Launch body validation: every rule by JSON path, clamps, numbers, both forms."""

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest

from app.launch.request import (
    Clamp,
    Destination,
    LaunchValidationError,
    Problem,
    normalise_number,
    parse_launch,
)
from tests.conftest import DATA

NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # the sample's sendAt is the next morning
DROP = object()


def sample() -> dict[str, Any]:
    """Return the seed-shaped launch body from tests/data."""
    body: dict[str, Any] = json.loads((DATA / "launch-request.json").read_text())
    return body


def body_with(message: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Return the sample with messages[0] and top-level keys changed (DROP removes a key)."""
    body = sample()
    for target, changes in ((body["messages"][0], message or {}), (body, top)):
        for key, value in changes.items():
            if value is DROP:
                del target[key]
            else:
                target[key] = value
    return body


def flat_body(**changes: Any) -> dict[str, Any]:
    """Return a flat-form body shaped like the seed table's request example."""
    body = {
        "bulkId": "BULK-ID-123-xyz",
        "name": "Spring reminders",
        "to": ["41793026727", 41793026731],
        "scenarioId": "6298AA7707903A4ED680B436929681AD",
        "from": "41793026700",
        "parameters": {"foo": "bar"},
        "notifyUrl": "https://www.example.com/voice/advanced",
        "notifyContentType": "application/json",
        "callbackData": "DLR callback data",
        "validityPeriod": 720,
        "sendAt": "2026-04-07T17:00:00.000+01:00",
        "record": False,
        "retry": {"minPeriod": 1, "maxPeriod": 5, "maxCount": 5},
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not DROP}


def problems_of(body: object) -> list[Problem]:
    """Return the problems parse_launch raises for body."""
    with pytest.raises(LaunchValidationError) as info:
        parse_launch(body, now=NOW)
    return info.value.problems


def window(**changes: Any) -> dict[str, Any]:
    """Return a valid deliveryTimeWindow with changes (DROP removes a key)."""
    value = {"days": ["MONDAY", "FRIDAY"], "from": {"hour": 8, "minute": 0}}
    value["to"] = {"hour": 17, "minute": 30}
    value.update(changes)
    return {key: item for key, item in value.items() if item is not DROP}


def at(moment: datetime) -> str:
    """Spell a moment the way Infobip does."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


M0 = "messages[0]."
D0 = "messages[0].destinations[0]"

RULES = [
    # the body and its top level
    pytest.param([], "", "JSON object", id="body-not-object"),
    pytest.param(body_with(to=["385911234567"]), "", "either", id="both-forms"),
    pytest.param(body_with(extra=1), "extra", "unknown field", id="unknown-top-level"),
    pytest.param(
        body_with(scenarioId="S"), "scenarioId", "unknown field", id="message-field-on-top"
    ),
    pytest.param(body_with(bulkId="a b"), "bulkId", "may contain only", id="bulk-id-chars"),
    pytest.param(body_with(bulkId="b" * 201), "bulkId", "at most 200", id="bulk-id-long"),
    pytest.param(body_with(bulkId=""), "bulkId", "must not be empty", id="bulk-id-empty"),
    pytest.param(body_with(bulkId=17), "bulkId", "must be a string", id="bulk-id-type"),
    pytest.param(body_with(name=""), "name", "must not be empty", id="name-empty"),
    pytest.param(body_with(name="n" * 201), "name", "at most 200", id="name-long"),
    pytest.param(body_with(messages=DROP), "messages", "is required", id="messages-missing"),
    pytest.param(body_with(messages=[]), "messages", "must not be empty", id="messages-empty"),
    pytest.param(body_with(messages={}), "messages", "must be an array", id="messages-type"),
    pytest.param(body_with(messages=["x"]), "messages[0]", "must be an object", id="message-type"),
    # scenarioId and destinations
    pytest.param(
        body_with({"scenarioId": DROP}), M0 + "scenarioId", "is required", id="scenario-missing"
    ),
    pytest.param(
        body_with({"scenarioId": ""}), M0 + "scenarioId", "not be empty", id="scenario-empty"
    ),
    pytest.param(
        body_with({"scenarioId": 7}), M0 + "scenarioId", "be a string", id="scenario-type"
    ),
    pytest.param(
        body_with({"destinations": DROP}), M0 + "destinations", "is required", id="dest-missing"
    ),
    pytest.param(
        body_with({"destinations": "x"}), M0 + "destinations", "be an array", id="dest-type"
    ),
    pytest.param(
        body_with({"destinations": []}), M0 + "destinations", "not be empty", id="dest-empty"
    ),
    pytest.param(
        body_with({"destinations": [{"to": "385911234567"}] * 20_001}),
        M0 + "destinations",
        "at most 20000",
        id="dest-too-many",
    ),
    pytest.param(
        body_with({"destinations": ["385911234567"]}), D0, "must be an object", id="dest-item"
    ),
    pytest.param(
        body_with({"destinations": [{"to": "385911234567", "name": "Ana"}]}),
        D0 + ".name",
        "unknown field",
        id="dest-unknown-key",
    ),
    pytest.param(body_with({"destinations": [{}]}), D0 + ".to", "is required", id="to-missing"),
    pytest.param(
        body_with({"destinations": [{"to": "0911234567"}]}), D0 + ".to", "country code", id="to-bad"
    ),
    pytest.param(
        body_with({"destinations": [{"to": "385911234567", "messageId": "a/b"}]}),
        D0 + ".messageId",
        "may contain only",
        id="message-id-chars",
    ),
    pytest.param(
        body_with({"destinations": [{"to": "385911234567", "messageId": "m" * 201}]}),
        D0 + ".messageId",
        "at most 200",
        id="message-id-long",
    ),
    pytest.param(
        body_with({"destinations": [{"to": "385911234567", "messageId": 5}]}),
        D0 + ".messageId",
        "must be a string",
        id="message-id-type",
    ),
    # sender, callback data, parameters
    pytest.param(body_with({"from": "12"}), M0 + "from", "3 to 14 digits", id="from-short"),
    pytest.param(body_with({"from": "1" * 15}), M0 + "from", "3 to 14 digits", id="from-long"),
    pytest.param(body_with({"from": "InfoSMS"}), M0 + "from", "numeric sender", id="from-alpha"),
    pytest.param(body_with({"from": True}), M0 + "from", "must be a string", id="from-bool"),
    pytest.param(
        body_with({"callbackData": "c" * 201}),
        M0 + "callbackData",
        "at most 200",
        id="callback-long",
    ),
    pytest.param(
        body_with({"parameters": ["a"]}), M0 + "parameters", "be an object", id="parameters-type"
    ),
    pytest.param(
        body_with({"parameters": {"slot": {"at": "09:30"}}}),
        M0 + "parameters.slot",
        "nested values are refused",
        id="parameter-nested",
    ),
    pytest.param(
        body_with({"parameters": {"slot": None}}),
        M0 + "parameters.slot",
        "string, number or boolean",
        id="parameter-null",
    ),
    pytest.param(
        body_with({"parameters": {"ratio": float("nan")}}),
        M0 + "parameters.ratio",
        "finite",
        id="parameter-nan",
    ),
    # reports
    pytest.param(
        body_with({"notifyUrl": "/hooks/ivr"}), M0 + "notifyUrl", "absolute", id="url-relative"
    ),
    pytest.param(
        body_with({"notifyUrl": "ftp://a.example"}),
        M0 + "notifyUrl",
        "http or https",
        id="url-scheme",
    ),
    pytest.param(
        body_with({"notifyUrl": "https://a.example/" + "x" * 2048}),
        M0 + "notifyUrl",
        "at most 2048",
        id="url-long",
    ),
    pytest.param(body_with({"notifyUrl": 5}), M0 + "notifyUrl", "must be a string", id="url-type"),
    pytest.param(
        body_with({"notifyContentType": "text/plain"}),
        M0 + "notifyContentType",
        "'application/json' or 'application/xml'",
        id="content-type",
    ),
    pytest.param(
        body_with({"notifyContentVersion": 3}), M0 + "notifyContentVersion", "1 or 2", id="version"
    ),
    pytest.param(
        body_with({"notifyContentVersion": True}),
        M0 + "notifyContentVersion",
        "must be an integer",
        id="version-bool",
    ),
    # validity, retry, speed
    pytest.param(
        body_with({"validityPeriod": 0}),
        M0 + "validityPeriod",
        "greater than 0",
        id="validity-zero",
    ),
    pytest.param(
        body_with({"validityPeriod": 720.0}), M0 + "validityPeriod", "integer", id="validity-float"
    ),
    pytest.param(
        body_with({"validityPeriod": True}), M0 + "validityPeriod", "integer", id="validity-bool"
    ),
    pytest.param(
        body_with({"validityPeriod": "720"}), M0 + "validityPeriod", "integer", id="validity-str"
    ),
    pytest.param(body_with({"retry": 3}), M0 + "retry", "must be an object", id="retry-type"),
    pytest.param(
        body_with({"retry": {"minPeriod": 5, "maxPeriod": 30}}),
        M0 + "retry.maxCount",
        "is required",
        id="retry-missing",
    ),
    pytest.param(
        body_with({"retry": {"minPeriod": 30, "maxPeriod": 5, "maxCount": 1}}),
        M0 + "retry.maxPeriod",
        "at least minPeriod (30)",
        id="retry-order",
    ),
    pytest.param(
        body_with({"retry": {"minPeriod": 0, "maxPeriod": 5, "maxCount": 1}}),
        M0 + "retry.minPeriod",
        "greater than 0",
        id="retry-zero",
    ),
    pytest.param(
        body_with({"retry": {"minPeriod": 1, "maxPeriod": 5, "maxCount": 1, "every": 2}}),
        M0 + "retry.every",
        "unknown field",
        id="retry-unknown",
    ),
    pytest.param(
        body_with({"sendingSpeed": {"speed": 0, "timeUnit": "minute"}}),
        M0 + "sendingSpeed.speed",
        "greater than 0",
        id="speed-zero",
    ),
    pytest.param(
        body_with({"sendingSpeed": {"speed": 5, "timeUnit": "week"}}),
        M0 + "sendingSpeed.timeUnit",
        "'second', 'minute', 'hour' or 'day'",
        id="speed-unit",
    ),
    # scheduling
    pytest.param(
        body_with({"sendAt": "tomorrow"}), M0 + "sendAt", "like 2026-07-07", id="send-at-text"
    ),
    pytest.param(
        body_with({"sendAt": "2026-04-02T09:00:00"}),
        M0 + "sendAt",
        "with an offset",
        id="send-at-naive",
    ),
    pytest.param(
        body_with({"sendAt": "2026-02-30T09:00:00Z"}),
        M0 + "sendAt",
        "date and time",
        id="send-at-date",
    ),
    pytest.param(
        body_with({"sendAt": at(NOW - timedelta(hours=1, seconds=1))}),
        M0 + "sendAt",
        "an hour in the past",
        id="send-at-past",
    ),
    pytest.param(
        body_with({"sendAt": at(NOW + timedelta(days=180, seconds=1))}),
        M0 + "sendAt",
        "180 days ahead",
        id="send-at-ahead",
    ),
    pytest.param(
        body_with({"sendAt": 1775000000}), M0 + "sendAt", "must be a string", id="send-at-type"
    ),
    # call handling
    pytest.param(body_with({"record": "false"}), M0 + "record", "true or false", id="record-type"),
    pytest.param(
        body_with({"ringTimeout": 0}), M0 + "ringTimeout", "greater than 0", id="ring-timeout"
    ),
    pytest.param(body_with({"callTimeout": 1.5}), M0 + "callTimeout", "integer", id="call-timeout"),
    pytest.param(body_with({"pause": 11}), M0 + "pause", "at most 10", id="pause-high"),
    pytest.param(body_with({"pause": -1}), M0 + "pause", "at least 0", id="pause-negative"),
    # delivery time window
    pytest.param(
        body_with({"deliveryTimeWindow": window(days=[])}),
        M0 + "deliveryTimeWindow.days",
        "must not be empty",
        id="window-no-days",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(days=["MONDAY", "monday"])}),
        M0 + "deliveryTimeWindow.days[1]",
        "'MONDAY'",
        id="window-day-name",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(days=["MONDAY", "MONDAY"])}),
        M0 + "deliveryTimeWindow.days",
        "repeats MONDAY",
        id="window-day-repeated",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(to=DROP)}),
        M0 + "deliveryTimeWindow",
        "both from and to",
        id="window-half",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(to={"hour": 8, "minute": 59})}),
        M0 + "deliveryTimeWindow",
        "at least one hour after",
        id="window-short",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(to={"hour": 7, "minute": 0})}),
        M0 + "deliveryTimeWindow",
        "at least one hour after",
        id="window-reversed",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(to={"hour": 24, "minute": 0})}),
        M0 + "deliveryTimeWindow.to.hour",
        "at most 23",
        id="window-hour",
    ),
    pytest.param(
        body_with({"deliveryTimeWindow": window(to={"hour": 9})}),
        M0 + "deliveryTimeWindow.to.minute",
        "is required",
        id="window-minute",
    ),
    # the flat form
    pytest.param(flat_body(to=[]), "to", "must not be empty", id="flat-to-empty"),
    pytest.param(flat_body(to={"a": 1}), "to", "array of numbers", id="flat-to-object"),
    pytest.param(flat_body(to=None), "to", "is required", id="flat-to-null"),
    pytest.param(
        flat_body(to=["41793026727", "abc"]), "to[1]", "may contain only", id="flat-to-item"
    ),
    pytest.param(flat_body(messageId="m-1"), "messageId", "one number only", id="flat-message-id"),
    pytest.param(flat_body(foo=1), "foo", "unknown field", id="flat-unknown"),
    pytest.param(
        flat_body(destinations=[]), "destinations", "unknown field", id="flat-destinations"
    ),
    pytest.param(flat_body(scenarioId=DROP), "scenarioId", "is required", id="flat-scenario"),
    pytest.param(
        flat_body(retry={"minPeriod": 1, "maxPeriod": 5}),
        "retry.maxCount",
        "is required",
        id="flat-retry",
    ),
]


@pytest.mark.parametrize(("body", "path", "fragment"), RULES)
def test_parse_launch_reports_one_problem_per_rule(body: object, path: str, fragment: str) -> None:
    problems = problems_of(body)
    assert [problem.path for problem in problems] == [path]
    assert fragment in problems[0].message


ACCEPTED = [
    pytest.param({"sendAt": "2026-04-02T09:00:00.000+0200"}, id="send-at-infobip"),
    pytest.param({"sendAt": "2026-04-02T09:00:00+02:00"}, id="send-at-colon"),
    pytest.param({"sendAt": "2026-04-02T07:00:00Z"}, id="send-at-zulu"),
    pytest.param({"sendAt": at(NOW - timedelta(hours=1))}, id="send-at-an-hour-ago"),
    pytest.param({"sendAt": at(NOW + timedelta(days=180))}, id="send-at-180-days"),
    pytest.param({"deliveryTimeWindow": window(to={"hour": 9, "minute": 0})}, id="window-one-hour"),
    pytest.param({"deliveryTimeWindow": {"days": ["SUNDAY"]}}, id="window-days-only"),
    pytest.param({"pause": 0, "ringTimeout": 45, "callTimeout": 600}, id="call-handling"),
    pytest.param(
        {"notifyContentVersion": 1, "notifyContentType": "application/xml"}, id="report-v1"
    ),
    pytest.param({"notifyUrl": "http://localhost:8080/hooks"}, id="url-http"),
    pytest.param({"sendingSpeed": {"speed": 1, "timeUnit": "day"}}, id="speed"),
    pytest.param({"from": None, "sendAt": None, "retry": None}, id="nulls"),
]


@pytest.mark.parametrize("message", ACCEPTED)
def test_parse_launch_accepts_valid_values(message: dict[str, Any]) -> None:
    (spec,) = parse_launch(body_with(message), now=NOW).messages
    for key, value in message.items():
        assert (spec.notify_url if key == "notifyUrl" else spec.fields.get(key)) == value


def test_parse_launch_drops_null_optional_fields() -> None:
    fields = parse_launch(body_with({"from": None, "retry": None}), now=NOW).messages[0].fields
    assert "from" not in fields
    assert "retry" not in fields


CLAMPS = [
    pytest.param(
        body_with({"validityPeriod": 5000}),
        [Clamp("messages[0].validityPeriod", 5000, 2880)],
        id="validity-period",
    ),
    pytest.param(
        body_with({"retry": {"minPeriod": 1, "maxPeriod": 5, "maxCount": 9}}),
        [Clamp("messages[0].retry.maxCount", 9, 4)],
        id="retry-max-count",
    ),
    pytest.param(body_with({"validityPeriod": 2880}), [], id="validity-at-limit"),
    pytest.param(
        flat_body(validityPeriod=2881),
        [Clamp("validityPeriod", 2881, 2880), Clamp("retry.maxCount", 5, 4)],
        id="flat",
    ),
]


@pytest.mark.parametrize(("body", "clamps"), CLAMPS)
def test_parse_launch_clamps_to_infobip_limits(body: dict[str, Any], clamps: list[Clamp]) -> None:
    request = parse_launch(body, now=NOW)
    assert list(request.clamped) == clamps
    fields = request.messages[0].fields
    assert fields.get("validityPeriod", 0) <= 2880
    assert fields["retry"]["maxCount"] <= 4


def test_parse_launch_clamp_path_names_the_message() -> None:
    body = sample()
    body["messages"].append(copy.deepcopy(body["messages"][0]) | {"validityPeriod": 3000})
    body["messages"][1]["destinations"] = [{"to": "385917777777"}]
    clamp = parse_launch(body, now=NOW).clamped[0]
    assert clamp.as_json() == {"path": "messages[1].validityPeriod", "from": 3000, "to": 2880}


NORMALISED = [
    pytest.param("+385 91 234 5678", "385912345678", id="plus-spaces"),
    pytest.param("00385912345678", "385912345678", id="double-zero"),
    pytest.param("(385) 91-234.5678", "385912345678", id="punctuation"),
    pytest.param(385912345678, "385912345678", id="json-integer"),
    pytest.param("385912345678", "385912345678", id="digits"),
    pytest.param("+41 79 302 67 27", "41793026727", id="swiss"),
    pytest.param("1 (212) 555-0123", "12125550123", id="nanp"),
]


@pytest.mark.parametrize(("raw", "digits"), NORMALISED)
def test_normalise_number_returns_digits(raw: object, digits: str) -> None:
    assert normalise_number(raw) == digits


REFUSED = [
    pytest.param("0912345678", "starts with 0: add the country code", id="leading-zero"),
    pytest.param("000385912345678", "starts with 0", id="zero-after-00"),
    pytest.param("385123", "too short", id="too-short"),
    pytest.param("3859123456789012", "too long", id="too-long"),
    pytest.param("38591abc5678", "may contain only digits", id="letters"),
    pytest.param("++385912345678", "may contain only digits", id="two-pluses"),
    pytest.param("\uff13\uff18\uff15" + "912345678", "may contain only digits", id="fullwidth"),
    pytest.param("", "must not be empty", id="empty"),
    pytest.param("3851234567890", "not a possible international number", id="impossible-length"),
    pytest.param("999123456789", "not a possible international number", id="no-country"),
    pytest.param(True, "string or a positive integer", id="boolean"),
    pytest.param(385912345678.0, "string or a positive integer", id="float"),
    pytest.param(-385912345678, "string or a positive integer", id="negative"),
    pytest.param(None, "string or a positive integer", id="null"),
]


@pytest.mark.parametrize(("raw", "fragment"), REFUSED)
def test_normalise_number_refuses(raw: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        normalise_number(raw)


def test_normalise_number_agrees_with_phonenumbers() -> None:
    chooser = random.Random(20260401)
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    for _ in range(3000):
        code = str(chooser.choice(codes))
        lead = chooser.choice(["0", "1", "8", "9", ""])
        rest = lead + "".join(chooser.choice("0123456789") for _ in range(14))
        digits = (code + rest)[: chooser.randint(max(7, len(code) + 1), 15)]
        try:
            expected = phonenumbers.is_possible_number(phonenumbers.parse("+" + digits))
        except phonenumbers.NumberParseException:
            expected = False
        try:
            accepted = normalise_number(digits) == digits
        except ValueError:
            accepted = False
        assert accepted == expected, digits


def test_parse_launch_seed_request() -> None:
    request = parse_launch(sample(), now=NOW)
    assert request.bulk_id == "spring-reminders-2026-04"
    assert request.name is None
    assert request.flat is False
    assert request.clamped == ()
    assert request.destination_count == 2
    (message,) = request.messages
    assert message.index == 0
    assert message.notify_url == "https://crm.example.org/hooks/ivr"
    assert message.destinations == (
        Destination("385981112233", None),
        Destination("385917654321", "caller-chosen-id-0002"),
    )
    expected = {k: v for k, v in sample()["messages"][0].items()}
    del expected["destinations"], expected["notifyUrl"]
    assert message.fields == expected
    assert json.loads(json.dumps(message.fields)) == expected


def test_parse_launch_flat_form_is_one_message() -> None:
    request = parse_launch(flat_body(), now=NOW)
    assert request.flat is True
    assert request.bulk_id == "BULK-ID-123-xyz"
    assert request.name == "Spring reminders"
    (message,) = request.messages
    assert message.destinations == (
        Destination("41793026727", None),
        Destination("41793026731", None),
    )
    assert message.notify_url == "https://www.example.com/voice/advanced"
    assert message.fields["sendAt"] == "2026-04-07T17:00:00.000+01:00"
    assert message.fields["retry"] == {"minPeriod": 1, "maxPeriod": 5, "maxCount": 4}
    assert not {"to", "bulkId", "name", "notifyUrl", "messageId"} & message.fields.keys()


def test_parse_launch_flat_form_one_number_with_message_id() -> None:
    request = parse_launch(flat_body(to="+41 79 302 67 27", messageId="only-one"), now=NOW)
    assert request.messages[0].destinations == (Destination("41793026727", "only-one"),)


def test_parse_launch_reports_several_problems_at_once() -> None:
    body = body_with({"destinations": [{"to": "0911234567"}, {"to": "12"}]}, bulkId="a b")
    body["messages"].append({"scenarioId": "S", "validityPeriod": -5, "destinations": [{}]})
    with pytest.raises(LaunchValidationError) as info:
        parse_launch(body, now=NOW)
    paths = [problem.path for problem in info.value.problems]
    assert paths == [
        "bulkId",
        "messages[0].destinations[0].to",
        "messages[0].destinations[1].to",
        "messages[1].validityPeriod",
        "messages[1].destinations[0].to",
    ]
    assert str(info.value).startswith("bulkId: may contain only")
    assert str(info.value).count("; ") == 4


def test_parse_launch_passes_unknown_message_fields_through() -> None:
    extra = {"machineDetection": {"enabled": True}, "futureField": None, "tags": ["a", 1]}
    request = parse_launch(body_with(extra), now=NOW)
    fields = request.messages[0].fields
    assert {key: fields[key] for key in extra} == extra


def test_parse_launch_turns_parameters_into_strings() -> None:
    parameters = {"s": "x", "n": 5, "f": 1.5, "t": True, "no": False, "big": 10**20, "e": 1e-7}
    fields = parse_launch(body_with({"parameters": parameters}), now=NOW).messages[0].fields
    assert fields["parameters"] == {
        "s": "x",
        "n": "5",
        "f": "1.5",
        "t": "true",
        "no": "false",
        "big": "100000000000000000000",
        "e": "1e-07",
    }


def test_parse_launch_sender_integer_becomes_digits() -> None:
    fields = parse_launch(body_with({"from": 38517771234}), now=NOW).messages[0].fields
    assert fields["from"] == "38517771234"


def test_parse_launch_refuses_repeated_message_id() -> None:
    body = body_with({"destinations": [{"to": "385911111111", "messageId": "dup"}]})
    body["messages"].append(
        {
            "scenarioId": "S",
            "destinations": [
                {"to": "385912222222", "messageId": "other"},
                {"to": "385913333333", "messageId": "dup"},
            ],
        }
    )
    problems = problems_of(body)
    assert problems == [
        Problem(
            "messages[1].destinations[1].messageId",
            "repeats the messageId at messages[0].destinations[0].messageId",
        )
    ]


def test_parse_launch_requires_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_launch(sample(), now=datetime(2026, 4, 1, 12))  # noqa: DTZ001 - the point of the test


def test_launch_validation_error_joins_problems() -> None:
    error = LaunchValidationError([Problem("", "must be a JSON object"), Problem("to[1]", "x")])
    assert str(error) == "must be a JSON object; to[1]: x"


def test_parse_launch_counts_destinations_over_messages() -> None:
    body = sample()
    body["messages"].append({"scenarioId": "S", "destinations": [{"to": "385917777777"}]})
    assert parse_launch(body, now=NOW).destination_count == 3
