"""Normalise phone numbers to the digits of a possible international number (INFOBIP.md §1)."""

import functools
import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s().-]")


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
