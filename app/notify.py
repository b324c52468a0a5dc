"""Parse delivery-report bodies, JSON or XML, versions 1 and 2, into typed reports; pure.

INFOBIP.md §4 gives the formats, §5 the status and error fields; DESIGN.md "Receiving
delivery reports", steps 2 and 3, says what a report must yield.
"""

import codecs
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict

from app.notify_xml import XmlRejected, read_xml_results

MAX_DEPTH = 64  # nesting levels allowed in a body, and in a decoded IVR value
_INT_LIMIT = 2**63  # every integer field fits a signed 64-bit column
_FLOAT_MAX = Decimal(sys.float_info.max)  # every number fits a float
_NUMBER_TEXT_MAX = 40  # longer numeric text is out of range before any conversion
_SHOW_MAX = 60  # characters of a bad value quoted in a reason
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIMESTAMP = re.compile(  # Infobip's form, also with `Z`, `+01:00`, microseconds or no offset
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?"
)
_EPOCH_MS_TEXT = re.compile(r"[0-9]{12,14}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
_JSON_TYPES = frozenset({"application/json"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})
# Top-level fields only version 1 has (INFOBIP.md §4, "Version 1").
_V1_KEYS = frozenset(
    {
        "doneAt",
        "startTime",
        "answerTime",
        "endTime",
        "duration",
        "fileDuration",
        "dtmfCodes",
        "dtmfCodesAsJson",
        "scenarioId",
        "scenarioName",
    }
)
# IVR values sent as JSON documents encoded in strings (INFOBIP.md §4, voiceCall.ivr.*).
_COLLECTED_V2 = ("collectedDtmfs", "collectedMappedDtmfs", "spokenInput", "matchedSpokenInput")
_COLLECTED_V1 = ("dtmfCodesAsJson",)

T = TypeVar("T")


class ReportParseError(ValueError):
    """A body that cannot be read as a whole; the message says precisely why."""


class _FieldError(Exception):
    """One result that cannot be used; the message names the field."""


class _Info(BaseModel):
    """The fields a status and an error share (INFOBIP.md §5)."""

    model_config = ConfigDict(frozen=True, strict=True)

    group_id: int | None = None
    group_name: str | None = None
    id: int | None = None
    name: str | None = None
    description: str | None = None


class StatusInfo(_Info):
    """Infobip's status of a report (INFOBIP.md §5)."""


class ErrorInfo(_Info):
    """Infobip's error of a report; `permanent` means final, not failure (INFOBIP.md §5)."""

    permanent: bool | None = None


class DeliveryReport(BaseModel):
    """One result of a POST, the same whether it came as JSON or XML, version 1 or 2."""

    model_config = ConfigDict(frozen=True, strict=True)

    index: int
    version: int
    message_id: str
    bulk_id: str | None = None
    to: str | None = None
    sender: str | None = None
    mcc_mnc: str | None = None
    callback_data: str | None = None
    sent_at: AwareDatetime | None = None
    start_time: AwareDatetime | None = None
    answer_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    done_at: AwareDatetime | None = None
    occurred_at: AwareDatetime | None = None
    occurred_at_text: str | None = None
    duration: int | None = None
    charged_duration: int | None = None
    file_duration: float | None = None
    price_per_second: Decimal | None = None
    currency: str | None = None
    answered_by: str | None = None
    dtmf_codes: str | None = None
    feature: str | None = None
    scenario_id: str | None = None
    scenario_name: str | None = None
    call_recording_file_id: str | None = None
    direction: str | None = None
    collected: dict[str, Any] | None = None
    status: StatusInfo | None = None
    error: ErrorInfo | None = None
    raw: dict[str, Any]


@dataclass(frozen=True)
class InvalidItem:
    """One result that cannot be used; the rest of the POST still counts."""

    index: int
    raw: Any
    reason: str


ParsedItem: TypeAlias = DeliveryReport | InvalidItem


def parse_report_body(body: bytes, content_type: str) -> list[ParsedItem]:
    """Parse a body by its media type: JSON, or XML (application/xml, text/xml)."""
    media_type, charset = _media_type(content_type)
    if media_type in _JSON_TYPES:
        return _parse_json_text(_decode(body, charset or "utf-8"))
    if media_type in _XML_TYPES:
        return parse_xml(body if charset is None else _transcode_xml(body, charset))
    raise ReportParseError(f"unsupported content type {media_type!r}")


def parse_json(body: bytes) -> list[ParsedItem]:
    """Parse a UTF-8 JSON body `{"results": [...]}` into one item per result."""
    return _parse_json_text(_decode(body, "utf-8"))


def parse_xml(body: bytes) -> list[ParsedItem]:
    """Parse an XML body through the hardened parser into one item per report element."""
    try:
        items = read_xml_results(body, max_depth=MAX_DEPTH)
    except XmlRejected as exc:
        raise ReportParseError(str(exc)) from exc
    return [_parse_item(index, item) for index, item in enumerate(items)]


def parse_timestamp(value: object) -> tuple[datetime | None, str | None]:
    """Return an Infobip timestamp or epoch milliseconds as aware UTC, with its original text."""
    if value is None:
        return None, None
    try:
        moment = _to_utc(value)
    except (OverflowError, ValueError) as exc:  # also out of datetime's range
        raise ValueError(f"not a timestamp: {_show(value)}") from exc
    return moment, value if isinstance(value, str) else str(value)


def _to_utc(value: object) -> datetime:
    """Return epoch milliseconds, or `yyyy-MM-ddTHH:mm:ss[.SSS][offset]`, as aware UTC."""
    if isinstance(value, str) and _EPOCH_MS_TEXT.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _EPOCH + timedelta(milliseconds=value)
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value.strip()):
        raise ValueError("not a timestamp")
    moment = datetime.fromisoformat(value.strip())
    # INFOBIP.md §4 always sends an offset; a time without one is read as UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _media_type(content_type: str) -> tuple[str, str | None]:
    """Return the lower-cased media type and the charset parameter, if any."""
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media_type.strip().lower(), charset


