"""Pull mode (IVR_REPORTS_MODE=pull) over real HTTP on both databases: no notifyUrl is sent.

DESIGN.md "Reconciliation with Infobip", the "Pull mode" bullet; INFOBIP.md §6.
"""

from __future__ import annotations

import json

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from app.models import Campaign
from app.simulator.server import Simulator
from tests.conftest import db, state
from tests.reports.test_reports import sample

IN_PULL_MODE = pytest.mark.parametrize("reports_mode", ["pull"])


@IN_PULL_MODE
def test_pull_mode_launches_without_a_notify_url(
    http: httpx.Client, app: Flask, simulator: Simulator
) -> None:
    settings = state(app).settings
    assert (settings.public_url, settings.notify_tokens) == (None, ())
    body = json.loads(sample("launch-request.json"))
    del body["messages"][0]["sendAt"]
    response = http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    [sent] = simulator.requests
    for message in sent["messages"]:
        assert "notifyUrl" not in message
        assert "notifyContentType" not in message
        assert message["callbackData"] == "patient-batch-17"
    with db(app) as session:  # the client's own notifyUrl is kept for its callbacks
        stored = session.scalars(select(Campaign.client_notify_urls)).one()
        assert stored == ["https://crm.example.org/hooks/ivr"]
