"""Seed PostgreSQL with 200k calls and 600k events, then EXPLAIN ANALYZE every lookup's SQL.

Run: .venv/bin/python bench/explain_lookups.py (its output is the body of docs/QUERY_PLANS.md)
It captures the statements the real lookup functions run, through SQLAlchemy or as
app.db.PgStatement on psycopg's raw cursor, and explains each one.
"""

# ruff: noqa: E501  (seed SQL is long and literal)
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.orm import Session

from app.db import PgStatement, make_engine, make_session_factory
from app.lookups.lists import (
    find_calls,
    find_campaigns,
    find_unmatched,
    get_campaign_calls,
    read_call_filter,
)
from app.lookups.reporting import campaign_summary
from app.lookups.resources import get_call_detail, get_campaign_detail
from app.migrate import upgrade

admin = create_engine("postgresql+psycopg://postgres@127.0.0.1/test", isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    c.execute(text("DROP DATABASE IF EXISTS explain WITH (FORCE)"))
    c.execute(text("CREATE DATABASE explain"))
url = "postgresql+psycopg://postgres@127.0.0.1/explain"
e = make_engine(url)
upgrade(e)
with e.begin() as c:
    c.execute(
        text(
            "INSERT INTO campaigns (campaign_id, bulk_id, name, scenario_id, created_at, total_calls, asynchronous, fingerprint, messages, client_notify_urls, clamped) SELECT md5(g::text), 'bulk-'||g, 'c'||g, 'S', now() - (g||' minutes')::interval, 2000, false, 'x', '[{\"validityPeriod\": 720}]', '[null]', '[]' FROM generate_series(1,100) g"
        )
    )
    c.execute(
        text(
            "INSERT INTO calls (campaign_id, message_index, message_id, to_number, callback_data, submit_state, outcome, status_final, status_group_id, status_name, status_occurred_at, duration, charged_duration, price_per_second, currency, created_at, updated_at) SELECT 1 + (g % 100), 0, md5(g::text), (385912000000 + g)::text, 'cb-'||(g % 5000), 'accepted', (ARRAY['answered_human','busy','no_answer','pending','failed'])[1 + g % 5], g % 5 <> 3, (ARRAY[3,2,2,1,2])[1 + g % 5], 'X', now(), g % 60, 60, 0.0012, 'EUR', now(), now() FROM generate_series(1,200000) g"
        )
    )
    c.execute(
        text(
            "INSERT INTO call_events (call_id, message_id, source, outcome, occurred_at, received_at, applied, duplicates, dedupe_key) SELECT 1 + (g % 200000), md5((1 + g % 200000)::text), 'report', 'busy', now(), now() - (g||' seconds')::interval, true, 0, md5('k'||g) FROM generate_series(1,600000) g"
        )
    )
    c.execute(
        text(
            "INSERT INTO call_events (call_id, message_id, source, outcome, received_at, applied, duplicates, reason, dedupe_key) SELECT NULL, 'parked-'||g, 'report', 'busy', now(), false, 0, 'unmatched', md5('p'||g) FROM generate_series(1,2000) g"
        )
    )
    c.execute(text("ANALYZE"))
# (statement, parameters, raw): raw ones have $n placeholders and run on a RawCursor.
captured: list[tuple[str, Any, bool]] = []


@event.listens_for(e, "before_cursor_execute")
def grab(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    """Keep each read that SQLAlchemy sends."""
    if statement.lstrip().upper().startswith(
        ("SELECT", "WITH")
    ) and not statement.lstrip().upper().startswith("EXPLAIN"):
        captured.append((statement, parameters, False))


_rows = PgStatement.rows


def grab_raw(self: PgStatement, connection: Connection, values: Mapping[str, Any]) -> Any:
    """Keep each read run as a PgStatement, then run it."""
    captured.append((self.sql, self.parameters(values), True))
    return _rows(self, connection, values)


PgStatement.rows = grab_raw  # type: ignore[method-assign]


def md5_(n: int) -> str:
    """Return the md5 text the seed SQL gives call n."""
    return hashlib.md5(str(n).encode()).hexdigest()  # noqa: S324  (matches the seed SQL md5)


def explain(session: Session, statement: str, params: Any, raw: bool) -> Sequence[str]:
    """Return the plan lines of one captured statement, run again under EXPLAIN ANALYZE."""
    query = "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) " + statement
    connection = session.connection()
    if raw:
        driver: Any = connection.connection.driver_connection
        with psycopg.RawCursor(driver) as cursor:
            return [row[0] for row in cursor.execute(query, params).fetchall()]
    return connection.exec_driver_sql(query, params).scalars().all()


S = make_session_factory(e)
cases: dict[str, Callable[[Session], object]] = {
    "call by messageId (GET /api/v1/calls/<id>)": lambda s: get_call_detail(s, md5_(12345)),
    "search by number (GET /api/v1/calls?to=)": lambda s: find_calls(
        s, read_call_filter({"to": "+385 91 201 2345"}), limit=50
    ),
    "search by callbackData": lambda s: find_calls(
        s, read_call_filter({"callbackData": "cb-77"}), limit=50
    ),
    "campaign detail (GET /api/v1/campaigns/<bulkId>)": lambda s: get_campaign_detail(s, "bulk-7"),
    "campaign calls by outcome": lambda s: get_campaign_calls(
        s, "bulk-7", read_call_filter({"outcome": "busy"}), limit=50
    ),
    "campaign list": lambda s: find_campaigns(s, limit=50),
    "parked reports": lambda s: find_unmatched(s, limit=50),
    "report_campaign_summary for one campaign": lambda s: campaign_summary(s, "bulk-7"),
}


for name, run in cases.items():
    captured.clear()
    with S() as s:
        run(s)
        statements = list(captured)
        print(f"\n### {name}")
        for statement, params, raw in statements:
            print("\n".join("    " + line for line in explain(s, statement, params, raw)))
e.dispose()
with admin.connect() as c:
    c.execute(text("DROP DATABASE IF EXISTS explain WITH (FORCE)"))
