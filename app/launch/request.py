"""Validate a launch body (DESIGN.md "Launching a campaign", step 1; INFOBIP.md §1); pure."""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.db import has_nul, has_surrogate
from app.infobip.limits import MAX_DESTINATIONS_PER_MESSAGE, MAX_RETRY_COUNT, MAX_VALIDITY_PERIOD
from app.infobip.numbers import normalise_number
from app.launch.fields import FlatLaunch, LaunchEnvelope, MessageFields, id_problem

__all__ = [
    "Clamp",
    "Destination",
    "LaunchRequest",
    "LaunchValidationError",
    "MessageSpec",
    "Problem",
    "normalise_number",
    "parse_launch",
]

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
        problem = id_problem(raw)
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
    found.problems.extend(_nul_problems(body))
    request = _parse_flat(body, found) if "to" in body else _parse_messages(body, found)
    if found.problems:
        raise LaunchValidationError(found.problems)
    return request


_ESCAPED_SURROGATE = re.compile(r"\\ud[89a-f][0-9a-f]{2}", re.IGNORECASE)


def _text_problem(text: str) -> str | None:
    """Say why a text cannot be stored or sent: NUL characters or unpaired surrogates."""
    if has_nul(text):
        return "NUL characters"
    if has_surrogate(text):
        return "unpaired surrogates (not valid Unicode)"
    return None


def _nul_problems(body: dict[str, Any]) -> list[Problem]:
    """Find NUL characters or lone surrogates in any name or text (neither database, nor
    Infobip, can take them)."""
    problems: list[Problem] = []
    dumped = json.dumps(body)  # the encoder in C: quick for 100,000 destinations
    if "\\u0000" not in dumped and not _ESCAPED_SURROGATE.search(dumped):
        return problems
    pending: list[tuple[str, object]] = [("", body)]  # a loop, not recursion: bodies nest deep
    while pending:
        path, value = pending.pop()
        children: list[tuple[str, object]] = []
        if isinstance(value, str) and (problem := _text_problem(value)):
            problems.append(Problem(path, f"must not contain {problem}"))
        elif isinstance(value, dict):
            for key, inner in value.items():
                shown = json.dumps(key)[1:-1] if _text_problem(key) else key
                where = _join(path, shown)
                if problem := _text_problem(key):
                    problems.append(Problem(where, f"names must not contain {problem}"))
                children.append((where, inner))
        elif isinstance(value, list):
            children = [(f"{path}[{index}]", inner) for index, inner in enumerate(value)]
        pending.extend(reversed(children))  # depth first, in document order
    return problems


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
    elif count > MAX_DESTINATIONS_PER_MESSAGE:
        limit = MAX_DESTINATIONS_PER_MESSAGE
        found.add(path, f"has {count} numbers; at most {limit} per message are allowed")


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
