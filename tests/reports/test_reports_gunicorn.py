"""Duplicates arriving at the same moment on two gunicorn workers are recorded once."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
from sqlalchemy import select

from app.db import make_engine, make_session_factory
from app.models import CallEvent
from app.simulator.server import SimulatorServer
from tests.conftest import NOTIFY_TOKEN, SIM_KEY
from tests.reports.test_reports import FIRST, JSON_TYPE, sample
from tests.servers import gunicorn


def test_notify_concurrent_copies_through_gunicorn_are_one_event(
    database_url: str, sim_server: SimulatorServer, tmp_path: Any
) -> None:
    env = {
        "IVR_DATABASE_URL": database_url,
        "IVR_INFOBIP_BASE_URL": sim_server.url,
        "IVR_INFOBIP_API_KEY": SIM_KEY,
        "IVR_PUBLIC_URL": "http://127.0.0.1:9",
        "IVR_NOTIFY_TOKENS": NOTIFY_TOKEN,
    }
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        from app.accounts.tokens import create_token
        from app.db import utcnow

        _, token = create_token(session, "ops", "operator", now=utcnow())
        session.commit()
    body = json.loads(sample("launch-request.json"))
    del body["messages"][0]["sendAt"]
    body["messages"][0]["destinations"][0]["messageId"] = FIRST
    report = sample("report-v2-answered.json")
    try:
        with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as url:
            launched = httpx.post(
                f"{url}/api/v1/campaigns", json=body,
                headers={"Authorization": f"Bearer {token}"}, timeout=30,
            )  # fmt: skip
            assert launched.status_code == 201, launched.text
            start = threading.Barrier(8)
            answers: list[dict[str, Any]] = []

            def post() -> None:
                with httpx.Client(timeout=30) as client:
                    start.wait()
                    response = client.post(
                        f"{url}/notify/ivr/{NOTIFY_TOKEN}", content=report, headers=JSON_TYPE
                    )
                    answers.append(response.json())

            threads = [threading.Thread(target=post) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        log = (tmp_path / "gunicorn.log").read_text()
        assert "Booting worker" in log
        assert sorted(a["applied"] for a in answers) == [0] * 7 + [1]
        assert sum(a["duplicates"] for a in answers) == 7
        with sessions() as session:
            events = session.scalars(
                select(CallEvent).where(CallEvent.message_id == FIRST, CallEvent.source == "report")
            ).all()
            assert [e.duplicates for e in events] == [7]
            assert events[0].applied is True
    finally:
        engine.dispose()
