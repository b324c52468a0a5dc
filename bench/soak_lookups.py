"""The soak's lookup clients: the JSON API and the admin pages, and the /healthz probe."""

from __future__ import annotations

import contextlib
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from soak_load import Recorder, Target, client_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Known:
    """What a lookup client has seen so far: bulkIds, and calls as (messageId, to)."""

    bulk_ids: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add_campaigns(self, items: list[dict[str, Any]]) -> None:
        """Remember campaigns from a list page."""
        for item in items:
            if item["bulkId"] not in self.bulk_ids:
                self.bulk_ids.append(item["bulkId"])
        del self.bulk_ids[:-300]

    def add_calls(self, items: list[dict[str, Any]]) -> None:
        """Remember calls from a list page."""
        self.calls.extend((item["messageId"], item["to"]) for item in items)
        del self.calls[:-3000]


def _admin_login(target: Target, rec: Recorder) -> tuple[httpx.Client, str]:
    """Log in to the admin pages; return the session's client and its CSRF token."""
    client = client_for(target, None)
    page = rec.request(client, "admin login", "GET", "/admin/login")
    found = CSRF.search(page.text) if page is not None else None
    token = found.group(1) if found else ""
    form = {"name": target.admin_name, "password": target.admin_password, "csrf_token": token,
            "next": "/admin/"}  # fmt: skip
    rec.request(client, "admin login", "POST", "/admin/login", (303,), data=form)
    page = rec.request(client, "admin page", "GET", "/admin/")  # the session's own token
    found = CSRF.search(page.text) if page is not None else None
    return client, found.group(1) if found else ""


def looker(target: Target, rec: Recorder, stop: threading.Event, number: int) -> None:
    """Look campaigns and calls up through the API and the admin pages until stopped."""
    rng = random.Random(target.seed * 1000 + 800 + number)
    known = Known()
    admin, csrf = _admin_login(target, rec)
    with client_for(target, target.viewer_token) as client, contextlib.closing(admin):
        actions = _lookup_actions(rec, client, admin, csrf, known)
        names, weights = list(actions), [weight for weight, _ in actions.values()]
        while not stop.is_set():
            name = rng.choices(names, weights)[0]
            if not known.calls and name != "campaigns list":
                name = "campaigns list" if not known.bulk_ids else "campaign calls"
            actions[name][1](rng)
            stop.wait(rng.uniform(0.02, 0.2))


def _lookup_actions(
    rec: Recorder, client: httpx.Client, admin: httpx.Client, csrf: str, known: Known
) -> dict[str, tuple[float, Callable[[random.Random], None]]]:
    """Return the lookups a client makes, by name, with their weights."""

    def campaigns_list(rng: random.Random) -> None:
        page = rec.request(client, "campaigns list", "GET", "/api/v1/campaigns?limit=20")
        if page is not None and page.status_code == 200:
            known.add_campaigns(page.json()["items"])
            cursor = page.json()["next"]
            if cursor and rng.random() < 0.3:
                rec.request(client, "campaigns list", "GET", "/api/v1/campaigns",
                            params={"limit": 20, "cursor": cursor})  # fmt: skip

    def campaign_calls(rng: random.Random) -> None:
        bulk_id = rng.choice(known.bulk_ids)
        params: dict[str, str | int] = {"limit": 100}
        if rng.random() < 0.3:
            params["outcome"] = rng.choice(("answered_human", "busy", "no_answer", "pending"))
        page = rec.request(client, "campaign calls", "GET", f"/api/v1/campaigns/{bulk_id}/calls",
                           params=params)  # fmt: skip
        if page is not None and page.status_code == 200:
            known.add_calls(page.json()["items"])

    def by_filter(rng: random.Random) -> None:
        params = {"bulkId": rng.choice(known.bulk_ids)}
        name, value = rng.choice((("outcome", "answered_human"), ("status", "DELIVERED"),
                                  ("status", "BUSY"), ("outcome", "no_answer")))  # fmt: skip
        params[name] = value
        rec.request(client, "calls filtered", "GET", "/api/v1/calls", params=params)

    def admin_page(rng: random.Random) -> None:
        message_id, to = rng.choice(known.calls)
        roll = rng.random()
        if roll < 0.6:
            path = rng.choice(("/admin/", f"/admin/campaigns/{rng.choice(known.bulk_ids)}",
                               f"/admin/calls/{message_id}", f"/admin/calls?to={to}"))  # fmt: skip
            rec.request(admin, "admin page", "GET", path)
        else:
            rec.request(admin, "admin search", "POST", "/admin/search", (200, 303),
                        data={"q": rng.choice((to, message_id)), "csrf_token": csrf})  # fmt: skip

    def get(kind: str, path: Callable[[random.Random], str], expect: int = 200) -> Any:
        return lambda rng: rec.request(client, kind, "GET", path(rng), (expect,))

    return {
        "campaigns list": (12, campaigns_list),
        "campaign": (10, get("campaign",
                             lambda r: f"/api/v1/campaigns/{r.choice(known.bulk_ids)}")),
        "campaign calls": (14, campaign_calls),
        "call": (22, get("call", lambda r: f"/api/v1/calls/{r.choice(known.calls)[0]}")),
        "calls by number": (12, get("calls by number",
                                    lambda r: f"/api/v1/calls?to=%2B{r.choice(known.calls)[1]}")),
        "calls filtered": (5, by_filter),
        "csv export": (4, get("csv export",
                              lambda r: f"/api/v1/campaigns/{r.choice(known.bulk_ids)}/calls.csv")),
        "unmatched": (3, get("unmatched", lambda r: "/api/v1/reports/unmatched?limit=20")),
        "call not found": (3, get("call not found",
                                  lambda r: f"/api/v1/calls/soak-missing-{uuid.uuid4()}", 404)),
        "admin page": (10, admin_page),
    }  # fmt: skip


def prober(target: Target, rec: Recorder, stop: threading.Event, number: int) -> None:
    """GET /healthz twice a second: the baseline, a request that never touches the database."""
    with client_for(target, None) as client:
        while not stop.wait(0.5):
            rec.request(client, "healthz", "GET", "/healthz")
