"""The EXPLAIN helper against real PostgreSQL and SQLite (small seeded databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from deskprof.analysis.explain import explain, hypothetical_costs
from deskprof.errors import DeskprofError

pytestmark = pytest.mark.integration

PG_LAZY = (
    "SELECT comments.id, comments.body FROM comments "
    "WHERE %(param_1)s::INTEGER = comments.ticket_id ORDER BY comments.id"
)
SQLITE_LAZY = "SELECT comments.id, comments.body FROM comments WHERE ? = comments.ticket_id"


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar_one()
    engine.dispose()
    return int(value)


def test_postgres_analyze_with_kept_values(seeded_postgres):
    plan = explain(_plain(seeded_postgres), PG_LAZY, '{"param_1": 17}', analyze=True)
    assert plan.backend == "postgresql" and plan.analyzed and not plan.generic
    assert plan.execution_ms is not None and plan.note == ""
    scan = plan.seq_scans[0]
    assert scan.table == "comments" and "ticket_id" in scan.filter
    # the session's database is shared: other tests may have added comments
    comments = _count(_plain(seeded_postgres), "SELECT count(*) FROM comments")
    assert scan.rows_scanned == plan.table_rows["comments"] == comments >= 10_000
    assert "ticket_id" in plan.table_columns["comments"]
    assert "Seq Scan on comments" in plan.text()


def test_postgres_generic_plan_when_parameters_were_redacted(seeded_postgres):
    plan = explain(_plain(seeded_postgres), PG_LAZY, '{"param_1": "int"}')
    assert plan.generic and not plan.analyzed and plan.execution_ms is None
    assert "--keep-parameters" in plan.note
    assert plan.seq_scans[0].rows_scanned is None and plan.seq_scans[0].rows_returned > 0


def test_postgres_refuses_writes_and_runs_read_only_with_a_timeout(seeded_postgres):
    url = _plain(seeded_postgres)
    before = _count(seeded_postgres, "SELECT count(*) FROM tags")
    with pytest.raises(DeskprofError, match="only SELECT"):
        explain(url, "DELETE FROM tags", None)
    # a SELECT with a side effect: volatile, so planned and never executed, even if asked
    setval = explain(url, "SELECT setval('tags_id_seq', 1)", None, analyze=True)
    assert not setval.analyzed and "setval" in setval.note
    with pytest.raises(DeskprofError, match="statement_timeout"):
        explain(url, "SELECT count(*) FROM generate_series(1, %(n)s)", '{"n": 300000000}',
                analyze=True, timeout_s=0.3)  # fmt: skip
    assert _count(seeded_postgres, "SELECT count(*) FROM tags") == before
    with pytest.raises(DeskprofError, match="cannot connect"):
        explain("postgresql://postgres@127.0.0.1:1/none", "SELECT 1", None, timeout_s=1)


def test_postgres_hypothetical_index_with_hypopg(seeded_postgres):
    engine = create_engine(seeded_postgres)
    with engine.begin() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")
        ).first():
            pytest.skip("HypoPG is not installed on this server (Debian: postgresql-NN-hypopg)")
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS hypopg"))
    engine.dispose()
    base, costs = hypothetical_costs(
        _plain(seeded_postgres), PG_LAZY, '{"param_1": "int"}', [("comments", ["ticket_id"])]
    )
    assert costs["CREATE INDEX ON comments (ticket_id)"] < base / 2
    assert (
        _count(
            seeded_postgres,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'comments' "
            "AND indexdef LIKE '%ticket_id%'",
        )
        == 0
    ), "hypothetical: nothing was built"


def test_sqlite_query_plan_with_and_without_values(seeded_sqlite):
    redacted = explain(seeded_sqlite, SQLITE_LAZY, '["int"]')
    assert redacted.backend == "sqlite" and redacted.generic and "redacted" in redacted.note
    assert [s.table for s in redacted.seq_scans] == ["comments"]
    comments = _count(seeded_sqlite, "SELECT count(*) FROM comments")
    assert redacted.table_rows["comments"] == comments >= 10_000
    kept = explain(seeded_sqlite, SQLITE_LAZY, "[17]")
    assert not kept.generic and kept.note == "" and "SCAN comments" in kept.text()
    by_key = explain(seeded_sqlite, "SELECT * FROM tickets WHERE tickets.id = ?", "[3]")
    assert by_key.seq_scans == []  # primary-key search, no full scan


def test_sqlite_refusals(seeded_sqlite, tmp_path):
    with pytest.raises(DeskprofError, match="only SELECT"):
        explain(seeded_sqlite, "UPDATE tickets SET title = ?", '["x"]')
    with pytest.raises(DeskprofError, match="no SQLite database"):
        explain(f"sqlite:///{tmp_path / 'missing.sqlite3'}", "SELECT 1", None)
    with pytest.raises(DeskprofError, match="rejected"):
        explain(seeded_sqlite, "SELECT * FROM no_such_table", None)
