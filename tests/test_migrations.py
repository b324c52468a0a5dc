"""The schema is built by migrations only, and the models agree with it."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.db import Base, make_engine
from app.migrate import current_revision, downgrade, head_revision, upgrade


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_are_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_migrations_constraints_are_named(engine: Engine) -> None:
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("calls")["name"] == "pk_calls"
    uniques = {u["name"] for u in inspector.get_unique_constraints("calls")}
    assert "uq_calls_message_id" in uniques
    indexes = {i["name"] for i in inspector.get_indexes("calls")}
    assert {
        "ix_calls_to_number_id",
        "ix_calls_callback_data_id",
    } <= indexes


def test_postgresql_storage_settings(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            options = connection.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'calls'")
            ).scalar_one()
            compression = connection.execute(
                text(
                    "SELECT attcompression FROM pg_attribute"
                    " WHERE attrelid = 'inbound_reports'::regclass AND attname = 'body'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert options == ["fillfactor=70"]  # room in each page: status updates stay HOT
    assert compression == "l"  # lz4 (Debian's PostgreSQL has it)


def test_migrations_downgrade_and_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert "calls" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_event_sources_are_checked_and_reconcile_is_one(engine: Engine) -> None:
    # Revision 0007 widened ck_call_events_source (SQLite rebuilt call_events for it).
    insert = text(
        "INSERT INTO call_events (message_id, source, received_at, applied, duplicates, outcome)"
        " VALUES (:message_id, :source, CURRENT_TIMESTAMP, false, 0, 'pending')"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"message_id": "m-reconcile", "source": "reconcile"})
    with pytest.raises(IntegrityError, match=r"ck_call_events_source|CHECK"), engine.begin() as c:
        c.execute(insert, {"message_id": "m-bogus", "source": "bogus"})
    indexes = {index["name"] for index in inspect(engine).get_indexes("call_events")}
    assert {"ix_call_events_parked", "ix_call_events_parked_message_id"} <= indexes
