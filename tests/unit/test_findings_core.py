"""Finding, ranking, JSON output, the EXPLAIN helper's pure parts, and the missing-index
decision with EXPLAIN and HypoPG replaced by fixed plans."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from deskprof.analysis import explain as explain_module
from deskprof.analysis.detectors import missing_index as detectors_index
from deskprof.analysis.explain import Plan, SeqScan, check_select, rewrite_placeholders
from deskprof.analysis.finding import (
    Finding,
    Thresholds,
    at_least,
    findings_from_json,
    findings_to_json,
    json_safe,
    rank,
    severity_for,
)
from deskprof.analysis.sqltext import filter_columns
from deskprof.errors import DeskprofError
from tests.unit.test_findings_sql import per_request, queries, requests


def finding(kind: str, saving: float, affected: int, severity: str = "low") -> Finding:
    return Finding(kind, severity, "GET /x", "t", [{"a": 1}], saving, "fix", affected)


def test_rank_by_total_time_saved_then_severity():
    small_often = finding("n_plus_one", 5.0, 100)  # 500 ms in all
    big_rare = finding("slow_query", 300.0, 1)  # 300 ms
    tie_high = finding("uncached_read", 300.0, 1, "high")
    assert rank([big_rare, small_often, tie_high]) == [small_often, tie_high, big_rare]


def test_to_dict_has_the_stable_keys_and_json_round_trips():
    f = Finding(
        "n_plus_one",
        "high",
        "GET /x",
        "t",
        [{"n": np.int64(3), "r": float("nan")}],
        1.23456,
        "fix",
        4,
    )
    d = f.to_dict()
    assert list(d)[:7] == [
        "kind",
        "severity",
        "endpoint",
        "title",
        "evidence",
        "estimated_saving_ms",
        "fix",
    ]
    assert d["evidence"] == [{"n": 3, "r": None}] and d["estimated_saving_ms"] == 1.235
    text = findings_to_json([f], skipped=[{"detector": "cpu_hotspot", "reason": "no samples"}])
    body = json.loads(text)
    assert body["skipped"][0]["detector"] == "cpu_hotspot"
    assert findings_from_json(text)[0].affected_requests == 4


def test_json_safe_and_severity():
    assert json_safe({"a": (np.float64(1.5), math.inf, pd.Timestamp(0))}) == {
        "a": [1.5, None, "1970-01-01 00:00:00"]
    }
    t = Thresholds()
    assert severity_for(30, 100, t) == "high"
    assert severity_for(10, 100, t) == "medium"
    assert severity_for(1, 100, t) == "low"
    assert (
        at_least([finding("a", 1, 1, "low"), finding("b", 1, 1, "high")], "medium")[0].kind == "b"
    )
    with pytest.raises(DeskprofError, match="unknown severity"):
        at_least([], "urgent")


def test_check_select_refuses_writes_and_several_statements():
    check_select("WITH x AS (SELECT 1) SELECT * FROM x")
    for bad in (
        "UPDATE tickets SET status = 'x'",
        "DELETE FROM tickets",
        "SELECT 1; DROP TABLE tickets",
        "SELECT * INTO copy FROM tickets",
        "SELECT * FROM tickets FOR UPDATE",
        "",
    ):
        with pytest.raises(DeskprofError):
            check_select(bad)


def test_rewrite_placeholders_between_driver_styles():
    pg = "SELECT a FROM t WHERE b = %(b_1)s AND c LIKE '50%%' AND d = %(b_1)s LIMIT %(param_1)s"
    assert rewrite_placeholders(pg, "dollar") == (
        "SELECT a FROM t WHERE b = $1 AND c LIKE '50%' AND d = $1 LIMIT $2",
        ["b_1", "param_1"],
    )
    assert rewrite_placeholders(pg, "format")[1] == ["b_1", "b_1", "param_1"]
    assert rewrite_placeholders("SELECT ? , '?' , ?", "dollar") == ("SELECT $1 , '?' , $2", [0, 1])
    assert rewrite_placeholders("SELECT x::int FROM t WHERE a = :a", "qmark") == (
        "SELECT x::int FROM t WHERE a = ?",
        ["a"],
    )


COMMENTS = "SELECT comments.id FROM comments WHERE ? = comments.ticket_id ORDER BY comments.id"


def _plan(indexes: list[list[str]] | None = None) -> Plan:
    return Plan(
        backend="postgresql",
        statement=COMMENTS,
        plan={"Node Type": "Seq Scan", "Relation Name": "comments", "Total Cost": 253.0},
        analyzed=False,
        generic=True,
        seq_scans=[SeqScan("comments", "($1 = ticket_id)", rows_returned=5.0)],
        table_rows={"comments": 10000.0},
        table_columns={"comments": ["id", "ticket_id", "author_id", "body", "created_at"]},
        table_indexes={"comments": indexes or [["id"]]},
    )


@pytest.fixture
def lazy_comments() -> tuple[pd.DataFrame, pd.DataFrame]:
    return queries(per_request(6, [(COMMENTS, 3.0)] * 5)), requests([f"r{i}" for i in range(6)])


def test_missing_index_suggests_what_hypopg_verifies(monkeypatch, lazy_comments):
    monkeypatch.setattr(explain_module, "explain", lambda *a, **k: _plan())
    costs = (253.0, {"CREATE INDEX ON comments (ticket_id)": 8.0})
    monkeypatch.setattr(detectors_index, "hypothetical_costs", lambda *a, **k: costs)
    found = detectors_index.detect_missing_indexes(*lazy_comments, database_url="postgresql://x")
    assert [(f.kind, f.endpoint) for f in found] == [("missing_index", "GET /tickets")]
    assert found[0].fix.startswith("CREATE INDEX ON comments (ticket_id) (HypoPG")
    assert found[0].evidence[0]["selectivity"] == 0.0005
    assert found[0].estimated_saving_ms == pytest.approx(15.0 * (1 - 8 / 253))


def test_missing_index_dexter_rule_and_existing_index(monkeypatch, lazy_comments):
    monkeypatch.setattr(explain_module, "explain", lambda *a, **k: _plan())
    weak = (253.0, {"CREATE INDEX ON comments (ticket_id)": 200.0})
    monkeypatch.setattr(detectors_index, "hypothetical_costs", lambda *a, **k: weak)
    assert (
        detectors_index.detect_missing_indexes(*lazy_comments, database_url="postgresql://x") == []
    )
    monkeypatch.setattr(explain_module, "explain", lambda *a, **k: _plan([["ticket_id"]]))
    monkeypatch.setattr(detectors_index, "hypothetical_costs", lambda *a, **k: None)
    assert (
        detectors_index.detect_missing_indexes(*lazy_comments, database_url="postgresql://x") == []
    )


def test_missing_index_unverified_without_hypopg_and_notes_explain_errors(
    monkeypatch, lazy_comments
):
    monkeypatch.setattr(explain_module, "explain", lambda *a, **k: _plan())
    monkeypatch.setattr(detectors_index, "hypothetical_costs", lambda *a, **k: None)
    found = detectors_index.detect_missing_indexes(*lazy_comments, database_url="postgresql://x")
    assert "not verified" in found[0].fix and found[0].evidence[0]["plan_kind"] == "generic"

    def refuse(*_a, **_k):
        raise DeskprofError("cannot connect to postgresql://x to EXPLAIN: refused")

    monkeypatch.setattr(explain_module, "explain", refuse)
    notes: list[dict] = []
    assert (
        detectors_index.detect_missing_indexes(
            *lazy_comments, database_url="postgresql://x", notes=notes
        )
        == []
    )
    assert len(notes) == 1 and "cannot connect" in notes[0]["reason"]


def test_index_columns_leave_out_comparisons_an_index_cannot_narrow() -> None:
    """FlaskBB's ``topic_id = ? AND hidden != ?`` got ``(topic_id, hidden)``: a ``!=``
    column adds nothing to the index."""
    columns = filter_columns
    assert columns("posts.topic_id = ? and posts.hidden != ?", "posts", ["topic_id", "hidden"]) == (
        ["topic_id"],
        [],
    )
    assert columns("t.a = ? and t.b >= ?", "t", ["a", "b"]) == (["a"], ["b"])
