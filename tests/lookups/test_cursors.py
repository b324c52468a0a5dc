"""Forged list cursors over real HTTP: every one answers 400 (never a 500), on both databases."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lookups.test_lookups import launch, numbers
from tests.web.test_admin import admin, browser_like  # noqa: F401 (fixtures used by name)

BULK_ID = "cursors"
API_LISTS = (
    "/api/v1/calls",
    "/api/v1/campaigns",
    f"/api/v1/campaigns/{BULK_ID}/calls",
    "/api/v1/reports/unmatched",
)
ADMIN_LISTS = ("/admin/", f"/admin/campaigns/{BULK_ID}", "/admin/calls", "/admin/reports/unmatched")
KINDS = ("calls", "campaign-calls", "campaigns", "unmatched")
MOMENT = "2026-04-02T07:00:00+00:00"


def forge(*parts: Any) -> str:
    """Encode a cursor the way ivrdesk does, with any parts at all."""
    payload = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


# Sort keys a database cannot hold: outside int64, or a moment outside years 1..9999 in UTC.
OUT_OF_RANGE = [
    forge(kind, *key)
    for kind in KINDS
    for key in (
        [2**63],
        [-(2**63) - 1],
        [10**300],
        [MOMENT, 2**63],
        ["0001-01-01T00:00:00+14:00", 1],
        ["9999-12-31T23:59:59-14:00", 1],
    )
]


def assert_refused(response: httpx.Response) -> None:
    """A cursor is either one of the list's (200) or refused in the error shape (400)."""
    assert response.status_code in (200, 400), (response.status_code, response.text[:300])
    if response.status_code == 400:
        assert response.json()["error"]["details"][0]["path"] == "cursor"


@pytest.fixture
def lists(http: httpx.Client) -> httpx.Client:
    """The operator client, with a campaign of two calls to list."""
    launch(http, BULK_ID, (numbers("4179302", 2), None))
    return http


@pytest.mark.parametrize("cursor", OUT_OF_RANGE)
def test_cursor_out_of_the_databases_range_is_400(lists: httpx.Client, cursor: str) -> None:
    for url in API_LISTS:
        response = lists.get(url, params={"cursor": cursor})
        assert response.status_code == 400, (url, response.text[:300])
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert [d["path"] for d in error["details"]] == ["cursor"]


def test_cursor_out_of_range_on_the_admin_pages_is_400(
    lists: httpx.Client,
    admin: httpx.Client,  # noqa: F811 (the fixture imported above)
) -> None:
    for url in ADMIN_LISTS:
        for cursor in OUT_OF_RANGE:
            response = admin.get(url, params={"cursor": cursor})
            assert response.status_code == 400, (url, cursor, response.text[:300])
            assert "Not a valid filter" in response.text


def test_cursor_at_the_edge_of_the_range_still_pages(lists: httpx.Client) -> None:
    for url, cursor, count in (
        ("/api/v1/calls", forge("calls", 2**63 - 1), 2),
        (f"/api/v1/campaigns/{BULK_ID}/calls", forge("campaign-calls", -(2**63)), 2),
        ("/api/v1/campaigns", forge("campaigns", "9999-12-31T23:59:59+00:00", 2**63 - 1), 1),
        ("/api/v1/reports/unmatched", forge("unmatched", "9999-12-31T23:59:59+00:30", 1), 0),
    ):
        response = lists.get(url, params={"cursor": cursor})
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == count


# Integers of any size, often near the edges of int64.
_INTEGERS = st.integers() | st.integers(2**62, 2**65) | st.integers(-(2**65), -(2**62))
_JSON = st.recursive(
    st.none() | st.booleans() | _INTEGERS | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
_MOMENTS = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text(
    max_size=40
)
FORGED = st.one_of(
    st.tuples(st.sampled_from(KINDS), _INTEGERS | _JSON).map(lambda p: forge(*p)),
    st.tuples(st.sampled_from(KINDS), _MOMENTS, _INTEGERS | _JSON).map(lambda p: forge(*p)),
    st.lists(_JSON, max_size=4).map(lambda parts: forge(*parts)),
    st.binary(max_size=64).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.text(max_size=80),
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cursor=FORGED)
def test_cursor_fuzzed_never_fails_the_server(lists: httpx.Client, cursor: str) -> None:
    for url in API_LISTS:
        assert_refused(lists.get(url, params={"cursor": cursor}))
