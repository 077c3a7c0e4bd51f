"""PostgreSQL's own count beside the probe's: a private cluster that preloads
pg_stat_statements (started from the installed server binaries, as the csvlog tests do),
OpenDesk captured against it, and the server's statements reconciled with the probe's
per fingerprint, in the manifest and in the report."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from deskprof.analysis.server_statements import reconcile_statements
from deskprof.bundle.reader import open_capture
from opendesk.redis_server import free_port
from tests.fixtures.pglog.make_fixture import missing_reason, private_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PRELOAD = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}


def _seeded(cluster_url: str) -> str:
    from sqlalchemy import create_engine, text

    from opendesk.config import Settings
    from opendesk.db import make_engine
    from opendesk.seed import seed

    admin = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE opendesk"))
    admin.dispose()
    url = cluster_url.rsplit("/", 1)[0] + "/opendesk"
    engine = make_engine(Settings(database_url=url))
    seed(engine, "small", anchor=date(2026, 11, 2))
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
    engine.dispose()
    return url


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_server_statements_reconcile_with_the_probe(tmp_path: Path, redis_url: str) -> None:
    with private_cluster(PRELOAD) as cluster:
        url = _seeded(cluster.url())
        port = free_port()
        bundle = tmp_path / "bundle"
        launch = (
            f"env OPENDESK_DATABASE_URL={url} OPENDESK_REDIS_URL={redis_url} "
            f"{sys.executable} -m opendesk serve --port {port}"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "deskprof", "capture", "--url", f"http://127.0.0.1:{port}",
             "--launch", launch, "--sources", "sql", "--duration", "6", "--users", "2",
             "--workload", "ticket_list", "--database-url", url, "--out", str(bundle)],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = tmp_path / "report.md"
        made = subprocess.run(
            [sys.executable, "-m", "deskprof", "report", str(bundle), "--format", "md",
             "--out", str(report)],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    capture = open_capture(bundle)
    counted = capture.manifest.integrity["queries"]
    assert counted["pg_stat_statements_calls"] > 0
    # the server also counts the capture's own statistics queries: the probe sees less
    assert 0.5 <= counted["ratio_probe_to_server"] <= 1.0, counted
    table = reconcile_statements(capture.queries, capture.db_statements)
    both = table[(table["probe_calls"] > 0) & (table["server_calls"] > 0)]
    assert len(both) >= 3, table.head(10).to_string()
    busiest = both.sort_values("probe_calls", ascending=False).iloc[0]
    # one statement, two counts: the window edges may cut a request or two
    assert abs(busiest["server_calls"] - busiest["probe_calls"]) <= 0.1 * busiest["probe_calls"] + 5
    # the server's execution time is part of the probe's (which adds the round trip)
    assert busiest["server_ms"] <= busiest["probe_ms"] * 1.1 + 5
    text = report.read_text()
    assert "pg_stat_statements counted" in text and "Database server" in text
