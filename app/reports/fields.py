"""Read the values of delivery reports: JSON text, text, numbers, booleans, timestamps; pure.

INFOBIP.md §4 and §5 give the fields; app/notify.py reads reports with these. Every
coercion takes a decoded JSON or XML value and returns it typed, or raises ValueError
saying what is wrong with it (the reader adds the field's name). The common shapes
(text, small integers, floats, Infobip's timestamps) take a shortcut with the same result.
"""

import json
import math
import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

MAX_DEPTH = 64  # nesting levels allowed in a body, and in a decoded IVR value
INT_LIMIT = 2**63  # every integer field fits a signed 64-bit column
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
# Distinct timestamp texts remembered: a POST often repeats its sentAt, and a
# redelivery repeats them all; the datetimes are immutable, so sharing them is safe.
_TIMESTAMP_CACHE = 4096


class TooDeep(ValueError):
    """JSON that nests objects and lists more than MAX_DEPTH levels."""


def load_json(text: str) -> Any:
    """Return the JSON value of text; numbers beyond int or float stay as their text."""
    try:
        value = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except RecursionError as exc:
        raise TooDeep("nested too deeply") from exc
    if isinstance(value, dict | list) and _too_deep(value):
        raise TooDeep("nested too deeply")
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


def _too_deep(container: dict[str, Any] | list[Any]) -> bool:
    """Return whether objects and lists nest more than MAX_DEPTH levels."""
    stack: list[tuple[Any, int]] = [(container, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def parse_timestamp(value: object) -> tuple[datetime | None, str | None]:
    """Return an Infobip timestamp or epoch milliseconds as aware UTC, with its original text."""
    if value is None:
        return None, None
    try:
        moment = _text_to_utc(value) if isinstance(value, str) else _to_utc(value)
    except (OverflowError, ValueError) as exc:  # also out of datetime's range
        raise ValueError(f"not a timestamp: {show(value)}") from exc
    return moment, value if isinstance(value, str) else str(value)


@lru_cache(maxsize=_TIMESTAMP_CACHE)
def _text_to_utc(value: str) -> datetime:
    """Return _to_utc of a text, remembered (a failure is not remembered, it raises again)."""
    return _to_utc(value)


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


def to_str(value: object) -> str | None:
    """Return text as it is, a number as its text, null as None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"not a string: {show(value)}")


def to_bool(value: object) -> bool | None:
    """Return a JSON boolean or the text `true` / `false`."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"not a boolean: {show(value)}")


def to_decimal(value: object, kind: str = "a number") -> Decimal | None:
    """Return a number, or numeric text, as a Decimal that also fits a float."""
    if value is None:
        return None
    if type(value) is float and abs(value) <= sys.float_info.max:
        return Decimal(repr(value))  # what the general rule below gives any finite float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not {kind}: {show(value)}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not {kind}: {show(value)}")
    number = Decimal(text) if len(text) <= _NUMBER_TEXT_MAX else None
    if number is None or abs(number) > _FLOAT_MAX:
        raise ValueError(f"out of range: {show(value)}")
    return number


def to_int(value: object) -> int | None:
    """Return a whole number, or its text, as an int within 64 bits."""
    if type(value) is int and -INT_LIMIT < value < INT_LIMIT:
        return value  # what the general rule below gives a JSON integer in range
    number = to_decimal(value, "an integer")
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {show(value)}")
    if abs(number) >= INT_LIMIT:
        raise ValueError(f"out of range: {show(value)}")
    return int(number)


def to_float(value: object) -> float | None:
    """Return a number, or numeric text, as a float."""
    number = to_decimal(value)
    return None if number is None else float(number)


def show(value: object) -> str:
    """Return a value quoted for a reason, shortened when long."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else f"{text[: _SHOW_MAX - 3]}..."
