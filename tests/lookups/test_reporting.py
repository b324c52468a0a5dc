"""The SQL reporting views and docs/REPORTING.md's example queries, on both databases."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, inspect, select, text, update

from app.db import utcnow
from app.lookups.reporting import (
    VIEWS,
    campaign_costs,
    campaign_summary,
    daily_outcomes,
    report_calls,
    report_campaign_costs,
    report_campaign_summary,
    report_daily_outcomes,
)
from app.migrate import downgrade, upgrade
from app.models import Call, Campaign
from app.simulator.server import Simulator
from tests.conftest import DATA, LiveServer, db
from tests.lookups.test_lookups import launch, notify, numbers, result

REPORTING = Path(__file__).resolve().parents[2] / "docs" / "REPORTING.md"
EXAMPLE = re.compile(r"```sql\n-- example: ([a-z-]+)(?: \((sqlite|postgresql)\))?\n(.*?)```", re.S)


@dataclass
class Seeded:
    alpha: list[str]
    beta: list[str]
    today: date  # the UTC day ivrdesk refused beta's call at submission


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


@pytest.fixture
def seeded(http: httpx.Client, live: LiveServer, app: Flask, simulator: Simulator) -> Seeded:
    """Two campaigns launched through the API, reported on through /notify.

    alpha (validityPeriod 720): every outcome once (answered_human twice), priced in
    EUR and USD; beta: answered, busy, refused at submission, pending.
    """
    alpha = launch(http, "alpha", (numbers("4179302", 10), "alpha-crm"), validityPeriod=720)
    simulator.reject_prefixes = ("4179304",)
    beta = launch(
        http, "beta", (["41793030000", "41793030001", "41793040000", "41793030002"], None)
    )
    answer = notify(
        live,
        result(alpha[0], "answered_human", duration=30, charged=60, price=(0.001, "EUR"),
               collected={"menu": "1"}),
        result(alpha[1], "answered_human", duration=20, price=(0.001, "EUR"),
               end="2026-04-02T23:59:59.999+0000", collected={"menu": "2"}),
        # 01:30 at +0200 is still the 2nd in UTC
        result(alpha[2], "answered_machine", duration=10, charged=10, price=(0.002, "USD"),
               end="2026-04-03T01:30:00.000+0200"),
        result(alpha[3], "busy", duration=0, end="2026-04-03T08:00:00.000+0000"),
        result(alpha[4], "no_answer", end="2026-04-03T08:01:00.000+0000"),
        result(alpha[5], "declined", end="2026-04-03T08:02:00.000+0000"),
        result(alpha[6], "failed", end="2026-04-03T08:03:00.000+0000"),
        result(alpha[7], "expired", end=None, sent="2026-04-04T10:00:00.000+0000"),
        result(alpha[8], "rejected", end=None, sent="2026-04-03T09:00:00.000+0000"),
        result(beta[0], "answered_human", duration=60, charged=60, price=(0.001, "EUR"),
               end="2026-04-02T12:00:00.000+0000", collected={"menu": "1"}),
        result(beta[1], "busy", end="2026-04-03T10:00:00.000+0000"),
        result("stranger", "busy"),
    )  # fmt: skip
    assert (answer["applied"], answer["unmatched"]) == (11, 1)
    with db(app) as session:
        refused = session.scalars(select(Call).where(Call.message_id == beta[2])).one()
        assert refused.outcome == "not_sent"
        today = refused.updated_at.date()
        # Launched 13 hours ago: past alpha's 720 minutes, within beta's default 2880.
        session.execute(update(Call).values(created_at=utcnow() - timedelta(hours=13)))
        session.commit()
    return Seeded(alpha, beta, today)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def plain(value: Any) -> Any:
    """Make a raw SQL value comparable across databases (numeric, float, date, text)."""
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    if isinstance(value, date | datetime):
        return str(value)
    return value


def documented_columns() -> dict[str, list[str]]:
    """Read each view's column table from docs/REPORTING.md."""
    sections = re.split(r"^## ", REPORTING.read_text(), flags=re.M)
    columns = {}
    for section in sections:
        name = section.split("\n", 1)[0].strip()
        if name in VIEWS:
            columns[name] = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    return columns


def test_reporting_views_have_the_documented_columns(engine: Engine) -> None:
    documented = documented_columns()
    typed = {
        "report_calls": report_calls,
        "report_campaign_summary": report_campaign_summary,
        "report_campaign_costs": report_campaign_costs,
        "report_daily_outcomes": report_daily_outcomes,
    }
    assert set(inspect(engine).get_view_names()) >= set(VIEWS)
    for view in VIEWS:
        with engine.connect() as connection:
            actual = list(connection.execute(text(f"SELECT * FROM {view} WHERE 1 = 0")).keys())
        assert actual == documented[view], view
        assert sorted(typed[view].c.keys()) == sorted(actual), view


