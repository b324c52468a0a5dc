"""Host header poisoning: the OpenAPI servers URL never echoes a forged Host."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import NOTIFY_TOKEN, LiveServer, serve

FORGED = {"Host": "attacker.example"}


@pytest.fixture
def serving(make_app: Any) -> Iterator[Any]:
    """Serve apps built from settings; stop them after the test."""
    servers: list[LiveServer] = []

    def start(settings: Settings, **changes: object) -> str:
        servers.append(serve(make_app(settings, **changes)))
        return servers[-1].url

    yield start
    for server in servers:
        server.stop()


def servers_of(url: str, **headers: str) -> Any:
    answer = httpx.get(f"{url}/api/v1/openapi.json", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["servers"]


def test_openapi_servers_is_the_public_url_whatever_the_host(
    settings: Settings, serving: Any
) -> None:
    url = serving(settings, public_url="https://ivr.example.org")
    assert servers_of(url, **FORGED) == [{"url": "https://ivr.example.org"}]
    assert servers_of(url) == [{"url": "https://ivr.example.org"}]


def test_without_public_url_only_allowed_hosts_are_answered(
    settings: Settings, serving: Any
) -> None:
    url = serving(settings, public_url=None, allowed_hosts=("ivr.example.org", ".example.net"))
    assert servers_of(url, Host="ivr.example.org") == [{"url": "http://ivr.example.org"}]
    assert servers_of(url, Host="IVR.Example.org:8443") == [{"url": "http://ivr.example.org:8443"}]
    assert servers_of(url, Host="a.example.net") == [{"url": "http://a.example.net"}]
    report = {"Content-Type": "application/json"} | FORGED
    for refused in (
        httpx.get(f"{url}/api/v1/openapi.json", headers=FORGED),
        httpx.get(f"{url}/api/v1/openapi.json"),  # 127.0.0.1 is not listed either
        httpx.get(f"{url}/admin/login", headers={"Host": "ivr.example.org.attacker.example"}),
        httpx.post(f"{url}/notify/ivr/{NOTIFY_TOKEN}", content=b'{"results": []}', headers=report),
    ):
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "bad_request"
        assert "attacker" not in refused.text
        assert refused.headers["Cache-Control"] == "no-store"
    # Probes ask by address and use nothing of the Host.
    assert httpx.get(f"{url}/healthz", headers=FORGED).status_code == 200
    assert httpx.get(f"{url}/readyz", headers=FORGED).status_code == 200


def test_without_public_url_or_allowed_hosts_any_host_is_answered(
    settings: Settings, serving: Any
) -> None:
    url = serving(settings, public_url=None)
    assert servers_of(url, Host="dev.example:5000") == [{"url": "http://dev.example:5000"}]
