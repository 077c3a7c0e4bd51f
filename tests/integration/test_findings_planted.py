"""Acceptance: the SQL detectors find each SQL-side planted problem of the reference
OpenDesk at the right endpoint, and none of them once every fix is on.

Real parts end to end: the reference app in-process with the probe installed, driven
through its HTTP API (lists, details, filtered lists, reports, deep pages, export), the
probe's output written as a real bundle, opened with ``open_capture``, EXPLAIN against the
same database (HypoPG when the server has it). The time thresholds are scaled to the
small seed (2k tickets, 50x fewer than the demo set); the counts are the defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from deskprof.analysis import open_capture
from deskprof.analysis.findings import Thresholds, detect_all
from deskprof.bundle.schema import PROBE_KINDS, columns
from deskprof.bundle.writer import BundleWriter
from deskprof.cli import main
from deskprof.probe import install
from deskprof.probe.reader import read_probe_dir
from opendesk import migrations
from opendesk.app import create_app
from opendesk.config import Settings
from opendesk.db import make_engine
from opendesk.seed import DEMO_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# a small seed's reports take about 1 ms of DB time a request on a fast host: the
# time thresholds are scaled down so the planted problems stay above them on any host
SMALL_SEED = Thresholds(
    n_plus_one_min_total_ms=2.0, uncached_min_ms=0.3, pagination_min_count_ms=0.02
)
SQL_KINDS = {
    "n_plus_one",
    "slow_query",
    "missing_index",
    "uncached_read",
    "deep_pagination",
    "connection_churn",
    "weak_index",
    "write_contention",
}
REPORTS = ["ticket-stats", "daily-trends", "agent-performance", "sla-compliance", "distribution"]


def _drive(client: TestClient, keyset: bool, light: bool = False) -> None:
    token = client.post(
        "/auth/login", json={"email": "agent1@opendesk.test", "password": DEMO_PASSWORD}
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str) -> dict:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        ctype = response.headers.get("content-type", "")
        return response.json() if ctype.startswith("application/json") else {}

    for i in range(6):
        get("/tickets")
        if light:
            continue
        get(f"/tickets/{17 + 31 * i}")
        get("/tickets?status=open&sort=updated_at")
    if light:
        return
    for name in REPORTS:
        for _ in range(4):
            get(f"/reports/{name}")
    cursor = None
    for page in range(1, 31):  # one client paging deep, by cursor when the server offers it
        body = get(f"/tickets?cursor={cursor}" if keyset and cursor else f"/tickets?page={page}")
        cursor = body.get("next_cursor")
    for _ in range(3):
        get("/tickets/export.csv?status=open")


def _write_bundle(probe_dir: Path, bundle: Path) -> Path:
    records = read_probe_dir(probe_dir)
    writer = BundleWriter(bundle)
    writer.manifest.options = {"sources": ["sql"], "keep_parameters": False}
    for kind in PROBE_KINDS:
        frame = pd.DataFrame(records[kind], columns=[*columns(kind), "kind"])
        writer.write_table(kind, frame[columns(kind)])
    writer.finish([])
    return bundle


def _capture(
    database_url: str, redis_url: str, fixes: set[str], out: Path, light: bool = False
) -> Path:
    settings = Settings(database_url=database_url, redis_url=redis_url, fixes=frozenset(fixes))
    engine = make_engine(settings)
    migrations.reconcile(engine, "indexes" in fixes)
    engine.dispose()
    app = create_app(settings)
    handle = install(app, app.state.ctx.engine, out_dir=out / "probe")
    try:
        with TestClient(app) as client:
            _drive(client, keyset="keyset_pagination" in fixes, light=light)
    finally:
        handle.close()
        app.state.ctx.close()
    return _write_bundle(out / "probe", out / "bundle")


@pytest.fixture(params=["sqlite", "postgresql"])
def planted_db(request: pytest.FixtureRequest) -> str:
    """A seeded database of each backend; PostgreSQL gets HypoPG when the server has it."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_copy")
    url = request.getfixturevalue("seeded_postgres")
    engine = create_engine(url)
    with engine.begin() as conn:
        available = conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
        ).first()
        if available:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS hypopg"))
    engine.dispose()
    return url


def _plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_sql_planted_problems_found_on_baseline_and_gone_when_fixed(
    planted_db: str, redis_url: str, tmp_path: Path
) -> None:
    all_fixes = set(Settings.from_env({"OPENDESK_FIXES": "all"}).fixes)
    try:
        baseline = open_capture(_capture(planted_db, redis_url, set(), tmp_path / "base"))
        found = detect_all(baseline, explain_url=_plain_url(planted_db), thresholds=SMALL_SEED)
        at = {(f.kind, f.endpoint) for f in found}
        assert ("n_plus_one", "GET /tickets") in at, at
        assert ("missing_index", "GET /tickets") in at, at
        assert ("uncached_read", "GET /reports/{name}") in at, at
        assert ("deep_pagination", "GET /tickets") in at, at
        assert ("connection_churn", "") in at, at
        index = next(f for f in found if f.kind == "missing_index" and "comments" in f.fix)
        assert "CREATE INDEX ON comments (ticket_id)" in index.fix
        n_plus_one = next(f for f in found if f.kind == "n_plus_one")
        assert n_plus_one.evidence[0]["call_site"].split(":")[0].endswith("opendesk/tickets.py")
        assert n_plus_one.evidence[0]["repeats_per_request_median"] >= 5

        fixed = open_capture(_capture(planted_db, redis_url, all_fixes, tmp_path / "fixed"))
        after = detect_all(fixed, explain_url=_plain_url(planted_db), thresholds=SMALL_SEED)
        remaining = [(f.kind, f.endpoint, f.title) for f in after if f.kind in SQL_KINDS]
        assert remaining == []
    finally:
        engine = make_engine(Settings(database_url=planted_db))
        migrations.revert(engine)  # the seeded database is shared with other tests
        engine.dispose()


def test_findings_cli_writes_ranked_json_and_text(
    sqlite_copy: str, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _capture(sqlite_copy, redis_url, set(), tmp_path / "base", light=True)
    out = tmp_path / "findings.json"
    assert main(["findings", str(bundle), "--format", "json", "--out", str(out)]) == 0
    body = json.loads(out.read_text())
    assert body["findings"], "the baseline opens a connection per request at least"
    keys = {"kind", "severity", "endpoint", "title", "evidence", "estimated_saving_ms", "fix"}
    assert all(keys <= set(f) for f in body["findings"])
    assert {s["detector"] for s in body["skipped"]} >= {"missing_index", "cpu_hotspot"}
    totals = [f["estimated_saving_ms"] * max(f["affected_requests"], 1) for f in body["findings"]]
    assert totals == sorted(totals, reverse=True)

    capsys.readouterr()
    assert main(["findings", str(bundle), "--explain-database", sqlite_copy]) == 0
    printed = capsys.readouterr().out
    assert "1. [" in printed and "connection_churn" in printed and "fix:" in printed
    assert main(["findings", str(tmp_path)]) == 2
    assert "not a capture bundle" in capsys.readouterr().err
