"""Fixtures: migrated SQLite and PostgreSQL databases, the fake Infobip, ivrdesk on loopback."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.accounts.tokens import create_token
from app.config import Settings
from app.db import Base, make_engine, utcnow
from app.migrate import upgrade
from app.services import AppState
from app.simulator.server import ReportPlan, Simulator, SimulatorServer

DATA = Path(__file__).parent / "data"
POSTGRES_URL = os.environ.get(
    "IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# make test sets this (unless run with IVR_REQUIRE_POSTGRES=0): a missing PostgreSQL then
# fails the PostgreSQL half instead of skipping it.
REQUIRE_POSTGRES = os.environ.get("IVR_REQUIRE_POSTGRES") == "1"
NOTIFY_TOKEN = "notify-token-0123456789abcdef"
SIM_KEY = "sim-key-for-tests"
# Pull mode as deployed: no notifyUrl is sent, so no public URL or notify token is set.
PULL_MODE: dict[str, object] = {"reports_mode": "pull", "public_url": None, "notify_tokens": ()}


def _postgres_available() -> str | None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


class Databases:
    """One migrated database per backend for the whole test session, wiped between tests."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.urls: dict[str, str] = {}
        self.created_pg: list[str] = []

    def url(self, backend: str) -> str:
        if backend not in self.urls:
            self.urls[backend] = self._create(backend)
        return self.urls[backend]

    def _create(self, backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{self.tmp / 'ivrdesk-test.sqlite3'}"
        else:
            problem = _postgres_available()
            if problem is not None:
                message = f"PostgreSQL is not reachable at {POSTGRES_URL}: {problem}"
                if REQUIRE_POSTGRES:
                    pytest.fail(message)
                pytest.skip(f"{message} (IVR_REQUIRE_POSTGRES is not 1)")
            name = f"ivrdesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.created_pg.append(name)
            url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url

    def wipe(self, url: str) -> None:
        engine = make_engine(url)
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                joined = ", ".join(f'"{t}"' for t in tables)
                connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(text(f'DELETE FROM "{table}"'))
        engine.dispose()

    def drop_all(self) -> None:
        if not self.created_pg:
            return
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.created_pg:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, databases: Databases) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    url = databases.url(request.param)
    yield url
    databases.wipe(url)


@pytest.fixture
def postgres_url(databases: Databases) -> Iterator[str]:
    """A migrated, empty PostgreSQL database (for tests that need several hosts)."""
    url = databases.url("postgresql")
    yield url
    databases.wipe(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator(api_key=SIM_KEY, plan=ReportPlan(delay=0.05, enabled=False))
    yield sim
    sim.close()


@pytest.fixture
def sim_server(simulator: Simulator) -> Iterator[SimulatorServer]:
    with SimulatorServer(simulator) as server:
        yield server


@pytest.fixture
def settings(database_url: str, sim_server: SimulatorServer, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        infobip_base_url=sim_server.url,
        infobip_api_key=SIM_KEY,
        public_url="http://127.0.0.1:9",
        notify_tokens=(NOTIFY_TOKEN,),
        secret_key="test-secret-key-0123456789",
        env="development",
        infobip_timeout=2.0,
        instance_path=tmp_path / "instance",
        batch_size=3,
        sync_limit=50,
    )


class LiveServer:
    """A Flask app served over real HTTP on 127.0.0.1 in a background thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(app: Flask) -> LiveServer:
    """Start serving an app on loopback."""
    return LiveServer(app).start()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[object]:
    """Build apps from settings; every one is closed after the test."""
    apps: list[Flask] = []

    def build(settings: Settings, **changes: object) -> Flask:
        app = create_app(replace(settings, **changes) if changes else settings)
        apps.append(app)
        return app

    yield build
    for app in apps:
        state(app).close()


def state(app: Flask) -> AppState:
    return app.extensions["ivrdesk"]  # type: ignore[no-any-return]


@pytest.fixture
def reports_mode() -> str:
    """push; a test module runs ivrdesk in pull mode with
    `pytestmark = pytest.mark.parametrize("reports_mode", ["pull"])`."""
    return "push"


@pytest.fixture
def app(settings: Settings, make_app: object, reports_mode: str) -> Flask:
    changes = PULL_MODE if reports_mode == "pull" else {}
    return make_app(settings, **changes)  # type: ignore[operator, no-any-return]


@pytest.fixture
def live(app: Flask) -> Iterator[LiveServer]:
    server = serve(app)
    yield server
    server.stop()


def make_token(app: Flask, role: str) -> str:
    with state(app).sessions() as session:
        _, secret = create_token(session, f"{role}-token", role, now=utcnow())
        session.commit()
    return secret


@pytest.fixture
def operator_token(app: Flask) -> str:
    return make_token(app, "operator")


@pytest.fixture
def viewer_token(app: Flask) -> str:
    return make_token(app, "viewer")


@pytest.fixture
def http(live: LiveServer, operator_token: str) -> Iterator[httpx.Client]:
    """An HTTP client for ivrdesk, authenticated as an operator."""
    with httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {operator_token}"}, timeout=30
    ) as client:
        yield client


def db(app: Flask) -> Session:
    """Open a session on the app's database (close it after use)."""
    return state(app).sessions()