def _decode(body: bytes, charset: str) -> str:
    """Return the body as text in `charset` (a UTF-8 byte-order mark is dropped)."""
    try:
        codec = codecs.lookup(charset).name
        return body.decode("utf-8-sig" if codec == "utf-8" else codec)
    except LookupError as exc:
        raise ReportParseError(f"unknown charset {charset!r}") from exc
    except UnicodeDecodeError as exc:
        raise ReportParseError(
            f"body is not valid {charset}: {exc.reason} at byte {exc.start}"
        ) from exc


def _transcode_xml(body: bytes, charset: str) -> bytes:
    """Return an XML body as UTF-8 without its declaration: the charset parameter wins."""
    text = _decode(body, charset).lstrip("\ufeff")
    return _XML_DECLARATION.sub("", text, count=1).encode("utf-8")


def _parse_json_text(text: str) -> list[ParsedItem]:
    """Parse JSON text `{"results": [...]}` into one item per result."""
    try:
        document = _load_json(text)
    except json.JSONDecodeError as exc:
        raise ReportParseError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ReportParseError:
        raise
    except ValueError as exc:
        raise ReportParseError(f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ReportParseError("the body is not a JSON object")
    results = document.get("results")
    if not isinstance(results, list):
        raise ReportParseError("no `results` list")
    return [_parse_item(index, item) for index, item in enumerate(results)]


def _load_json(text: str) -> Any:
    """Return the JSON value of text; numbers beyond int or float stay as their text."""
    try:
        value = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except RecursionError as exc:
        raise ReportParseError("nested too deeply") from exc
    if _too_deep(value):
        raise ReportParseError("nested too deeply")
    return value


def _json_int(text: str) -> int | str:
    """Return a JSON integer, or its text when Python's digit limit refuses it."""
    try:
        return int(text)
    except ValueError:
        return text


def _json_float(text: str) -> float | str:
    """Return a JSON float, or its text when it does not fit a float (1e400)."""
    number = float(text)
    return number if math.isfinite(number) else text


def _json_constant(name: str) -> object:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ValueError(f"{name} is not allowed")


def _too_deep(value: Any) -> bool:
    """Return whether objects and lists nest more than MAX_DEPTH levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def _parse_item(index: int, item: Any) -> ParsedItem:
    """Return the report of one result, or why it cannot be used."""
    try:
        return _read_report(index, item)
    except _FieldError as exc:
        return InvalidItem(index=index, raw=item, reason=str(exc))


def _read_report(index: int, item: Any) -> DeliveryReport:
    """Return one result as a report; raise _FieldError naming the first bad field."""
    if not isinstance(item, dict):
        raise _FieldError(f"result is not an object: {_show(item)}")
    version = 2 if isinstance(item.get("voiceCall"), dict) or _V1_KEYS.isdisjoint(item) else 1
    message_id = _field(item, "messageId", _to_str)
    if message_id is None:
        raise _FieldError("messageId is missing")
    if not message_id.strip():
        raise _FieldError("messageId is empty")
    values: dict[str, Any] = {"index": index, "version": version, "message_id": message_id}
    for name, v2_path, v1_path, coerce in _FIELDS:
        values[name] = _field(item, v2_path if version == 2 else v1_path, coerce)
    values.update(_read_times(item, version))
    values["collected"] = _read_collected(item, version)
    status = _read_object(item, "status", _STATUS_FIELDS)
    error = _read_object(item, "error", _ERROR_FIELDS)
    values["status"] = None if status is None else StatusInfo(**status)
    values["error"] = None if error is None else ErrorInfo(**error)
    return DeliveryReport(**values, raw=item)


def _read_times(item: dict[str, Any], version: int) -> dict[str, Any]:
    """Return the timestamps and occurred_at (DESIGN.md step 3: end, else done, else sent)."""
    values: dict[str, Any] = {}
    texts: dict[str, str | None] = {}
    for name, v2_path, v1_path in _TIMES:
        path = v2_path if version == 2 else v1_path
        values[name], texts[name] = _field(item, path, parse_timestamp)
    chosen = next(
        (name for name in ("end_time", "done_at", "sent_at") if values[name] is not None), None
    )
    values["occurred_at"] = None if chosen is None else values[chosen]
    values["occurred_at_text"] = None if chosen is None else texts[chosen]
    return values


def _read_collected(item: dict[str, Any], version: int) -> dict[str, Any] | None:
    """Return the IVR values decoded from their JSON-in-string form; None when all are null."""
    if version == 2:
        paths = {key: f"voiceCall.ivr.{key}" for key in _COLLECTED_V2}
    else:
        paths = {key: key for key in _COLLECTED_V1}
    collected = {key: _decode_collected(_get(item, path)) for key, path in paths.items()}
    return collected if any(value is not None for value in collected.values()) else None


def _decode_collected(value: Any) -> Any:
    """Return a JSON-in-string value decoded; text that is not JSON, and objects, as they are."""
    if not isinstance(value, str):
        return value
    try:
        return _load_json(value)
    except (ValueError, RecursionError):
        return value


def _read_object(
    item: dict[str, Any], key: str, fields: tuple[tuple[str, str, Callable[[Any], Any]], ...]
) -> dict[str, Any] | None:
    """Return the coerced fields of a nested object such as `status`, or None when null."""
    value = _get(item, key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _FieldError(f"{key}: not an object: {_show(value)}")
    return {name: _field(item, f"{key}.{source}", coerce) for name, source, coerce in fields}


def _get(item: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path; None when any part is missing or null."""
    value: Any = item
    walked: list[str] = []
    for key in path.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _FieldError(f"{'.'.join(walked)}: not an object: {_show(value)}")
        value = value.get(key)
        walked.append(key)
    return value


def _field(item: dict[str, Any], path: str, coerce: Callable[[Any], T]) -> T:
    """Return the coerced value at a dotted path; raise _FieldError naming the path."""
    value = _get(item, path)
    try:
        return coerce(value)
    except ValueError as exc:
        raise _FieldError(f"{path}: {exc}") from exc


def _to_str(value: object) -> str | None:
    """Return text as it is, a number as its text, null as None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"not a string: {_show(value)}")


def _to_bool(value: object) -> bool | None:
    """Return a JSON boolean or the text `true` / `false`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"not a boolean: {_show(value)}")


