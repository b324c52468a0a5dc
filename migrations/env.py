"""Alembic environment: migrate the database of IVR_DATABASE_URL or a given connection."""

from __future__ import annotations

from typing import Any

from alembic import context

from app.config import DEFAULT_DATABASE_URL
from app.db import Base, make_engine
from app.models import Base as _models_loaded  # noqa: F401  (registers every table)

config = context.config
target_metadata = Base.metadata


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Hide the reporting views (created with raw SQL) from autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("report_"))


def run_migrations_online() -> None:
    """Run migrations on the connection given by the caller, or on a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    import os

    url = config.attributes.get("url") or os.environ.get("IVR_DATABASE_URL") or DEFAULT_DATABASE_URL
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("ivrdesk migrations run online only (ivrdesk db upgrade)")
run_migrations_online()
