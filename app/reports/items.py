"""Read one result of a delivery-report POST into a typed report, or say why it is unusable.

INFOBIP.md §4 gives the fields of versions 1 and 2 (JSON and XML alike, once
app/notify.py has read the body), §5 the status and error fields; DESIGN.md
"Receiving delivery reports", step 3, says what a report must yield. Two readers
give the same reports: a fast one for results shaped as usual, which is the hot
path of a large POST, and a field-by-field one that names the first bad field.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict

from app.reports.fields import (
    load_json,
    parse_timestamp,
    show,
    to_bool,
    to_decimal,
    to_float,
    to_int,
    to_str,
)

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
# The four keys `collected` always has; version 1 sends only the DTMF codes, as
# dtmfCodesAsJson, which land under collectedDtmfs.
_COLLECTED_V2 = ("collectedDtmfs", "collectedMappedDtmfs", "spokenInput", "matchedSpokenInput")
_COLLECTED_V1 = ("dtmfCodesAsJson",)
_COLLECTED_PATHS = {
    2: {key: f"voiceCall.ivr.{key}" for key in _COLLECTED_V2},
    1: {"collectedDtmfs": "dtmfCodesAsJson"},
}

T = TypeVar("T")


class _FieldError(Exception):
    """One result that cannot be used; the message names the field."""


class _Unusual(Exception):
    """A result the fast reader leaves to the field-by-field one."""


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


_InfoT = TypeVar("_InfoT", bound=_Info)
# Statuses and errors read so far, by their values: a POST repeats a few of them.
_INFOS: dict[tuple[Any, ...], _Info] = {}
_INFOS_MAX = 1024


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


def read_item(index: int, item: Any) -> ParsedItem:
    """Return the report of one result, or why it cannot be used."""
    try:
        return _read_usual_report(index, item)
    except (_Unusual, _FieldError, ValueError):
        pass  # read again field by field, which names the first bad one
    try:
        return _read_report(index, item)
    except _FieldError as exc:
        return InvalidItem(index=index, raw=item, reason=str(exc))


def _read_usual_report(index: int, item: Any) -> DeliveryReport:
    """Return a result whose objects are all objects, as _read_report would; raise otherwise.

    The hot path of a large POST: each nested object is looked up once, text is taken
    as it is, a status or an error seen before is reused, and anything unusual raises
    for _read_report, which reads it again and names what is wrong.
    """
    if type(item) is not dict:
        raise _Unusual
    version = 2 if isinstance(item.get("voiceCall"), dict) or _V1_KEYS.isdisjoint(item) else 1
    message_id = to_str(item.get("messageId"))
    if message_id is None or not message_id.strip():
        raise _Unusual
    values: dict[str, Any] = {"index": index, "version": version, "message_id": message_id}
    texts: dict[str, str | None] = {}
    for parent_keys, fields, moments, absent in _USUAL_PLANS[version]:
        parent = _usual_object(item, parent_keys) if parent_keys else item
        if parent is None:
            values.update(absent)
            texts.update(absent)  # (also the fields' names: only timestamps' are read)
            continue
        for name, key, coerce in fields:
            value = parent.get(key)
            # Every coercion gives None for None, and to_str gives text as it is.
            if value is not None and (coerce is not to_str or type(value) is not str):
                value = coerce(value)
            values[name] = value
        for name, key in moments:
            values[name], texts[name] = parse_timestamp(parent.get(key))
    _choose_occurred_at(values, texts)
    holder = _usual_object(item, ("voiceCall", "ivr")) if version == 2 else item
    keys = _COLLECTED_V2 if version == 2 else _COLLECTED_V1
    if holder is None or all(holder.get(key) is None for key in keys):
        values["collected"] = None
    else:
        values["collected"] = _read_collected(item, version)
    values["status"] = _usual_info(StatusInfo, item.get("status"), _STATUS_FIELDS)
    values["error"] = _usual_info(ErrorInfo, item.get("error"), _ERROR_FIELDS)
    values["raw"] = item
    return DeliveryReport.model_validate(values)


def _usual_object(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    """Return the object at a path of keys, None when a part is null; raise when not an object."""
    value: Any = item
    for key in keys:
        if value is None:
            return None
        if type(value) is not dict:
            raise _Unusual
        value = value.get(key)
    if value is not None and type(value) is not dict:
        raise _Unusual
    return value


def _usual_info(
    kind: type[_InfoT], value: Any, fields: tuple[tuple[str, str, Callable[[Any], Any]], ...]
) -> _InfoT | None:
    """Return a status or error object read as _read_object would, reusing an equal one."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Unusual
    key = (kind, *[coerce(value.get(source)) for _, source, coerce in fields])
    info = _INFOS.get(key)
    if info is None:
        if len(_INFOS) >= _INFOS_MAX:
            _INFOS.clear()
        names = [name for name, _, _ in fields]
        info = _INFOS[key] = kind(**dict(zip(names, key[1:], strict=True)))
    return cast(_InfoT, info)


