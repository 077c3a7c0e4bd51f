"""The compatibility matrix: small apps that reproduce the patterns real apps use, each
launched unmodified under ``deskprof capture --launch`` with a locustfile that knows
nothing of deskprof. The server axis (gunicorn sync/gthread/uvicorn worker, uvicorn
``--workers``, attached by the master's PID) is ``test_capture_gunicorn.py``.

Every cell asserts the same five things: requests counted once, routes present (the
innermost template), queries inside their requests, CPU samples on the handler, and
findings that run (the N+1 every app has is found).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deskprof.bundle.reader import open_capture
from opendesk.redis_server import free_port
from tests.apps.models import N_ITEMS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]
LOCUSTFILE = ROOT / "tests" / "workloads" / "items.py"
FASTAPI_ROUTES = ("/items", "/items/{item_id}")


@dataclass(frozen=True)
class Cell:
    """One app under one server on one database driver."""

    app: str  # module:attribute
    server: str = "uvicorn"  # uvicorn | gunicorn-sync | gunicorn-gthread
    database: str = "sqlite"  # sqlite | aiosqlite | postgresql | asyncpg
    prefix: str = ""  # where the app serves /items
    routes: tuple[str, str] = FASTAPI_ROUTES  # list and detail templates, without prefix
    handler: str = "list_items"
    extra: tuple[str, ...] = field(default=())

    def command(self, port: int) -> str:
        python = sys.executable
        if self.server == "uvicorn":
            return f"{python} -m uvicorn {self.app} --host 127.0.0.1 --port {port}"
        kind = {"gunicorn-sync": "sync", "gunicorn-gthread": "gthread --threads 4"}[self.server]
        return f"{python} -m gunicorn -w 1 -k {kind} --bind 127.0.0.1:{port} {self.app}"


CELLS = {
    "fastapi-sync-sqlite": Cell("tests.apps.fastapi_app:app"),
    "fastapi-sync-psycopg": Cell("tests.apps.fastapi_app:app", database="postgresql"),
    "fastapi-async-aiosqlite": Cell("tests.apps.async_app:app", database="aiosqlite"),
    "fastapi-async-asyncpg": Cell("tests.apps.async_app:app", database="asyncpg"),
    "sqlmodel-sqlite": Cell("tests.apps.sqlmodel_app:app"),
    "starlette-sqlite": Cell(
        "tests.apps.starlette_app:app", routes=("/items", "/items/{item_id:int}")
    ),
    "fastapi-subapp": Cell("tests.apps.subapp_app:app", prefix="/api"),
    "flask-gunicorn-sync": Cell(
        "tests.apps.flask_app:app",
        server="gunicorn-sync",
        routes=("/items", "/items/<int:item_id>"),
    ),
    "flask-blueprint-gthread": Cell(
        "tests.apps.blueprint_app:app",
        server="gunicorn-gthread",
        routes=("/items", "/items/<int:item_id>"),
    ),
    "flask-in-fastapi-wsgimiddleware": Cell(
        "tests.apps.mounted_app:app", prefix="/flask", routes=("/items", "/items/<int:item_id>")
    ),
    "flask-in-fastapi-a2wsgi": Cell(
        "tests.apps.a2wsgi_app:app", prefix="/legacy", routes=("/items", "/items/<int:item_id>")
    ),
}


@pytest.fixture(scope="module")
def pg_admin() -> Iterator[str]:
    from tests.conftest import PG_ADMIN_URL, _pg_reachable

    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    yield PG_ADMIN_URL


def _databases(cell: Cell, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """The app's environment: a fresh database of the cell's kind, filled."""
    from tests.apps.models import init_db

    if cell.database in ("sqlite", "aiosqlite"):
        file = tmp_path / "app.sqlite3"
        sync_url = f"sqlite:///{file}"
        init_db(sync_url)
        return {
            "TESTAPP_DATABASE_URL": sync_url,
            "TESTAPP_ASYNC_DATABASE_URL": f"sqlite+aiosqlite:///{file}",
        }
    admin_url = request.getfixturevalue("pg_admin")
    name = f"deskprof_compat_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    request.addfinalizer(drop)
    url = make_url(admin_url).set(database=name)
    sync_url = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    init_db(sync_url)
    return {
        "TESTAPP_DATABASE_URL": sync_url,
        "TESTAPP_ASYNC_DATABASE_URL": url.set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False
        ),
    }


@pytest.mark.parametrize("name", list(CELLS))
def test_cell(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    cell = CELLS[name]
    port = free_port()
    env = {**os.environ, **_databases(cell, tmp_path, request), "ITEMS_PREFIX": cell.prefix}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    bundle = tmp_path / "bundle"
    proc = subprocess.run(
        [*DESKPROF, "capture", "--url", f"http://127.0.0.1:{port}",
         "--launch", cell.command(port), "--sources", "cpu,sql", "--duration", "5",
         "--workload", str(LOCUSTFILE), "--users", "4", "--out", str(bundle)],
        capture_output=True, text=True, timeout=240, env=env, cwd=ROOT,
    )  # fmt: skip
    log = bundle / "raw" / "target.log"
    assert proc.returncode == 0, proc.stderr + (log.read_text() if log.exists() else "")
    capture = open_capture(bundle)
    requests, queries = capture.requests, capture.queries
    joined = capture.manifest.integrity["requests"]

    # 1. counted once: one record per HTTP request, every answered one matched
    assert requests["request_id"].is_unique, "one record per request, not one per layer"
    assert joined["matched"] >= 0.99 * joined["workload_answered"] > 20, joined
    assert joined["probe_only"] <= 5, f"records no client request made: {joined}"
    # 2. routes: the innermost template, with the mount's prefix
    expected = {cell.prefix + route for route in cell.routes}
    served = requests[requests["request_id"].isin(capture.workload["request_id"])]
    assert set(served["route"]) == expected, set(served["route"])
    # 3. queries in their requests: the N+1 of the list belongs to its request
    app_queries = queries[queries["statement"].str.contains("owners", case=False)]
    inside = (app_queries["request_id"] != "").mean()
    assert inside >= 0.99, f"{inside:.1%} of the app's queries inside a request"
    # 4. CPU on the handler: samples whose stack holds the view, attributed to its endpoint
    samples = capture.samples.merge(capture.stacks[["stack_id", "frames"]], on="stack_id")
    on_handler = samples[
        samples["frames"].map(lambda fs: any(f.startswith(f"{cell.handler} (") for f in fs))
    ]
    assert len(on_handler) > 0, "no CPU sample on the handler"
    by_task = samples[samples["attributed_by"] == "task"]
    # on an event loop, the request whose task ran: only when py-spy's clock offset could
    # be measured (enough handler samples on the loop thread), so not every short capture
    # has it; when it does, every such sample names a request, and the manifest says so
    assert by_task["request_id"].isin(requests["request_id"]).all()
    said = capture.manifest.integrity["samples"]
    assert said["task"] == int(by_task["n_samples"].sum()), said
    list_endpoint = f"GET {cell.prefix}{cell.routes[0]}"
    assert (on_handler["endpoint"] == list_endpoint).mean() >= 0.9, on_handler[
        "endpoint"
    ].value_counts()
    # 5. findings run (the CLI, as users do, default thresholds) and see the N+1 every
    # app has on its list: six fast lookups on every list request, under Sentry's 50 ms
    # a request, found because the pattern is on most of the endpoint's requests; its
    # call site is the app's own line, async SQLAlchemy included
    findings = subprocess.run(
        [*DESKPROF, "findings", str(bundle), "--format", "json"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert findings.returncode == 0, findings.stderr
    found = json.loads(findings.stdout)["findings"]
    n_plus_one = [f for f in found if f["kind"] == "n_plus_one" and f["endpoint"] == list_endpoint]
    assert n_plus_one, [(f["kind"], f["endpoint"]) for f in found]
    site = n_plus_one[0]["evidence"][0]["call_site"]
    assert "tests/apps/" in site, f"call site {site!r} is not the app's line"
    _record(name, joined, requests, served, inside, on_handler, said, found)
    assert n_plus_one[0]["evidence"][0]["repeats_per_request_median"] == N_ITEMS


def _record(name, joined, requests, served, inside, on_handler, said, found) -> None:
    """test-artifacts/compat_matrix.json: each cell's counts from its last run (the
    README's matrix and the closing notes quote them)."""
    file = ROOT / "test-artifacts" / "compat_matrix.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        cells = json.loads(file.read_text())
    except (OSError, ValueError):
        cells = {}
    cells[name] = {
        "client_answered": joined["workload_answered"],
        "matched": joined["matched"],
        "probe_requests": len(requests),
        "with_route": f"{(served['route'] != '').mean():.0%}",
        "queries_in_requests": f"{inside:.0%}",
        "handler_samples": int(on_handler["n_samples"].sum()),
        "samples_by_task": said["task"],
        "findings": len(found),
    }
    file.write_text(json.dumps(cells, indent=2, sort_keys=True) + "\n")
