"""Behind real nginx (deploy/nginx.conf) and real gunicorn: client address, scheme, host, limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.accounts.tokens import create_token
from app.db import make_engine, make_session_factory, utcnow
from app.models import InboundReport
from app.simulator.server import SimulatorServer
from tests.conftest import NOTIFY_TOKEN, SIM_KEY
from tests.launch.test_launch import flat_body
from tests.nginx import Proxy, nginx, reserve_ports
from tests.servers import gunicorn

NOTIFY = f"/notify/ivr/{NOTIFY_TOKEN}"
JSON_TYPE = {"Content-Type": "application/json"}
FORGED = {
    "X-Forwarded-For": "10.1.2.3",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "forged.example",
    "X-Forwarded-Port": "8443",
}
MIB = 1024 * 1024
POISONED = {"Host": "attacker.example"}
# Numbers as people type them; every one must leave nginx's log masked.
FORMATTED_SEARCHES = (
    "to=41-79-302-67-90&limit=5",
    "to=%2B41+79+302+67+90",
    "limit=5&to=41.79.302.67.90",
    "to=1&to=41-79-302-67-90",
    "q=1&callbackData=079.302.67.90",
    "t%6F=41-79-302-67-90",
    "next=%2Fadmin%2Fcalls%3Fto%3D(079)%20302%2067%2090",
)


def make_operator_token(database_url: str) -> str:
    """Create an operator API token directly in the database."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            _, secret = create_token(session, "proxy-test", "operator", now=utcnow())
            session.commit()
    finally:
        engine.dispose()
    return secret


