"""One ivrdesk under gunicorn (2 workers) and one fake Infobip per database for this folder.

Starting gunicorn costs seconds, so the `stack` is shared by the tests of this package
(tests/reliability/__init__.py makes it a package, so "package" scope ends with it):
each test gets it with an empty database, a reset fake Infobip and a fresh operator token.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.db import make_engine, make_session_factory
from app.simulator.server import ReportPlan, Simulator, SimulatorServer
from tests.conftest import SIM_KEY, Databases
from tests.reliability.support import MAX_REPORT_BYTES, Stack, app_env, fresh
from tests.reliability.sweep import Recorded, assert_unchanged, record_answered_call
from tests.servers import gunicorn


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def shared_stack(
    request: pytest.FixtureRequest,
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Start the fake Infobip and ivrdesk under gunicorn once per database."""
    database_url = databases.url(request.param)
    log = tmp_path_factory.mktemp(f"stack-{request.param}") / "gunicorn.log"
    simulator = Simulator(api_key=SIM_KEY, plan=ReportPlan(delay=0.05, enabled=False))
    env = app_env(
        database_url,
        "",
        IVR_INFOBIP_TIMEOUT="0.5",
        IVR_MAX_REPORT_BYTES=str(MAX_REPORT_BYTES),
        IVR_LOG_FORMAT="text",
    )
    engine = make_engine(database_url)
    try:
        with SimulatorServer(simulator) as server:
            env["IVR_INFOBIP_BASE_URL"] = server.url
            with gunicorn(env, workers=2, log=log) as url:
                yield Stack(url, database_url, engine, make_session_factory(engine),
                            simulator, server.url, log)  # fmt: skip
    finally:
        engine.dispose()


@pytest.fixture
def stack(shared_stack: Stack, databases: Databases) -> Iterator[Stack]:
    """The shared stack with an empty database, a reset fake Infobip and an operator token."""
    yield fresh(shared_stack)
    shared_stack.simulator.on_launch = None
    databases.wipe(shared_stack.database_url)


@pytest.fixture(scope="module")
def swept(shared_stack: Stack, databases: Databases) -> Iterator[tuple[Stack, Recorded]]:
    """For a module of hostile cases: one call recorded first, the database kept between cases."""
    stack = fresh(shared_stack)
    try:
        yield stack, record_answered_call(stack)
    finally:
        databases.wipe(stack.database_url)


@pytest.fixture
def recorded(swept: tuple[Stack, Recorded]) -> Iterator[Recorded]:
    """The call recorded first; after each case, it and the row counts are as they were."""
    stack, before = swept
    yield before
    assert_unchanged(stack, before)
