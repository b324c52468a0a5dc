"""Field rules and pydantic models of a launch body's messages (INFOBIP.md §1); pure."""

import math
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.infobip.limits import NUMERIC_SENDER, SENDER_MAX_DIGITS, SENDER_MIN_DIGITS

SEND_AT_PAST = timedelta(hours=1)  # DESIGN.md, Launching a campaign, step 1
SEND_AT_AHEAD = timedelta(days=180)

_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_SEND_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})"
)


# Field types


def id_problem(value: str) -> str | None:
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
    problem = id_problem(value)
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


SENDER_PROBLEM = (
    f"must be a numeric sender of {SENDER_MIN_DIGITS} to {SENDER_MAX_DIGITS} digits, "
    "without + or spaces (like 41793026700)"
)
# What the OpenAPI document says of `from`: the same rule, for both JSON types accepted.
_SENDER_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": f"^{NUMERIC_SENDER.pattern}$"},
        {
            "type": "integer",
            "minimum": 10 ** (SENDER_MIN_DIGITS - 1),
            "maximum": 10**SENDER_MAX_DIGITS - 1,
        },
    ],
    "description": "A numeric sender (INFOBIP.md §1); a JSON integer is taken as its digits.",
}


def _checked_sender(value: str) -> str:
    """Return a numeric sender of 3 to 14 digits unchanged."""
    if NUMERIC_SENDER.fullmatch(value) is None:
        raise PydanticCustomError("sender", SENDER_PROBLEM)
    return value


def _report_version(value: int) -> int:
    """Return a notifyContentVersion of 1 or 2 unchanged."""
    if value not in (1, 2):
        raise PydanticCustomError("report_version", "must be 1 or 2")
    return value


def _not_blank(value: str) -> str:
    """Return text that is more than whitespace unchanged (Infobip refuses a blank scenarioId)."""
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
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
Sender = Annotated[
    str,
    BeforeValidator(_integer_as_digits),
    AfterValidator(_checked_sender),
    WithJsonSchema(_SENDER_SCHEMA),
]
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

    scenario_id: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
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
