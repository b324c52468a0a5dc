"""Validate a launch body (DESIGN.md "Launching a campaign", step 1; INFOBIP.md §1); pure."""

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self, TypeVar

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

MAX_DESTINATIONS = 20_000  # per message object, INFOBIP.md §1
MAX_VALIDITY_PERIOD = 2880  # minutes; Infobip silently uses 48 h above it, INFOBIP.md §1
MAX_RETRY_COUNT = 4  # Infobip silently uses 4 above it, INFOBIP.md §1
SEND_AT_PAST = timedelta(hours=1)  # DESIGN.md, Launching a campaign, step 1
SEND_AT_AHEAD = timedelta(days=180)

_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_SEPARATORS = re.compile(r"[\s().-]")
_SEND_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})"
)
_DESTINATION_KEYS = frozenset({"to", "messageId"})
_FLAT_OWN_KEYS = ("to", "messageId")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a launch body, located by its JSON path."""

    path: str
    message: str

    def __str__(self) -> str:
        """Return "path: message", or the message alone for the body itself."""
        return f"{self.path}: {self.message}" if self.path else self.message


class LaunchValidationError(Exception):
    """A launch body with one or more problems; nothing may be stored or sent."""

    def __init__(self, problems: list[Problem]) -> None:
        """Keep every problem and join them into the exception text."""
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class Clamp:
    """A value lowered to Infobip's limit, reported back to the client."""

    path: str
    from_: int
    to: int

    def as_json(self) -> dict[str, Any]:
        """Return the clamp as the API reports it."""
        return {"path": self.path, "from": self.from_, "to": self.to}


@dataclass(frozen=True)
class Destination:
    """One number to call, with the client's messageId if it gave one."""

    to: str
    message_id: str | None


@dataclass(frozen=True)
class MessageSpec:
    """One validated message object: Infobip fields, destinations and the client's notifyUrl."""

    index: int
    fields: dict[str, Any]
    destinations: tuple[Destination, ...]
    notify_url: str | None


@dataclass(frozen=True)
class LaunchRequest:
    """A launch body that passed validation."""

    bulk_id: str | None
    name: str | None
    messages: tuple[MessageSpec, ...]
    clamped: tuple[Clamp, ...]
    flat: bool

    @property
    def destination_count(self) -> int:
        """Return the number of destinations over all messages."""
        return sum(len(message.destinations) for message in self.messages)


# Phone numbers


def normalise_number(raw: object) -> str:
    """Return the digits of an international number, or raise ValueError saying what is wrong."""
    digits = _strip_number(_number_text(raw))
    problem = _digits_problem(digits)
    if problem is not None:
        raise ValueError(problem)
    return digits


def _number_text(raw: object) -> str:
    """Return a number's text; a JSON integer counts as its digits."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return str(raw)
    raise ValueError("must be a string or a positive integer")


def _strip_number(text: str) -> str:
    """Remove separators and one leading + or 00."""
    if not text.isdigit():
        text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        return text[1:]
    return text[2:] if text.startswith("00") else text


def _digits_problem(digits: str) -> str | None:
    """Say what keeps digits from being a possible international number, or None."""
    if not digits:
        return "must not be empty"
    if not (digits.isascii() and digits.isdigit()):
        return "may contain only digits, spaces, dashes, dots, parentheses and a leading + or 00"
    if digits.startswith("0"):
        return "starts with 0: add the country code (e.g. 385911234567)"
    if len(digits) < 7:
        return "is too short: an international number has 7 to 15 digits"
    if len(digits) > 15:
        return "is too long: an international number has 7 to 15 digits"
    if not _is_possible(digits):
        return "is not a possible international number (check the country code and the length)"
    return None


_POSSIBLE_BY_SHAPE: dict[tuple[str, int], bool] = {}


def _is_possible(digits: str) -> bool:
    """Say whether +digits passes phonenumbers' possibility check, reusing earlier answers."""
    country = _country(digits[:3])
    if country is None:
        return _is_possible_uncached(digits)
    code, national_prefix = country
    national = digits[len(code) :]
    if national_prefix is not None and national_prefix.match(national):
        return _is_possible_uncached(digits)
    # With no national prefix to strip, parse() keeps the national number as it is, and the
    # check only compares its length with the country's possible lengths: one answer per shape.
    shape = (code, len(national))
    known = _POSSIBLE_BY_SHAPE.get(shape)
    if known is None:
        known = _POSSIBLE_BY_SHAPE[shape] = _is_possible_uncached(digits)
    return known


