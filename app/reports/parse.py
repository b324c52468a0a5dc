"""Parse delivery-report bodies, JSON or XML, versions 1 and 2, into typed reports; pure.

INFOBIP.md §4 gives the formats, §5 the status and error fields; DESIGN.md "Receiving
delivery reports", steps 2 and 3, says what a report must yield.
"""

import codecs
import json
import re

from app.reports.fields import MAX_DEPTH, TooDeep, load_json, parse_timestamp
from app.reports.items import (
    DeliveryReport,
    ErrorInfo,
    InvalidItem,
    ParsedItem,
    StatusInfo,
    read_item,
)
from app.reports.xml import XmlRejected, read_xml_results, results_element

__all__ = [
    "DeliveryReport",
    "ErrorInfo",
    "InvalidItem",
    "ParsedItem",
    "ReportParseError",
    "StatusInfo",
    "media_type",
    "parse_json",
    "parse_report_body",
    "parse_timestamp",
    "parse_xml",
]

_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
_JSON_TYPES = frozenset({"application/json"})
_UTF8 = frozenset({"utf-8", "utf8"})
_XML_TYPES = frozenset({"application/xml", "text/xml"})


class ReportParseError(ValueError):
    """A body that cannot be read as a whole; the message says precisely why."""


class TooManyResults(ReportParseError):
    """A body holding more results than one POST may carry (IVR_MAX_REPORT_RESULTS)."""


def parse_report_body(
    body: bytes, content_type: str, *, max_results: int | None = None
) -> list[ParsedItem]:
    """Parse a body by its media type: JSON, or XML (application/xml, text/xml).

    max_results: more results than this raise TooManyResults before any is read.
    """
    kind, charset = media_type(content_type)
    if kind in _JSON_TYPES:
        return _parse_json_text(_decode(body, charset or "utf-8"), max_results)
    if kind in _XML_TYPES:
        xml = body if charset is None else _transcode_xml(body, charset)
        return parse_xml(xml, max_results=max_results)
    raise ReportParseError(f"unsupported content type {kind!r}")


def _check_count(count: int, max_results: int | None) -> None:
    """Refuse a body of more results than max_results."""
    if max_results is not None and count > max_results:
        raise TooManyResults(
            f"the body holds {count} results; one POST may carry at most {max_results}"
        )


def parse_json(body: bytes) -> list[ParsedItem]:
    """Parse a UTF-8 JSON body `{"results": [...]}` into one item per result."""
    return _parse_json_text(_decode(body, "utf-8"))


def parse_xml(body: bytes, *, max_results: int | None = None) -> list[ParsedItem]:
    """Parse an XML body through the hardened parser into one item per report element."""
    try:
        elements = results_element(body)
    except XmlRejected as exc:
        raise ReportParseError(str(exc)) from exc
    _check_count(len(elements), max_results)
    try:
        items = read_xml_results(elements, max_depth=MAX_DEPTH)
    except XmlRejected as exc:
        raise ReportParseError(str(exc)) from exc
    return [read_item(index, item) for index, item in enumerate(items)]


def media_type(content_type: str) -> tuple[str, str | None]:
    """Return the lower-cased media type and the charset parameter, if any."""
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media_type.strip().lower(), charset


def utf8_charset(charset: str | None) -> bool:
    """Say whether a charset parameter names UTF-8 (none at all counts: JSON's own)."""
    return charset is None or charset.lower() in _UTF8


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


def _parse_json_text(text: str, max_results: int | None = None) -> list[ParsedItem]:
    """Parse JSON text `{"results": [...]}` into one item per result."""
    try:
        document = load_json(text)
    except json.JSONDecodeError as exc:
        raise ReportParseError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except TooDeep as exc:
        raise ReportParseError(str(exc)) from exc
    except ValueError as exc:
        raise ReportParseError(f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ReportParseError("the body is not a JSON object")
    results = document.get("results")
    if not isinstance(results, list):
        raise ReportParseError("no `results` list")
    _check_count(len(results), max_results)
    return [read_item(index, item) for index, item in enumerate(results)]
