"""Weak and wrongly chosen indexes on SQLite, judged on a copy of the database: a lookup by
a two-valued status beside a selective range reads half the table; with values kept the
fixes are timed (ANALYZE when it halves the time, else a composite index); with values
redacted the composite index is proposed only when its key reads far fewer rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from deskprof.analysis.detectors.weak_index import detect_weak_indexes
from tests.unit.test_findings_sql import queries, requests

pytestmark = pytest.mark.integration

MS = 1_000_000
RECENT = (
    "SELECT events.id FROM events WHERE events.status = ? AND events.created > ? "
    "ORDER BY events.created DESC LIMIT ?"
)


def _database(path: Path, *, statuses: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, status TEXT, created INTEGER)")
    conn.executemany(
        "INSERT INTO events (status, created) VALUES (?, ?)",
        [(f"s{n % statuses}", n) for n in range(40_000)],
    )
    conn.execute("CREATE INDEX ix_events_created ON events (created)")
    conn.execute("CREATE INDEX ix_events_status ON events (status)")
    conn.commit()
    conn.close()
    return path


def _detect(database: Path, parameters: list, kept: bool) -> tuple[list, list]:
    rows = [
        {
            "request_id": f"r{i}",
            "start_ns": i * 1000 * MS,
            "duration_ns": 5 * MS,
            "statement": RECENT,
            "parameters": json.dumps(parameters if kept else ["str", "int", "int"]),
        }
        for i in range(6)
    ]
    notes: list = []
    found = detect_weak_indexes(
        queries(rows),
        requests([f"r{i}" for i in range(6)]),
        database_url=f"sqlite:///{database}",
        parameters_kept=kept,
        notes=notes,
    )
    return found, notes


def test_a_two_valued_status_index_is_weak_and_the_timed_fix_is_measured(tmp_path: Path) -> None:
    database = _database(tmp_path / "events.sqlite3", statuses=2)
    (finding,) = _detect(database, ["s0", 38_000, 20], kept=True)[0]
    evidence = finding.evidence[0]
    assert finding.kind == "weak_index" and evidence["index"] == "ix_events_status"
    assert evidence["rows_per_key"] == 20_000
    assert evidence["after_ms"] < evidence["before_ms"] / 2
    assert "verified on a copy" in finding.fix and " ms -> " in finding.fix
    # ANALYZE alone moves this plan to the range index (the wrong index was chosen) or
    # the composite index is proposed: either way the fix is one the copy measured
    assert evidence["fix_kind"] in ("analyze", "index")
    conn = sqlite3.connect(database)  # the original is untouched: no index, no statistics
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"events", "ix_events_created", "ix_events_status"}


def test_redacted_values_propose_the_composite_index_by_rows_per_lookup(tmp_path: Path) -> None:
    database = _database(tmp_path / "events.sqlite3", statuses=2)
    (finding,) = _detect(database, [], kept=False)[0]
    evidence = finding.evidence[0]
    assert evidence["fix_kind"] == "index" and evidence["before_ms"] is None
    assert finding.fix.startswith("CREATE INDEX ON events (status, created)")
    assert evidence["rows_per_key_after"] == 1.0


def test_a_selective_status_index_is_not_weak(tmp_path: Path) -> None:
    database = _database(tmp_path / "events.sqlite3", statuses=400)  # 100 rows a status
    found, notes = _detect(database, ["s3", 38_000, 20], kept=True)
    assert found == [] and notes == []