def test_reporting_report_calls_every_column(app: Flask, seeded: Seeded) -> None:
    with db(app) as session:
        by_id = {r.message_id: r._mapping for r in session.execute(select(report_calls))}
        call = session.scalars(select(Call).where(Call.message_id == seeded.alpha[0])).one()
        campaign = session.scalars(select(Campaign).where(Campaign.bulk_id == "alpha")).one()
    assert len(by_id) == 14
    assert dict(by_id[seeded.alpha[0]]) == {
        "call_id": call.id,
        "bulk_id": "alpha",
        "campaign_id": campaign.campaign_id,
        "message_id": seeded.alpha[0],
        "to_number": "41793020000",
        "callback_data": "alpha-crm",
        "submit_state": "accepted",
        "status_group_id": 3,
        "status_group_name": "DELIVERED",
        "status_id": 5,
        "status_name": "DELIVERED_TO_HANDSET",
        "error_id": 10000,
        "error_name": "NORMAL_HANGUP",
        "outcome": "answered_human",
        "answered_by": "HUMAN",
        "duration_s": 30,
        "charged_duration_s": 60,
        "price_per_second": Decimal("0.001"),
        "cost": Decimal("0.06"),
        "currency": "EUR",
        "dtmf": None,
        "collected": {
            "collectedDtmfs": {"menu": "1"},
            "collectedMappedDtmfs": None,
            "spokenInput": None,
            "matchedSpokenInput": None,
        },
        "created_at": call.created_at,
        "sent_at": at("2026-04-02T07:00:01+00:00"),
        "answered_at": None,
        "ended_at": at("2026-04-02T07:00:41+00:00"),
        "updated_at": call.updated_at,
    }
    assert by_id[seeded.alpha[1]]["cost"] == Decimal("0.02")  # no charged duration: duration
    assert by_id[seeded.alpha[2]]["ended_at"] == at("2026-04-02T23:30:00+00:00")
    pending = by_id[seeded.alpha[9]]
    assert (pending["outcome"], pending["status_name"], pending["cost"]) == (
        "pending",
        "PENDING_ACCEPTED",
        None,
    )
    refused = by_id[seeded.beta[2]]
    assert (refused["submit_state"], refused["status_group_id"]) == ("rejected", 5)
    assert "stranger" not in by_id  # parked results are not calls


def test_reporting_campaign_summary_every_column(app: Flask, seeded: Seeded) -> None:
    with db(app) as session:
        alpha = campaign_summary(session, "alpha")
        beta = campaign_summary(session, "beta")
        created = session.scalar(select(Campaign.created_at).where(Campaign.bulk_id == "alpha"))
        assert campaign_summary(session, "nope") is None
    assert alpha is not None
    assert beta is not None
    assert alpha.pop("campaign_id")
    assert alpha == {
        "bulk_id": "alpha", "name": "alpha", "created_at": created, "total_calls": 10,
        "pending": 1, "delivered": 3, "undeliverable": 4, "expired": 1, "rejected": 1,
        "answered_human": 2, "answered_machine": 1, "busy": 1, "no_answer": 1, "declined": 1,
        "failed": 1, "not_sent": 0, "unknown": 0, "outcome_expired": 1, "outcome_rejected": 1,
        "outcome_pending": 1, "total_duration_s": 60, "total_charged_duration_s": 70,
        "total_cost": None, "currency": "MIXED",
    }  # fmt: skip
    assert (beta["total_calls"], beta["pending"], beta["delivered"]) == (4, 1, 1)
    assert (beta["undeliverable"], beta["rejected"], beta["not_sent"]) == (1, 1, 1)
    assert (beta["total_cost"], beta["currency"]) == (Decimal("0.06"), "EUR")


def test_reporting_campaign_without_priced_calls_has_no_currency(
    http: httpx.Client, app: Flask
) -> None:
    launch(http, "free", (numbers("4179302", 2), None))
    with db(app) as session:
        free = campaign_summary(session, "free")
        assert free is not None
        assert (free["total_cost"], free["currency"], free["total_calls"]) == (None, None, 2)
        assert (free["total_duration_s"], free["outcome_pending"]) == (0, 2)
        assert campaign_costs(session, "free") == {}


