"""Hostile bodies for the launch endpoint, through gunicorn.

Each answers a clear 4xx in the common error shape, never a 5xx; nothing is stored or sent,
and a call recorded before the sweep keeps its status and history (the `recorded` fixture
checks after each case).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from app.web.api import MAX_LAUNCH_BYTES
from tests.reliability.support import JSON_TYPE, Stack
from tests.reliability.sweep import Recorded, assert_error_shape

DEEP = 100_000
HUGE_INT = "9" * 5000


@pytest.fixture
def stack(swept: tuple[Stack, Recorded]) -> Stack:
    """The stack the sweep shares (not wiped between its cases)."""
    return swept[0]


def launch_raw(stack: Stack, body: bytes, content_type: str = JSON_TYPE) -> httpx.Response:
    """POST raw bytes to the launch endpoint as an operator."""
    return httpx.post(
        f"{stack.url}/api/v1/campaigns",
        content=body,
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": content_type},
        timeout=60,
    )


def _flat(extra: str, to: str = '["41793026727"]') -> bytes:
    """Return a flat launch body as JSON text, with extra fields written as they are."""
    return ('{"bulkId": "hostile", "scenarioId": "S1", "to": ' + to + extra + "}").encode()


LAUNCH_CASES: dict[str, tuple[bytes, str, int, str, list[str] | None]] = {
    # name: (body, content type, status, code, the detail paths expected)
    "deep-json": (b"[" * DEEP + b"]" * DEEP, JSON_TYPE, 400, "invalid_json", []),
    "deep-json-in-parameters": (
        _flat(', "parameters": ' + "[" * DEEP + "]" * DEEP),
        JSON_TYPE,
        400,
        "invalid_json",
        [],
    ),
    "invalid-utf8": (
        _flat("").replace(b"hostile", b"host\xffile"),
        JSON_TYPE,
        400,
        "invalid_json",
        [],
    ),
    "not-json": (b"{nope", JSON_TYPE, 400, "invalid_json", []),
    "empty": (b"", JSON_TYPE, 400, "invalid_json", []),
    "json-array": (b"[]", JSON_TYPE, 400, "validation_error", [""]),
    "text-plain": (_flat(""), "text/plain", 415, "unsupported_media_type", []),
    "validityPeriod-1e400": (
        _flat(', "validityPeriod": 1e400'),
        JSON_TYPE,
        400,
        "validation_error",
        ["validityPeriod"],
    ),
    "to-1e400": (_flat("", to="[1e400]"), JSON_TYPE, 400, "validation_error", ["to[0]"]),
    "validityPeriod-nan": (
        _flat(', "validityPeriod": NaN'),
        JSON_TYPE,
        400,
        "validation_error",
        ["validityPeriod"],
    ),
    "parameters-1e400": (
        _flat(', "parameters": {"a": 1e400}'),
        JSON_TYPE,
        400,
        "validation_error",
        ["parameters.a"],
    ),
    "validityPeriod-5000-digits": (
        _flat(', "validityPeriod": ' + HUGE_INT),
        JSON_TYPE,
        400,
        "validation_error",
        ["validityPeriod"],
    ),
    "to-5000-digits": (
        _flat("", to=f"[{HUGE_INT}]"),
        JSON_TYPE,
        400,
        "validation_error",
        ["to[0]"],
    ),
}
LAUNCH_PARAMS = list(LAUNCH_CASES)


@pytest.mark.parametrize("name", LAUNCH_PARAMS)
def test_launch_refuses_hostile_input(stack: Stack, recorded: Recorded, name: str) -> None:
    body, content_type, status, code, paths = LAUNCH_CASES[name]
    response = launch_raw(stack, body, content_type)
    error = assert_error_shape(response, status, code)
    if paths is not None:
        assert [d["path"] for d in error["details"]] == paths


def test_launch_refuses_a_content_length_over_the_limit_before_reading(
    stack: Stack, recorded: Recorded
) -> None:
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("POST", "/api/v1/campaigns")
        connection.putheader("Authorization", f"Bearer {stack.token}")
        connection.putheader("Content-Type", JSON_TYPE)
        connection.putheader("Content-Length", str(MAX_LAUNCH_BYTES + 1))
        started = time.monotonic()
        connection.endheaders(b'{"bulkId": ')  # the rest is never sent
        response = connection.getresponse()
        status, payload = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert time.monotonic() - started < 5
    assert status == 413
    assert payload["error"]["code"] == "payload_too_large"


def test_launch_refuses_an_oversize_chunked_stream(stack: Stack, recorded: Recorded) -> None:
    chunk = b" " * (1024 * 1024)

    def stream() -> Iterator[bytes]:
        yield b"{"
        for _ in range(MAX_LAUNCH_BYTES // len(chunk)):
            yield chunk  # the same buffer again: the client never holds the whole body

    response = httpx.post(
        f"{stack.url}/api/v1/campaigns",
        content=stream(),
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": JSON_TYPE},
        timeout=60,
    )
    assert_error_shape(response, 413, "payload_too_large")


def test_launch_of_10000_destinations_with_one_bad_number(stack: Stack, recorded: Recorded) -> None:
    numbers = [f"4179{n:07d}" for n in range(10_000)]
    numbers[7321] = "0981112233"
    body = {
        "bulkId": "ten-thousand",
        "messages": [
            {"scenarioId": "S1", "destinations": [{"to": n} for n in numbers]},
        ],
    }
    response = stack.launch(body)
    error = assert_error_shape(response, 400, "validation_error")
    assert [d["path"] for d in error["details"]] == ["messages[0].destinations[7321].to"]
    assert "country code" in error["details"][0]["message"]
