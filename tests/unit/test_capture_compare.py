"""Capture to capture: findings matched by cause (not by title, whose numbers change),
fixed / new / remaining, and per-endpoint deltas side by side."""

from __future__ import annotations

import pandas as pd

from deskprof.analysis.capture_compare import cause_key, compare_findings, endpoint_deltas
from deskprof.analysis.finding import Finding


def _f(kind: str, endpoint: str, title: str, **subject) -> Finding:
    return Finding(kind, "high", endpoint, title, [subject], 5.0, "fix", 10)


def test_findings_are_matched_by_cause_not_title() -> None:
    before = [
        _f("n_plus_one", "GET /tickets", "N+1: 5 queries ... 183 ms", call_function="list"),
        _f("missing_index", "GET /tickets", "Missing index", suggested_index="CREATE INDEX x"),
        _f("slow_query", "GET /r", "Slow query: p95 120 ms", fingerprint="select 1"),
    ]
    after = [
        _f("slow_query", "GET /r", "Slow query: p95 140 ms", fingerprint="select 1"),
        _f("cpu_hotspot", "GET /r", "CPU hot spot", function="render (a.py:3)"),
    ]
    result = compare_findings(before, after)
    assert [f.kind for f in result.fixed] == ["n_plus_one", "missing_index"]
    assert [f.kind for f in result.new] == ["cpu_hotspot"]
    assert [(a.title, b.title) for a, b in result.remaining] == [
        ("Slow query: p95 120 ms", "Slow query: p95 140 ms")
    ]
    assert result.summary() == "2 fixed, 1 new, 1 remaining"
    table = result.findings_table()
    assert list(table["status"]) == ["fixed", "fixed", "remaining", "new"]
    assert cause_key(before[0].to_dict()) == ("n_plus_one", "GET /tickets", "list")


def test_endpoint_deltas_put_both_captures_side_by_side() -> None:
    row = {"requests": 10, "p50_ms": 100.0, "p95_ms": 200.0, "queries_per_request": 20.0,
           "db_ms_per_request": 50.0}  # fmt: skip
    before = pd.DataFrame([{"endpoint": "GET /t", **row}, {"endpoint": "GET /old", **row}])
    after = pd.DataFrame([{"endpoint": "GET /t", **row, "p50_ms": 25.0, "p95_ms": 50.0}])
    deltas = endpoint_deltas(before, after).set_index("endpoint")
    assert deltas.loc["GET /t", "p50_change"] == -0.75
    assert deltas.loc["GET /t", "p95_ms_after"] == 50.0
    assert pd.isna(deltas.loc["GET /old", "p50_ms_after"])