def test_reporting_costs_and_daily_outcomes(app: Flask, seeded: Seeded) -> None:
    with db(app) as session:
        assert campaign_costs(session, "alpha") == {"EUR": Decimal("0.08"), "USD": Decimal("0.02")}
        assert campaign_costs(session, "beta") == {"EUR": Decimal("0.06")}
        costs = session.execute(select(report_campaign_costs)).all()
        days = daily_outcomes(session)
        assert daily_outcomes(session, since=date(2026, 4, 4)) == days[-2:]
    assert sorted(tuple(r) for r in costs) == [
        ("alpha", "EUR", 2, Decimal("0.08")),
        ("alpha", "USD", 1, Decimal("0.02")),
        ("beta", "EUR", 1, Decimal("0.06")),
    ]
    day2, day3, day4 = date(2026, 4, 2), date(2026, 4, 3), date(2026, 4, 4)
    assert [tuple(d.values()) for d in days] == [
        (day2, "answered_human", 3, 110, 120),
        (day2, "answered_machine", 1, 10, 10),
        (day3, "busy", 2, 0, 0),
        (day3, "declined", 1, 0, 0),
        (day3, "failed", 1, 0, 0),
        (day3, "no_answer", 1, 0, 0),
        (day3, "rejected", 1, 0, 0),  # no end time: the day of its status (sentAt)
        (day4, "expired", 1, 0, 0),
        (seeded.today, "not_sent", 1, 0, 0),  # refused at submission today
    ]


def expected_examples(seeded: Seeded) -> dict[str, list[tuple[Any, ...]]]:
    """What each example query of docs/REPORTING.md answers on the seeded data."""
    return {
        "answer-rate": [
            ("beta", "beta", 4, 1, 2, 50.0),
            ("alpha", "alpha", 10, 3, 9, 33.3),
        ],
        "busy-no-answer-per-day": [
            ("2026-04-02", 4, 0, 0, 0.0),
            ("2026-04-03", 6, 2, 1, 50.0),
            ("2026-04-04", 1, 0, 0, 0.0),
        ],
        "cost-per-campaign": [
            ("alpha", "alpha", "EUR", 2, 0.08),
            ("alpha", "alpha", "USD", 1, 0.02),
            ("beta", "beta", "EUR", 1, 0.06),
        ],
        "pending-past-validity": [("alpha", seeded.alpha[9], "41793020009")],
        "dtmf-choices": [("alpha", "1", 1), ("alpha", "2", 1), ("beta", "1", 1)],
        "top-error-reasons": [
            ("BUSY", 2),
            ("DEVICE_UNAVAILABLE", 1),
            ("EXPIRED_EXPIRED", 1),
            ("NO_ANSWER", 1),
            ("REJECTED", 1),
            ("REJECTED_DESTINATION", 1),
            ("REJECTED_NETWORK", 1),
        ],
        "answered-duration": [("alpha", 3, 60, 20.0), ("beta", 1, 60, 60.0)],
    }


def test_reporting_documented_examples_give_the_numbers(engine: Engine, seeded: Seeded) -> None:
    examples = EXAMPLE.findall(REPORTING.read_text())
    expected = expected_examples(seeded)
    assert {name for name, _, _ in examples} == set(expected)
    ran = set()
    for name, dialect, sql in examples:
        if dialect and dialect != engine.dialect.name:
            continue
        answer = [tuple(plain(v) for v in row) for row in rows(engine, sql)]
        if name == "pending-past-validity":
            answer = [row[:3] for row in answer]  # created_at moves with the clock
        assert answer == expected[name], name
        ran.add(name)
    assert ran == set(expected)


def test_reporting_examples_come_in_both_dialects_when_split() -> None:
    examples = EXAMPLE.findall(REPORTING.read_text())
    split = {name: dialect for name, dialect, _ in examples if dialect}
    for name in split:
        dialects = {d for n, d, _ in examples if n == name}
        assert dialects == {"sqlite", "postgresql"}, name


def test_reporting_views_go_with_a_downgrade(engine: Engine) -> None:
    downgrade(engine, "0001")
    assert not set(VIEWS) & set(inspect(engine).get_view_names())
    assert "ix_calls_campaign_id_id" not in {
        i["name"] for i in inspect(engine).get_indexes("calls")
    }
    upgrade(engine)
    assert set(inspect(engine).get_view_names()) >= set(VIEWS)


def test_reporting_dtmf_example_counts_version_1_reports(
    http: httpx.Client, live: LiveServer, engine: Engine
) -> None:
    """A v1 report's dtmfCodesAsJson lands in collectedDtmfs, where the example looks."""
    (message_id,) = launch(http, "v1-campaign", (["41793050000"], None))
    v1 = json.loads((DATA / "report-v1.json").read_text())["results"][0]
    v1.update(messageId=message_id, dtmfCodesAsJson='{"menu":"3"}')
    assert notify(live, v1)["applied"] == 1
    (sql,) = [
        sql for name, _, sql in EXAMPLE.findall(REPORTING.read_text()) if name == "dtmf-choices"
    ]
    answer = [tuple(plain(v) for v in row) for row in rows(engine, sql)]
    assert answer == [("v1-campaign", "3", 1)]