def _is_possible_uncached(digits: str) -> bool:
    """Run phonenumbers' parse and possibility check on +digits."""
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        return False


@functools.cache
def _country(head: str) -> tuple[str, re.Pattern[str] | None] | None:
    """Return the country code parse() finds at the start of head, with its national prefix."""
    for size in (1, 2, 3):
        code = int(head[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return head[:size], _national_prefix(code)
    return None


def _national_prefix(code: int) -> re.Pattern[str] | None:
    """Return the national prefix pattern parse() tries to strip for a country code."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return re.compile("")  # matches everything, so every number takes the uncached path
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern) if pattern else None


# Field types


def _id_problem(value: str) -> str | None:
    """Say what is wrong with a bulkId or messageId, or None."""
    if _ID.fullmatch(value):
        return None
    if not value:
        return "must not be empty"
    if len(value) > 200:
        return "must be at most 200 characters"
    return "may contain only letters, digits and . _ : -"


def _checked_id(value: str) -> str:
    """Return a valid id unchanged."""
    problem = _id_problem(value)
    if problem is not None:
        raise PydanticCustomError("id_format", problem)
    return value


def _integer_as_digits(value: object) -> object:
    """Turn a non-negative JSON integer into its digits; leave anything else for the type check."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def _parameter_text(value: object) -> object:
    """Turn a number or boolean into the string JSON would spell; refuse nested values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("parameter_value", "must be a finite number")
        return repr(value)
    if isinstance(value, str):
        return value
    raise PydanticCustomError(
        "parameter_value", "must be a string, number or boolean (nested values are refused)"
    )


def _report_version(value: int) -> int:
    """Return a notifyContentVersion of 1 or 2 unchanged."""
    if value not in (1, 2):
        raise PydanticCustomError("report_version", "must be 1 or 2")
    return value


def _distinct_days(days: list[str]) -> list[str]:
    """Return days unchanged when none repeats."""
    for index, day in enumerate(days):
        if day in days[:index]:
            raise PydanticCustomError("repeated_day", "repeats {day}", {"day": day})
    return days


def _send_at_problem(text: str, now: datetime) -> str | None:
    """Say what is wrong with a sendAt value, or None."""
    try:
        moment = datetime.fromisoformat(text) if _SEND_AT.fullmatch(text) else None
    except ValueError:  # the right shape, but no such date or time (2026-02-30)
        moment = None
    if moment is None:
        return "must be a date and time with an offset, like 2026-07-07T17:00:00.000+0100"
    if moment < now - SEND_AT_PAST:
        return "is more than an hour in the past"
    if moment > now + SEND_AT_AHEAD:
        return "is more than 180 days ahead"
    return None


Id = Annotated[str, AfterValidator(_checked_id)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
PositiveInt = Annotated[int, Field(gt=0)]
Sender = Annotated[str, Field(min_length=3, max_length=14), BeforeValidator(_integer_as_digits)]
ParameterValue = Annotated[str, BeforeValidator(_parameter_text)]
NotifyUrl = Annotated[HttpUrl, UrlConstraints(max_length=2048)]
Day = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


# Message structure (INFOBIP.md §1)


class _Strict(BaseModel):
    """Strict JSON types, camelCase names, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel)


class Retry(_Strict):
    """Retry schedule of a message."""

    min_period: PositiveInt
    max_period: PositiveInt
    max_count: PositiveInt

    @field_validator("max_period")
    @classmethod
    def _not_below_min_period(cls, value: int, info: ValidationInfo) -> int:
        """Refuse a maxPeriod shorter than minPeriod."""
        minimum = info.data.get("min_period")
        if minimum is not None and value < minimum:
            raise PydanticCustomError(
                "retry_order", "must be at least minPeriod ({min})", {"min": minimum}
            )
        return value


class SendingSpeed(_Strict):
    """How many calls to start per time unit."""

    speed: PositiveInt
    time_unit: Literal["second", "minute", "hour", "day"]


class TimeOfDay(_Strict):
    """An hour and minute in UTC."""

    hour: Annotated[int, Field(ge=0, le=23)]
    minute: Annotated[int, Field(ge=0, le=59)]


class DeliveryTimeWindow(_Strict):
    """Days and hours in which calls may start."""

    days: Annotated[list[Day], Field(min_length=1), AfterValidator(_distinct_days)]
    from_: TimeOfDay | None = Field(default=None, alias="from")
    to: TimeOfDay | None = None

    @model_validator(mode="after")
    def _one_hour_apart(self) -> Self:
        """Require from and to together, at least one hour apart."""
        if (self.from_ is None) != (self.to is None):
            raise PydanticCustomError("window_bounds", "needs both from and to, or neither")
        if self.from_ is not None and self.to is not None:
            start = self.from_.hour * 60 + self.from_.minute
            if self.to.hour * 60 + self.to.minute - start < 60:
                raise PydanticCustomError(
                    "window_length", "to must be at least one hour after from"
                )
        return self


class MessageFields(_Strict):
    """A message's fields other than its destinations; unknown fields are kept."""

    model_config = ConfigDict(extra="allow")

    scenario_id: Annotated[str, Field(min_length=1)]
    from_: Sender | None = Field(default=None, alias="from")
    parameters: dict[str, ParameterValue] | None = None
    notify_url: NotifyUrl | None = None
    notify_content_type: Literal["application/json", "application/xml"] | None = None
    notify_content_version: Annotated[int, AfterValidator(_report_version)] | None = None
    callback_data: Annotated[str, Field(max_length=200)] | None = None
    validity_period: PositiveInt | None = None
    send_at: str | None = None
    retry: Retry | None = None
    sending_speed: SendingSpeed | None = None
    record: bool | None = None
    ring_timeout: PositiveInt | None = None
    call_timeout: PositiveInt | None = None
    pause: Annotated[int, Field(ge=0, le=10)] | None = None
    delivery_time_window: DeliveryTimeWindow | None = None

    @field_validator("send_at")
    @classmethod
    def _send_at_in_range(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Keep a well-formed sendAt between an hour ago and 180 days ahead."""
        now = info.context["now"] if info.context else None
        problem = None if value is None or now is None else _send_at_problem(value, now)
        if problem is not None:
            raise PydanticCustomError("send_at", problem)
        return value


class FlatLaunch(MessageFields):
    """The flat form's top level, less `to` and `messageId`: one message plus bulkId and name."""

    model_config = ConfigDict(extra="forbid")

    bulk_id: Id | None = None
    name: Name | None = None


class LaunchEnvelope(_Strict):
    """The messages form's top level; each message is checked on its own."""

    bulk_id: Id | None = None
    name: Name | None = None
    messages: Annotated[list[Any], Field(min_length=1)]


# Collecting problems

_ERROR_TEMPLATES = {
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "list_type": "must be an array",
    "url_type": "must be a string",
    "url_scheme": "must be an http or https URL",
    "url_parsing": "must be an absolute http or https URL ({error})",
    "url_too_long": "must be at most {max_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_short": "must have at least {min_length} items",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be {expected}",
}

ModelT = TypeVar("ModelT", bound=BaseModel)


def _join(prefix: str, path: str) -> str:
    """Append a JSON path to a prefix."""
    return f"{prefix}.{path}" if prefix and path and not path.startswith("[") else prefix + path


def _error_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into a JSON path."""
    path = ""
    for part in loc:
        path = _join(path, f"[{part}]" if isinstance(part, int) else part)
    return path


def _describe(error: ErrorDetails) -> str:
    """Turn a pydantic error into a short sentence."""
    context = error.get("ctx", {})
    if context.get("min_length") == 1:
        return "must not be empty"
    template = _ERROR_TEMPLATES.get(error["type"])
    return error["msg"] if template is None else template.format(**context)


@dataclass
class _Findings:
    """Problems, clamps and messageIds gathered while walking one body."""

    now: datetime
    problems: list[Problem] = field(default_factory=list)
    clamps: list[Clamp] = field(default_factory=list)
    message_ids: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(path, message))

    def validate(self, model: type[ModelT], data: dict[str, Any], prefix: str) -> ModelT | None:
        """Validate data with a model, recording its errors under prefix."""
        try:
            return model.model_validate(data, context={"now": self.now})
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self.add(_join(prefix, _error_path(error["loc"])), _describe(error))
            return None

    def clamp(self, path: str, value: int, limit: int) -> int:
        """Return value capped at limit, recording the clamp."""
        if value <= limit:
            return value
        self.clamps.append(Clamp(path, value, limit))
        return limit

    def number(self, raw: object, path: str) -> str | None:
        """Return a normalised number, or None after recording why not."""
        if raw is None:
            self.add(path, "is required")
            return None
        try:
            return normalise_number(raw)
        except ValueError as exc:
            self.add(path, str(exc))
            return None

    def message_id(self, raw: object, path: str) -> str | None:
        """Return a client messageId (None when absent), recording format problems and repeats."""
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.add(path, "must be a string")
            return None
        problem = _id_problem(raw)
        if problem is None:
            first = self.message_ids.setdefault(raw, path)
            if first == path:
                return raw
            problem = f"repeats the messageId at {first}"
        self.add(path, problem)
        return None


# Walking a body


def parse_launch(body: object, *, now: datetime) -> LaunchRequest:
    """Validate a launch body in the messages form or the flat form; raise every problem at once."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(body, dict):
        raise LaunchValidationError([Problem("", "must be a JSON object")])
    if "messages" in body and "to" in body:
        message = "has both messages and to: send either the messages form or the flat form"
        raise LaunchValidationError([Problem("", message)])
    found = _Findings(now)
    request = _parse_flat(body, found) if "to" in body else _parse_messages(body, found)
    if found.problems:
        raise LaunchValidationError(found.problems)
    return request


def _parse_messages(body: dict[str, Any], found: _Findings) -> LaunchRequest:
    """Validate the messages form."""
    envelope = found.validate(LaunchEnvelope, body, "")
    raw_messages = body.get("messages")
    specs: list[MessageSpec] = []
    for index, raw in enumerate(raw_messages if isinstance(raw_messages, list) else []):
        spec = _parse_message(raw, index, found)
        if spec is not None:
            specs.append(spec)
    return LaunchRequest(
        bulk_id=envelope.bulk_id if envelope else None,
        name=envelope.name if envelope else None,
        messages=tuple(specs),
        clamped=tuple(found.clamps),
        flat=False,
    )


def _parse_message(raw: object, index: int, found: _Findings) -> MessageSpec | None:
    """Validate one message object of the messages form."""
    prefix = f"messages[{index}]"
    if not isinstance(raw, dict):
        found.add(prefix, "must be an object")
        return None
    rest = {key: value for key, value in raw.items() if key != "destinations"}
    fields = found.validate(MessageFields, rest, prefix)
    destinations = _parse_destinations(raw.get("destinations"), f"{prefix}.destinations", found)
    if fields is None:
        return None
    return _message_spec(index, fields, raw, destinations, prefix, found)


def _parse_destinations(raw: object, path: str, found: _Findings) -> tuple[Destination, ...]:
    """Validate a destinations array."""
    if raw is None:
        found.add(path, "is required")
        return ()
    if not isinstance(raw, list):
        found.add(path, "must be an array")
        return ()
    _check_count(len(raw), path, found)
    destinations = []
    for index, item in enumerate(raw):
        destination = _parse_destination(item, f"{path}[{index}]", found)
        if destination is not None:
            destinations.append(destination)
    return tuple(destinations)


def _parse_destination(item: object, path: str, found: _Findings) -> Destination | None:
    """Validate one {to, messageId} object."""
    if not isinstance(item, dict):
        found.add(path, "must be an object with to and an optional messageId")
        return None
    if not item.keys() <= _DESTINATION_KEYS:
        for key in sorted(item.keys() - _DESTINATION_KEYS):
            found.add(f"{path}.{key}", "unknown field")
    to = found.number(item.get("to"), f"{path}.to")
    message_id = found.message_id(item.get("messageId"), f"{path}.messageId")
    return None if to is None else Destination(to, message_id)


def _check_count(count: int, path: str, found: _Findings) -> None:
    """Require 1 to 20,000 destinations in one message."""
    if count == 0:
        found.add(path, "must not be empty")
    elif count > MAX_DESTINATIONS:
        found.add(path, f"has {count} numbers; at most {MAX_DESTINATIONS} per message are allowed")


def _parse_flat(body: dict[str, Any], found: _Findings) -> LaunchRequest:
    """Validate the flat form: `to` and the message fields at the top level, as one message."""
    rest = {key: value for key, value in body.items() if key not in _FLAT_OWN_KEYS}
    fields = found.validate(FlatLaunch, rest, "")
    destinations = _parse_flat_destinations(body["to"], body.get("messageId"), found)
    spec = None if fields is None else _message_spec(0, fields, body, destinations, "", found)
    return LaunchRequest(
        bulk_id=fields.bulk_id if fields else None,
        name=fields.name if fields else None,
        messages=() if spec is None else (spec,),
        clamped=tuple(found.clamps),
        flat=True,
    )


def _parse_flat_destinations(
    raw_to: object, raw_message_id: object, found: _Findings
) -> tuple[Destination, ...]:
    """Validate the flat form's `to` (an array, or one number) and its optional messageId."""
    if isinstance(raw_to, list):
        _check_count(len(raw_to), "to", found)
        numbers = [(f"to[{index}]", raw) for index, raw in enumerate(raw_to)]
    elif isinstance(raw_to, dict):
        found.add("to", "must be an array of numbers, or one number")
        numbers = []
    else:
        numbers = [("to", raw_to)]
    message_id = found.message_id(raw_message_id, "messageId")
    if raw_message_id is not None and len(numbers) > 1:
        found.add("messageId", "applies to one number only: use the messages form for several")
    destinations = []
    for path, raw in numbers:
        to = found.number(raw, path)
        if to is not None:
            destinations.append(Destination(to, message_id))
    return tuple(destinations)


def _message_spec(
    index: int,
    model: MessageFields,
    raw: dict[str, Any],
    destinations: tuple[Destination, ...],
    prefix: str,
    found: _Findings,
) -> MessageSpec:
    """Build a MessageSpec from validated fields, applying Infobip's clamps."""
    excluded = {"notify_url", "bulk_id", "name"}
    fields = model.model_dump(by_alias=True, exclude_none=True, exclude=excluded)
    fields.update(model.model_extra or {})
    if "validityPeriod" in fields:
        path = _join(prefix, "validityPeriod")
        fields["validityPeriod"] = found.clamp(path, fields["validityPeriod"], MAX_VALIDITY_PERIOD)
    if "retry" in fields:
        path = _join(prefix, "retry.maxCount")
        retry = fields["retry"]
        retry["maxCount"] = found.clamp(path, retry["maxCount"], MAX_RETRY_COUNT)
    notify_url = raw.get("notifyUrl") if model.notify_url is not None else None
    return MessageSpec(index, fields, destinations, notify_url)
