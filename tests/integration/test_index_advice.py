"""Index advice that fits, on SQLite: each candidate is built on a copy of the database and
the statement planned (and, with values kept, timed) again; an expression sort gets an
expression index; a candidate the planner would not use is not suggested."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from deskprof.analysis.detectors.missing_index import detect_missing_indexes
from tests.unit.test_findings_sql import queries, requests

pytestmark = pytest.mark.integration

MS = 1_000_000


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("advice") / "runs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, experiment_id INTEGER, name TEXT, "
        "end_time INTEGER, start_time INTEGER)"
    )
    rng = random.Random(7)
    conn.executemany(
        "INSERT INTO runs (experiment_id, name, end_time, start_time) VALUES (?, ?, ?, ?)",
        [
            (rng.randrange(400), f"Run-{i}", rng.choice([None, rng.randrange(10**9)]), i)
            for i in range(60_000)
        ],
    )
    conn.commit()
    conn.close()
    return path


def _detect(database: Path, statement: str, parameters: list, kept: bool) -> list:
    rows = [
        {
            "request_id": f"r{i}",
            "start_ns": i * 1000 * MS,
            "duration_ns": 20 * MS,
            "statement": statement,
            "parameters": json.dumps(parameters if kept else ["int"] * len(parameters)),
        }
        for i in range(6)
    ]
    notes: list = []
    found = detect_missing_indexes(
        queries(rows),
        requests([f"r{i}" for i in range(6)]),
        database_url=f"sqlite:///{database}",
        parameters_kept=kept,
        notes=notes,
    )
    assert not [n for n in notes if "copy" in n.get("reason", "")], notes
    return found


def test_a_filter_index_is_verified_and_timed_on_a_copy(database: Path) -> None:
    statement = "SELECT runs.id, runs.name FROM runs WHERE runs.experiment_id = ?"
    (finding,) = _detect(database, statement, [17], kept=True)
    evidence = finding.evidence[0]
    assert evidence["suggested_index"] == "CREATE INDEX ON runs (experiment_id)"
    assert evidence["verified_with"] == "sqlite copy"
    assert evidence["cost_after"] < evidence["cost_before"] / 2  # milliseconds, measured
    assert "verified on a copy" in finding.fix and " ms -> " in finding.fix
    assert any("USING INDEX" in line for line in evidence["plan_with_index"])
    # the original database is untouched
    conn = sqlite3.connect(database)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'index'").fetchone() == (
        0,
    )
    redacted = _detect(database, statement, [17], kept=False)
    assert redacted[0].fix.endswith(
        "(verified on a copy: the plan uses it; not timed, values were redacted)"
    )


def test_an_expression_sort_gets_an_expression_index(database: Path) -> None:
    statement = (
        "SELECT runs.id FROM runs ORDER BY coalesce(runs.end_time, runs.start_time) DESC LIMIT ?"
    )
    (finding,) = _detect(database, statement, [10], kept=True)
    ddl = finding.evidence[0]["suggested_index"]
    assert ddl == "CREATE INDEX ON runs ((coalesce(end_time, start_time)))", ddl


def test_advice_the_planner_would_not_use_is_not_given(database: Path) -> None:
    # a function of the column: an index on (name) leaves this plan a full scan
    statement = "SELECT runs.id FROM runs WHERE lower(runs.name) = ?"
    assert _detect(database, statement, ["run-5"], kept=True) == []