def _read_report(index: int, item: Any) -> DeliveryReport:
    """Return one result as a report; raise _FieldError naming the first bad field."""
    if not isinstance(item, dict):
        raise _FieldError(f"result is not an object: {show(item)}")
    version = 2 if isinstance(item.get("voiceCall"), dict) or _V1_KEYS.isdisjoint(item) else 1
    message_id = _field(item, "messageId", to_str)
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
    _choose_occurred_at(values, texts)
    return values


def _choose_occurred_at(values: dict[str, Any], texts: dict[str, str | None]) -> None:
    """Set occurred_at and its text: the end time, else done, else sent (DESIGN.md step 3)."""
    for name in ("end_time", "done_at", "sent_at"):
        if values[name] is not None:
            values["occurred_at"], values["occurred_at_text"] = values[name], texts[name]
            return
    values["occurred_at"] = values["occurred_at_text"] = None


def _read_collected(item: dict[str, Any], version: int) -> dict[str, Any] | None:
    """Return the IVR values decoded from their JSON-in-string form; None when all are null."""
    paths = _COLLECTED_PATHS[version]
    collected = dict.fromkeys(_COLLECTED_V2)
    collected.update({key: _decode_collected(_get(item, path)) for key, path in paths.items()})
    return collected if any(value is not None for value in collected.values()) else None


def _decode_collected(value: Any) -> Any:
    """Return a JSON-in-string value decoded; text that is not JSON, and objects, as they are."""
    if not isinstance(value, str):
        return value
    try:
        return load_json(value)
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
        raise _FieldError(f"{key}: not an object: {show(value)}")
    return {name: _field(item, f"{key}.{source}", coerce) for name, source, coerce in fields}


def _get(item: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path; None when any part is missing or null."""
    value: Any = item
    walked: list[str] = []
    for key in path.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _FieldError(f"{'.'.join(walked)}: not an object: {show(value)}")
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


# Model field, version 2 path, version 1 path, coercion (INFOBIP.md §4).
_FIELDS: tuple[tuple[str, str, str, Callable[[Any], Any]], ...] = (
    ("bulk_id", "bulkId", "bulkId", to_str),
    ("to", "to", "to", to_str),
    ("sender", "from", "from", to_str),
    ("mcc_mnc", "mccMnc", "mccMnc", to_str),
    ("callback_data", "callbackData", "callbackData", to_str),
    ("duration", "voiceCall.duration", "duration", to_int),
    ("charged_duration", "voiceCall.chargedDuration", "chargedDuration", to_int),
    ("file_duration", "voiceCall.fileDuration", "fileDuration", to_float),
    ("price_per_second", "price.pricePerSecond", "price.pricePerSecond", to_decimal),
    ("currency", "price.currency", "price.currency", to_str),
    ("answered_by", "voiceCall.answeredBy", "answeredBy", to_str),
    ("dtmf_codes", "voiceCall.dtmfCodes", "dtmfCodes", to_str),
    ("feature", "voiceCall.feature", "feature", to_str),
    ("scenario_id", "voiceCall.ivr.scenarioId", "scenarioId", to_str),
    ("scenario_name", "voiceCall.ivr.scenarioName", "scenarioName", to_str),
    ("call_recording_file_id", "voiceCall.callRecordingFileId", "callRecordingFileId", to_str),
    ("direction", "voiceCall.direction", "direction", to_str),
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
    ("group_id", "groupId", to_int),
    ("group_name", "groupName", to_str),
    ("id", "id", to_int),
    ("name", "name", to_str),
    ("description", "description", to_str),
)
_ERROR_FIELDS = (*_STATUS_FIELDS, ("permanent", "permanent", to_bool))


_UsualPlan: TypeAlias = tuple[
    tuple[
        tuple[str, ...],  # the keys of the object holding the fields, () for the result itself
        tuple[tuple[str, str, Callable[[Any], Any]], ...],  # field, key, coercion
        tuple[tuple[str, str], ...],  # timestamps: field, key
        dict[str, None],  # every field and timestamp of the object, None: when it is null
    ],
    ...,
]


def _usual_plan(version: int) -> _UsualPlan:
    """Return _FIELDS and _TIMES of a version grouped by the object that holds them."""
    groups: dict[tuple[str, ...], tuple[list[Any], list[Any]]] = {}
    for name, v2_path, v1_path, coerce in _FIELDS:
        *parent, key = (v2_path if version == 2 else v1_path).split(".")
        groups.setdefault(tuple(parent), ([], []))[0].append((name, key, coerce))
    for name, v2_path, v1_path in _TIMES:
        *parent, key = (v2_path if version == 2 else v1_path).split(".")
        groups.setdefault(tuple(parent), ([], []))[1].append((name, key))
    return tuple(
        (parent, tuple(fields), tuple(moments),
         dict.fromkeys([name for name, _, _ in fields] + [name for name, _ in moments]))
        for parent, (fields, moments) in groups.items()
    )  # fmt: skip


_USUAL_PLANS = {2: _usual_plan(2), 1: _usual_plan(1)}