def stored_peers(database_url: str) -> list[str | None]:
    """Return the peer address of every stored report body."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(InboundReport.peer).order_by(InboundReport.id)))
    finally:
        engine.dispose()


def ivrdesk_env(database_url: str, sim: SimulatorServer, **extra: str) -> dict[str, str]:
    """Return the environment of an ivrdesk host that launches to the fake Infobip."""
    return {
        "IVR_DATABASE_URL": database_url,
        "IVR_INFOBIP_BASE_URL": sim.url,
        "IVR_INFOBIP_API_KEY": SIM_KEY,
        "IVR_NOTIFY_TOKENS": NOTIFY_TOKEN,
        "IVR_INFOBIP_TIMEOUT": "5",
        "IVR_LOG_FORMAT": "text",
        **extra,
    }


@contextmanager
def behind_nginx(env: dict[str, str], scratch: Path) -> Iterator[Proxy]:
    """Run one ivrdesk host under gunicorn with IVR_PROXY_HOPS=1 behind nginx."""
    ports = reserve_ports()
    public = {"IVR_PUBLIC_URL": f"https://127.0.0.1:{ports[1]}", "IVR_PROXY_HOPS": "1"}
    with gunicorn({**env, **public}, workers=1) as upstream:
        with nginx([upstream.removeprefix("http://")], scratch, ports) as proxy:
            yield proxy


def report(message_id: str) -> bytes:
    """Build one answered report for a call."""
    result = {
        "messageId": message_id,
        "voiceCall": {"endTime": "2030-01-01T10:00:30.000+0000", "duration": 21},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
    }
    return json.dumps({"results": [result]}).encode()


def test_nginx_passes_the_real_client_scheme_and_host(
    database_url: str, sim_server: SimulatorServer, tmp_path: Path
) -> None:
    token = make_operator_token(database_url)
    env = ivrdesk_env(database_url, sim_server, IVR_NOTIFY_ALLOW_CIDRS="127.0.0.1/32")
    with behind_nginx(env, tmp_path / "nginx") as proxy:
        client = httpx.Client(base_url=proxy.https_url, verify=proxy.tls(), timeout=30)
        with client:
            # Scheme, host and port as the client used them, whatever it forged.
            servers = client.get("/api/v1/openapi.json", headers=FORGED).json()["servers"]
            assert servers == [{"url": proxy.https_url}]
            # Another host name: nginx's default servers close the connection (444).
            for url in (proxy.https_url, proxy.http_url):
                with pytest.raises(httpx.RemoteProtocolError):
                    httpx.get(f"{url}/api/v1/openapi.json", headers=POISONED, verify=proxy.tls())
            searched = client.get(
                "/api/v1/calls?limit=5&to=%2B41793026777&outcome=busy", headers=FORGED
            )
            assert searched.status_code == 401  # no token: still logged
            for query in FORMATTED_SEARCHES:
                assert client.get(f"/api/v1/calls?{query}").status_code == 401
            plain = httpx.get(f"{proxy.http_url}/api/v1/calls?to=1")
            assert plain.status_code == 301
            assert plain.headers["Location"] == "https://127.0.0.1/api/v1/calls?to=1"

            # A launch and a report through nginx; the allowlist sees 127.0.0.1, not the
            # forged X-Forwarded-For.
            operator = {"Authorization": f"Bearer {token}"}
            launched = client.post(
                "/api/v1/campaigns", json=flat_body("41793026777"), headers=operator
            )
            assert launched.status_code == 201, launched.text
            message_id = launched.json()["messages"][0]["messageId"]
            posted = client.post(NOTIFY, content=report(message_id), headers=JSON_TYPE | FORGED)
            assert posted.status_code == 200, posted.text
            assert posted.json()["applied"] == 1
            call = client.get(f"/api/v1/calls/{message_id}", headers=operator).json()
            assert call["status"]["name"] == "DELIVERED_TO_HANDSET"
            assert [event["source"] for event in call["history"]] == ["submit", "report"]
            assert stored_peers(database_url) == ["127.0.0.1"]

            # Report bodies stop at nginx above 5 MiB; launches may be larger.
            too_big = client.post(NOTIFY, content=b" " * (5 * MIB + 1), headers=JSON_TYPE)
            assert too_big.status_code == 413
            assert "nginx" in too_big.text
            at_limit = b'{"results": []}'.ljust(5 * MIB)
            accepted = client.post(NOTIFY, content=at_limit, headers=JSON_TYPE)
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["items"] == []
            big_launch = b'{"to": []}'.ljust(6 * MIB)
            refused = client.post(
                "/api/v1/campaigns", content=big_launch, headers=JSON_TYPE | operator
            )
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["code"] == "validation_error"  # ivrdesk's answer
    assert f"POST {NOTIFY}" not in proxy.access_log()  # the site's log masks the token
    assert "POST /notify/ivr/*** HTTP/1.1" in proxy.access_log()
    # The number searched for is personal data: masked, the rest of the query kept.
    assert "41793026777" not in proxy.access_log()
    assert "GET /api/v1/calls?limit=5&to=***&outcome=busy HTTP/1.1" in proxy.access_log()
    for shape in ("79-302", "79+302", "79.302", "302%20", "67-90", "67+90", "67.90", "%2090"):
        assert shape not in proxy.access_log()
    assert "GET /api/v1/calls?to=***&limit=5 HTTP/1.1" in proxy.access_log()
    assert "GET /api/v1/calls?*** HTTP/1.1" in proxy.access_log()


def test_forged_forwarded_for_is_not_trusted_behind_nginx(
    database_url: str, sim_server: SimulatorServer, tmp_path: Path
) -> None:
    env = ivrdesk_env(database_url, sim_server, IVR_NOTIFY_ALLOW_CIDRS="10.0.0.0/8")
    with behind_nginx(env, tmp_path / "nginx") as proxy:
        url = f"{proxy.https_url}{NOTIFY}"
        headers = JSON_TYPE | {"X-Forwarded-For": "10.1.2.3"}
        refused = httpx.post(url, content=report("someone"), headers=headers, verify=proxy.tls())
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    assert stored_peers(database_url) == []


def test_without_proxy_hops_forwarded_headers_change_nothing(
    database_url: str, sim_server: SimulatorServer
) -> None:
    env = ivrdesk_env(database_url, sim_server, IVR_NOTIFY_ALLOW_CIDRS="10.0.0.0/8")
    with gunicorn({**env, "IVR_PROXY_HOPS": "0"}, workers=1) as url:
        forged = FORGED | {"X-Forwarded-Proto": "https"}
        refused = httpx.post(f"{url}{NOTIFY}", content=report("x"), headers=JSON_TYPE | forged)
        assert refused.status_code == 403
        document = httpx.get(f"{url}/api/v1/openapi.json", headers=forged).json()
        # Only ProxyFix (IVR_PROXY_HOPS) may trust forwarded headers, never gunicorn itself:
        # deploy/gunicorn.conf.py must not list 127.0.0.1 in forwarded_allow_ips.
        assert document["servers"] == [{"url": url}], "gunicorn believed X-Forwarded-Proto"
    assert stored_peers(database_url) == []
