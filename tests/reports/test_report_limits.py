"""How much one report POST may carry (IVR_MAX_REPORT_RESULTS) and how long its answer gets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.models import InboundReport
from tests.conftest import NOTIFY_TOKEN, db, serve
from tests.reports.test_reports import JSON_TYPE, XML_TYPE


def tiny(count: int) -> list[dict[str, Any]]:
    return [{"messageId": f"m{n}"} for n in range(count)]


def as_xml(results: list[dict[str, Any]]) -> bytes:
    inner = "".join(f"<result><messageId>{r['messageId']}</messageId></result>" for r in results)
    return f"<reportResponse><results>{inner}</results></reportResponse>".encode()


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_notify_refuses_more_results_than_the_limit_and_keeps_the_body(
    settings: Settings, make_app: Any, kind: str
) -> None:
    app = make_app(settings, max_report_results=3)
    server = serve(app)
    url = f"{server.url}/notify/ivr/{NOTIFY_TOKEN}"
    try:
        for count, status in ((3, 200), (4, 413)):
            results = tiny(count)
            body = json.dumps({"results": results}).encode() if kind == "json" else as_xml(results)
            headers = JSON_TYPE if kind == "json" else XML_TYPE
            answer = httpx.post(url, content=body, headers=headers, timeout=30)
            assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "4 results" in error["message"]
        assert "at most 3" in error["message"]
        assert "IVR_MAX_REPORT_RESULTS" in error["message"]
        with db(app) as session:
            kept = session.scalars(select(InboundReport).order_by(InboundReport.id)).all()
            assert [k.body for k in kept][-1] == body  # the refused body is kept as sent
            assert kept[-1].parse_error is not None
    finally:
        server.stop()


def test_notify_answer_lists_the_first_thousand_items_and_counts_all(
    settings: Settings, make_app: Any
) -> None:
    app = make_app(settings)
    server = serve(app)
    try:
        body = json.dumps({"results": tiny(1_205)}).encode()
        answer = httpx.post(
            f"{server.url}/notify/ivr/{NOTIFY_TOKEN}", content=body, headers=JSON_TYPE, timeout=60
        )
        assert answer.status_code == 200, answer.text
        summary = answer.json()
        assert summary["unmatched"] == 1_205
        assert len(summary["items"]) == 1_000
        assert summary["items"][-1]["index"] == 999
        assert summary["itemsOmitted"] == 205
    finally:
        server.stop()