def _to_decimal(value: object, kind: str = "a number") -> Decimal | None:
    """Return a number, or numeric text, as a Decimal that also fits a float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not {kind}: {_show(value)}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not {kind}: {_show(value)}")
    number = Decimal(text) if len(text) <= _NUMBER_TEXT_MAX else None
    if number is None or abs(number) > _FLOAT_MAX:
        raise ValueError(f"out of range: {_show(value)}")
    return number


def _to_int(value: object) -> int | None:
    """Return a whole number, or its text, as an int within 64 bits."""
    number = _to_decimal(value, "an integer")
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {_show(value)}")
    if abs(number) >= _INT_LIMIT:
        raise ValueError(f"out of range: {_show(value)}")
    return int(number)


def _to_float(value: object) -> float | None:
    """Return a number, or numeric text, as a float."""
    number = _to_decimal(value)
    return None if number is None else float(number)


def _show(value: object) -> str:
    """Return a value quoted for a reason, shortened when long."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else f"{text[: _SHOW_MAX - 3]}..."


# Model field, version 2 path, version 1 path, coercion (INFOBIP.md §4).
_FIELDS: tuple[tuple[str, str, str, Callable[[Any], Any]], ...] = (
    ("bulk_id", "bulkId", "bulkId", _to_str),
    ("to", "to", "to", _to_str),
    ("sender", "from", "from", _to_str),
    ("mcc_mnc", "mccMnc", "mccMnc", _to_str),
    ("callback_data", "callbackData", "callbackData", _to_str),
    ("duration", "voiceCall.duration", "duration", _to_int),
    ("charged_duration", "voiceCall.chargedDuration", "chargedDuration", _to_int),
    ("file_duration", "voiceCall.fileDuration", "fileDuration", _to_float),
    ("price_per_second", "price.pricePerSecond", "price.pricePerSecond", _to_decimal),
    ("currency", "price.currency", "price.currency", _to_str),
    ("answered_by", "voiceCall.answeredBy", "answeredBy", _to_str),
    ("dtmf_codes", "voiceCall.dtmfCodes", "dtmfCodes", _to_str),
    ("feature", "voiceCall.feature", "feature", _to_str),
    ("scenario_id", "voiceCall.ivr.scenarioId", "scenarioId", _to_str),
    ("scenario_name", "voiceCall.ivr.scenarioName", "scenarioName", _to_str),
    ("call_recording_file_id", "voiceCall.callRecordingFileId", "callRecordingFileId", _to_str),
    ("direction", "voiceCall.direction", "direction", _to_str),
)
# Timestamps: model field, version 2 path, version 1 path (INFOBIP.md §4; no doneAt in v2).
_TIMES = (
    ("sent_at", "sentAt", "sentAt"),
    ("start_time", "voiceCall.startTime", "startTime"),
    ("answer_time", "voiceCall.answerTime", "answerTime"),
    ("end_time", "voiceCall.endTime", "endTime"),
    ("done_at", "doneAt", "doneAt"),
)
# Model field, JSON name, coercion (INFOBIP.md §5).
_STATUS_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("group_id", "groupId", _to_int),
    ("group_name", "groupName", _to_str),
    ("id", "id", _to_int),
    ("name", "name", _to_str),
    ("description", "description", _to_str),
)
_ERROR_FIELDS = (*_STATUS_FIELDS, ("permanent", "permanent", _to_bool))
