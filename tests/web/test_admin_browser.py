"""The admin pages in a real browser: Debian's Chromium driven by Playwright, never a download.

One browser and one logged-in page serve the whole module, against one server
seeded through the API and the notify endpoint. Without /usr/bin/chromium the
tests fail; IVR_SKIP_BROWSER_TESTS=1 skips them. Screenshots go to a temporary
folder, or to IVR_SCREENSHOTS (e.g. docs/screenshots) when that is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from playwright.sync_api import sync_playwright

from app import create_app
from app.config import Settings
from app.simulator.server import ReportPlan, Simulator, SimulatorServer
from tests.conftest import NOTIFY_TOKEN, SIM_KEY, Databases, LiveServer, make_token, serve, state
from tests.reports.test_reports import FIRST, post_results
from tests.web.test_admin import BULK_ID, PASSWORD, make_user, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SECOND_BULK = "autumn-follow-up"
SECOND_IDS = [f"autumn-{n}" for n in range(1, 6)]

pytestmark = pytest.mark.skipif(
    os.environ.get("IVR_SKIP_BROWSER_TESTS") == "1",
    reason="IVR_SKIP_BROWSER_TESTS=1 skips the browser tests",
)


@dataclass
class Site:
    """ivrdesk on loopback with seeded data."""

    app: Flask
    live: LiveServer

    def url(self, path: str) -> str:
        """Return the absolute URL of a path."""
        return self.live.url + path


def _final(message_id: str, group: int, status: tuple[int, str], error: tuple[int, str]) -> Any:
    """Build one final report result with an error code."""
    return {
        "messageId": message_id,
        "sentAt": "2026-04-03T08:00:01.000+0000",
        "voiceCall": {"endTime": "2026-04-03T08:00:40.000+0000", "duration": 21},
        "price": {"pricePerSecond": 0.001, "currency": "EUR"},
        "status": {"groupId": group, "groupName": "X", "id": status[0], "name": status[1]},
        "error": {"groupId": 2, "groupName": "USER_ERRORS", "id": error[0], "name": error[1]},
    }


def seed_second_campaign(http: httpx.Client, live: LiveServer) -> None:
    """Launch five calls; three get a final report, two stay pending."""
    body = json.loads((Path(__file__).parents[1] / "data" / "launch-request.json").read_text())
    message = body["messages"][0]
    del message["sendAt"]
    body["bulkId"] = SECOND_BULK
    message["callbackData"] = "autumn-batch-2"
    message["destinations"] = [
        {"to": f"3859555512{n:02d}", "messageId": message_id}
        for n, message_id in enumerate(SECOND_IDS)
    ]
    assert http.post("/api/v1/campaigns", json=body).status_code == 201
    post_results(
        live,
        _final(SECOND_IDS[0], 2, (97, "BUSY"), (10201, "BUSY")),
        _final(SECOND_IDS[1], 3, (5, "DELIVERED_TO_HANDSET"), (10002, "MACHINE_DETECTED")),
        _final(SECOND_IDS[2], 2, (96, "NO_ANSWER"), (10200, "NO_ANSWER")),
    )


@pytest.fixture(scope="module")
def site(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Serve ivrdesk on the SQLite test database with two campaigns, parked reports, a user."""
    url = databases.url("sqlite")
    simulator = Simulator(api_key=SIM_KEY, plan=ReportPlan(delay=0.05, enabled=False))
    with SimulatorServer(simulator) as sim_server:
        settings = Settings(
            database_url=url,
            infobip_base_url=sim_server.url,
            infobip_api_key=SIM_KEY,
            public_url="http://127.0.0.1:9",
            notify_tokens=(NOTIFY_TOKEN,),
            secret_key="browser-test-secret-key-0123456789",
            env="development",
            instance_path=tmp_path_factory.mktemp("instance"),
        )
        app = create_app(settings)
        live = serve(app)
        try:
            token = make_token(app, "operator")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=live.url, headers=headers, timeout=30) as http:
                seed(http, live)
                seed_second_campaign(http, live)
            make_user(app, "ana", "viewer")
            yield Site(app, live)
        finally:
            live.stop()
            state(app).close()
            databases.wipe(url)
    simulator.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start Debian's Chromium once for the module, with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run  sudo apt-get install -y chromium"
            "  (or set IVR_SKIP_BROWSER_TESTS=1 to skip the browser tests)"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
            accept_downloads=True,
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def console_errors() -> list[str]:
    """Browser console errors (a CSP violation shows up here) seen by the module's pages."""
    return []


