"""PostgreSQL unreachable while reports arrive: 503 with Retry-After, nothing half-written.

ivrdesk runs under gunicorn against PostgreSQL through a TCP proxy of the test's own
(tests/reliability/tcp_proxy.py); switching the proxy off cuts ivrdesk's connections
without touching the shared cluster. Reports refused during the outage are delivered
again, as Infobip does, and all end up recorded exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.models import Call, CallEvent, InboundReport
from app.simulator.server import SimulatorServer
from tests.reliability.support import (
    Answer,
    Spec,
    app_env,
    calls_by_message_id,
    chunk_posts,
    deliver,
    event_identity,
    flat_launch,
    make_specs,
    new_operator_token,
    report_events,
    sorted_winners,
    spec_identity,
)
from tests.reliability.tcp_proxy import TcpProxy
from tests.servers import gunicorn

CALLS = 60
REPORTS = 240
SIZES = (1, 1, 2, 5)


def stored_totals(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    """Return (raw bodies, results in them, events plus the copies they counted)."""
    with sessions() as session:
        bodies = session.scalar(select(func.count()).select_from(InboundReport)) or 0
        results = session.scalar(select(func.coalesce(func.sum(InboundReport.items), 0))) or 0
        events = report_events(session)
        return bodies, results, sum(1 + e.duplicates for e in events)


def assert_refused(answers: list[Answer]) -> None:
    """Every POST got 503 with Retry-After in the error shape."""
    assert answers
    for answer in answers:
        assert answer.status == 503, answer.body
        assert answer.retry_after is not None
        assert int(answer.retry_after) > 0
        assert answer.body["error"]["code"] == "unavailable"


@pytest.mark.postgres
def test_reports_during_a_database_outage_are_refused_then_all_applied(
    postgres_url: str, sim_server: SimulatorServer, tmp_path: Path
) -> None:
    rng = random.Random(2026_06)
    direct = make_url(postgres_url)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432)).start()
    proxied = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = make_engine(postgres_url)  # the test's own view, not through the proxy
    sessions = make_session_factory(engine)
    token = new_operator_token(sessions)
    env = app_env(proxied, sim_server.url)
    try:
        with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as url:
            numbers = [f"4179303{n:04d}" for n in range(CALLS)]
            launched = httpx.post(
                f"{url}/api/v1/campaigns", json=flat_launch("outage", numbers),
                headers={"Authorization": f"Bearer {token}"}, timeout=60,
            )  # fmt: skip
            assert launched.status_code == 201, launched.text
            with sessions() as session:
                submitted = {c.message_id: c.status_occurred_at for c in session.scalars(
                    select(Call))}  # fmt: skip
            specs = make_specs(sorted(submitted), REPORTS, rng)
            rng.shuffle(specs)
            first, during, rest = specs[:80], specs[80:160], specs[160:]

            # Before: delivered and recorded.
            answers = deliver(url, chunk_posts(first, rng, SIZES, 0.3), threads=4,
                              deadline=time.monotonic() + 60)  # fmt: skip
            assert {a.status for a in answers} == {200}
            before = stored_totals(sessions)
            assert before[1] == before[2] == len(first)

            # Outage: every POST refused, and nothing of it written.
            proxy.switch_off()
            refused_posts = chunk_posts(during, rng, SIZES, 0.3)
            assert_refused(deliver(url, refused_posts, threads=4, deadline=time.monotonic() + 60))
            assert stored_totals(sessions) == before
            with sessions() as session:
                stored = set(map(event_identity, report_events(session)))
            assert not stored & set(map(spec_identity, during))

            # Back, then cut again while the redeliveries and new reports are in flight.
            proxy.switch_on()
            posts = refused_posts + chunk_posts(rest, rng, SIZES, 0.3)
            rng.shuffle(posts)
            cut = threading.Event()
            restore = threading.Timer(0.5, proxy.switch_on)

            def cut_midway(answered: int) -> None:
                if answered >= len(posts) // 3 and not cut.is_set():
                    cut.set()
                    proxy.switch_off()
                    restore.start()

            answers = deliver(url, posts, threads=4, deadline=time.monotonic() + 60,
                              retry_503=True, on_answer=cut_midway)  # fmt: skip
            restore.join(5)
            assert cut.is_set()
            statuses = Counter(a.status for a in answers)
            assert set(statuses) == {200, 503}, statuses  # never a 5xx other than 503
            assert_refused([a for a in answers if a.status == 503])
            delivered = [a for a in answers if a.status == 200]
            assert sorted(spec_identity(s) for a in delivered for s in a.specs) == sorted(
                spec_identity(s) for s in during + rest
            )  # every POST was finally acknowledged once
    finally:
        proxy.close()
    try:
        check_everything_recorded_once(sessions, specs, submitted)
    finally:
        engine.dispose()


def check_everything_recorded_once(
    sessions: sessionmaker[Session], specs: list[Spec], submitted: dict[str, datetime | None]
) -> None:
    """Each report's event exists once, nothing is half-written, calls end where they should."""
    with sessions() as session:
        events = report_events(session)
        calls = calls_by_message_id(session)
    # Zero lost, none twice: each report's event exists exactly once.
    assert sorted(map(event_identity, events)) == sorted(map(spec_identity, specs))
    # Nothing half-written: every result of every stored body is an event or a counted copy.
    _, results, recorded = stored_totals(sessions)
    assert results == recorded
    winners = sorted_winners(specs, submitted)
    assert {m: (c.status_name, c.status_occurred_at) for m, c in calls.items()} == {
        m: (w.status_name, w.occurred_at) for m, w in winners.items()
    }
    with sessions() as session:
        orphans = session.scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.call_id.is_(None))
        )
    assert orphans == 0
