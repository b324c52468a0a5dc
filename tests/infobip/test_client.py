"""The Infobip client: both error shapes, auth forms, failure kinds, over real HTTP."""

from __future__ import annotations

import json

import pytest

from app.infobip.client import FailureKind, InfobipClient, ProviderError, describe_error
from app.simulator.server import Faults, ReportPlan, Simulator, SimulatorServer
from tests.conftest import DATA


def test_describe_error_reads_the_request_error_shape() -> None:
    text, details = describe_error(json.loads((DATA / "error-400.json").read_text()))
    assert text == "Bad request"
    assert details == {"messages[0].destinations[0].to": ["must not be blank"]}


def test_describe_error_reads_the_error_code_shape() -> None:
    text, details = describe_error(json.loads((DATA / "error-429.json").read_text()))
    assert text == "Too many requests sent."
    assert details == {}
    text, details = describe_error(
        {"errorCode": "E400", "violations": [{"property": "to", "violation": "invalid"}]}
    )
    assert (text, details) == ("E400", {"to": ["invalid"]})


def test_describe_error_survives_anything_else() -> None:
    assert describe_error(None) == ("unreadable error body", {})
    assert describe_error(["x"]) == ("unreadable error body", {})


BODY = {"messages": [{"scenarioId": "S", "destinations": [{"to": "41793026727"}]}]}


def test_client_basic_auth_and_pull() -> None:
    simulator = Simulator(
        api_key="key-1", username="ana", password="secret-pass", plan=ReportPlan(delay=3600)
    )  # no report is due during the test, so none can be pulled yet
    with SimulatorServer(simulator) as server:
        with InfobipClient(base_url=server.url, username="ana", password="secret-pass") as client:
            answer = client.launch(BODY)
            assert answer["messages"][0]["status"]["name"] == "PENDING_ACCEPTED"
            pulled = client.pull_reports(limit=10)
            assert (pulled.body, pulled.count) == (b'{"results":[]}', 0)
            assert pulled.content_type.startswith("application/json")
        with InfobipClient(base_url=server.url, username="ana", password="wrong") as client:
            with pytest.raises(ProviderError) as refused:
                client.launch(BODY)
    assert refused.value.kind is FailureKind.REFUSED
    assert refused.value.status_code == 401
    assert "Invalid login details" in str(refused.value)


@pytest.mark.parametrize(
    ("faults", "kind", "status", "retry_after"),
    [
        (Faults(mode="500"), FailureKind.UNAVAILABLE, 500, None),
        (Faults(mode="429", retry_after=7), FailureKind.UNAVAILABLE, 429, 7.0),
        (Faults(mode="hang", hang_seconds=1.0), FailureKind.TIMEOUT, None, None),
        (Faults(mode="drop"), FailureKind.TIMEOUT, None, None),
    ],
)
def test_client_failure_kinds(
    faults: Faults, kind: FailureKind, status: int | None, retry_after: float | None
) -> None:
    simulator = Simulator(api_key="key-1", faults=faults)
    with (
        SimulatorServer(simulator) as server,
        InfobipClient(base_url=server.url, api_key="key-1", timeout=0.3) as client,
    ):
        with pytest.raises(ProviderError) as failed:
            client.launch(BODY)
    assert failed.value.kind is kind
    assert failed.value.status_code == status
    assert failed.value.retry_after == retry_after
    assert failed.value.may_have_arrived is (kind is FailureKind.TIMEOUT)


def test_client_connection_refused_is_unavailable() -> None:
    with InfobipClient(base_url="http://127.0.0.1:1", api_key="k") as client:
        with pytest.raises(ProviderError) as failed:
            client.launch(BODY)
    assert failed.value.kind is FailureKind.UNAVAILABLE
    assert not failed.value.may_have_arrived


def test_client_needs_credentials() -> None:
    with pytest.raises(ValueError, match="API key or a username and password"):
        InfobipClient(base_url="http://127.0.0.1:1")