@pytest.fixture(scope="module")
def page(browser: Any, site: Site, console_errors: list[str]) -> Any:
    """The module's one page: a wrong password is refused, then ana logs in."""
    tab = browser.new_page()
    tab.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    tab.goto(site.url("/admin/"))
    assert tab.url.startswith(site.url("/admin/login?next="))
    tab.fill("#name", "ana")
    tab.fill("#password", "not the password")
    tab.click("button[type=submit] >> text=Log in")
    assert tab.inner_text(".alert") == "Wrong user name or password."
    console_errors.clear()  # the browser logs the refusal's 401 status; nothing else is expected
    tab.fill("#name", "ana")
    tab.fill("#password", PASSWORD)
    tab.click("button[type=submit] >> text=Log in")
    tab.wait_for_url(site.url("/admin/"))
    return tab


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go."""
    wanted = os.environ.get("IVR_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return Path(wanted)
    return tmp_path_factory.mktemp("screenshots")


def test_browser_login_campaign_and_call_timeline(page: Any, site: Site) -> None:
    assert page.inner_text(".who").startswith("ana")
    rows = page.locator("table.campaigns tbody tr")
    assert rows.count() == 2
    assert "autumn-follow-up" in rows.nth(0).inner_text()  # newest first
    assert page.locator("table.campaigns progress").nth(0).get_attribute("value") == "3"
    page.click(f"text={BULK_ID}")
    page.wait_for_url(site.url(f"/admin/campaigns/{BULK_ID}"))
    assert page.locator("table.calls tbody tr").count() == 2
    page.select_option("select[name=outcome]", "answered_human")
    page.click("text=Filter")
    assert page.locator("table.calls tbody tr").count() == 1
    page.click("table.calls a >> nth=0")
    page.wait_for_url(site.url(f"/admin/calls/{FIRST}"))
    timeline = page.locator("table.timeline tbody tr")
    assert timeline.count() == 3  # submit, the answered report, the stale one
    assert "after_final" in timeline.nth(2).inner_text()
    assert "Keys pressed: confirm" in page.inner_text(".facts.input")


def test_browser_search_by_number_and_message_id(page: Any, site: Site) -> None:
    page.fill("input[name=q]", "+385 98 111 2233")
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state()
    assert "Calls to +385981112233" in page.inner_text("h2")
    page.click(f"a[href='/admin/calls/{FIRST}']")
    page.wait_for_url(site.url(f"/admin/calls/{FIRST}"))
    page.fill("input[name=q]", SECOND_IDS[3])
    page.press("input[name=q]", "Enter")
    page.wait_for_url(site.url(f"/admin/calls/{SECOND_IDS[3]}"))


def test_browser_downloads_the_csv(page: Any, site: Site) -> None:
    page.goto(site.url(f"/admin/campaigns/{SECOND_BULK}"))
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    download = download_info.value
    assert download.suggested_filename == f"{SECOND_BULK}-calls.csv"
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0].startswith("message_id,")
    assert len(lines) == 1 + len(SECOND_IDS)


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_browser_pages_fit_laptop_and_phone(
    page: Any, site: Site, shots: Path, size: str, console_errors: list[str]
) -> None:
    page.set_viewport_size(LAPTOP if size == "laptop" else PHONE)
    try:
        for name, path in [
            ("campaigns", "/admin/"),
            ("campaign", f"/admin/campaigns/{BULK_ID}"),
            ("call", f"/admin/calls/{FIRST}"),
            ("parked", "/admin/reports/unmatched"),
        ]:
            page.goto(site.url(path))
            # Wide tables scroll inside their box: the page itself never scrolls sideways.
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} is {overflow}px too wide at {size} width"
            page.screenshot(path=str(shots / f"{name}-{size}.png"))
    finally:
        page.set_viewport_size(LAPTOP)
    assert console_errors == []  # no CSP violation, no failed stylesheet


def test_browser_logout(page: Any, site: Site) -> None:
    page.goto(site.url("/admin/"))
    page.click("text=Log out")
    page.wait_for_url(site.url("/admin/login"))
    assert page.inner_text(".note") == "You are logged out."
    page.goto(site.url("/admin/reports/unmatched"))
    assert page.url.startswith(site.url("/admin/login?next="))
