"""Slow queries: fingerprints whose p95 duration is over a threshold.

The saving is an upper bound (all of the query's time per request), and the evidence says
so: what EXPLAIN would make of it is the missing-index detector's job.

Warm-up is not a slow query: a real server's first requests run while it imports,
builds caches and starts its workers (MLflow's took 6 to 17 s), so a fingerprint whose
slow calls all fall in the first ``WARMUP_SHARE`` of the queries' span (at least
``WARMUP_MIN_S``) and that is fast later is reported at low severity with its warm-up
named, not ranked with the real ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.background import is_background
from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.sqltext import NS_PER_MS, endpoint_stat, endpoint_stats, top_endpoint

WARMUP_SHARE = 0.2
WARMUP_MIN_S = 5.0


def detect_slow_queries(
    queries: pd.DataFrame, requests: pd.DataFrame, *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Fingerprints whose p95 duration is at least ``slow_query_p95_ms`` over at least
    ``slow_query_min_calls`` calls. Saving is an upper bound: all of its time per request
    (what making it negligible would give), labelled as such."""
    t = thresholds or Thresholds()
    ok = queries["error"].fillna("") == "" if "error" in queries else True
    ok_rows = np.flatnonzero(np.asarray(ok, dtype=bool) & np.ones(len(queries), dtype=bool))
    fingerprints = queries["fingerprint"]
    columns = ["fingerprint_id", "duration_ns", "endpoint", "request_id", "call_site"]
    columns += ["start_ns"] if "start_ns" in queries else []
    queries = queries[columns].iloc[ok_rows]
    if queries.empty:
        return []
    by_fingerprint = queries.groupby("fingerprint_id")
    grouped = by_fingerprint["duration_ns"]
    p95 = grouped.quantile(0.95) / NS_PER_MS
    calls = grouped.size()
    slow = p95[(p95 >= t.slow_query_p95_ms) & (calls >= t.slow_query_min_calls)]
    stats = endpoint_stats(requests)
    positions = by_fingerprint.indices if len(slow) else {}
    findings = []
    for fp_id, p95_ms in slow.items():
        rows = queries.iloc[positions[fp_id]]
        endpoint = top_endpoint(rows)
        at_endpoint = rows[rows["endpoint"] == endpoint] if endpoint else rows
        # outside requests each statement is a run of its own (no request to share it)
        per_request = bool(endpoint) and not is_background(endpoint)
        affected = int(at_endpoint["request_id"].nunique()) if per_request else len(at_endpoint)
        per_request_ms = float(at_endpoint["duration_ns"].sum()) / max(affected, 1) / NS_PER_MS
        median_ms = endpoint_stat(stats, endpoint, "median_ms")
        endpoints = (
            rows[rows["endpoint"] != ""].groupby("endpoint")["duration_ns"].sum() / NS_PER_MS
        ).sort_values(ascending=False)
        evidence = {
            "fingerprint": str(fingerprints.iloc[ok_rows[positions[fp_id][0]]]),
            "fingerprint_id": fp_id,
            "calls": len(rows),
            "p50_ms": round(float(rows["duration_ns"].median()) / NS_PER_MS, 3),
            "p95_ms": round(float(p95_ms), 3),
            "max_ms": round(float(rows["duration_ns"].max()) / NS_PER_MS, 3),
            "threshold_ms": t.slow_query_p95_ms,
            "db_ms_per_request": round(per_request_ms, 3),
            "endpoints_ms": {k: round(float(v), 3) for k, v in endpoints.head(5).items()},
            "call_sites": sorted(set(rows["call_site"].astype(str)))[:5],
            "saving_basis": "upper bound: all of this query's time per request",
        }
        warmup_s = _warmup_only(rows, queries, t)
        severity = "low" if warmup_s else severity_for(per_request_ms, median_ms, t)
        title = f"Slow query: p95 {p95_ms:.0f} ms over {len(rows)} calls"
        if warmup_s:
            title += f", slow only in the first {warmup_s:.0f} s (warm-up)"
            evidence["warmup_only_s"] = round(warmup_s, 1)
        findings.append(
            Finding(
                kind="slow_query",
                severity=severity,
                endpoint=endpoint,
                title=title,
                evidence=[evidence],
                estimated_saving_ms=per_request_ms,
                fix=(
                    "EXPLAIN it (deskprof findings --explain-database URL does): add the index "
                    "its filter or sort needs, select fewer columns or rows, or cache it."
                ),
                affected_requests=affected,
            )
        )
    return findings


def _warmup_only(rows: pd.DataFrame, queries: pd.DataFrame, t: Thresholds) -> float:
    """The warm-up span in seconds when every slow call of ``rows`` started in it and a
    later call ran (so it is fast after warm-up); 0 otherwise."""
    if "start_ns" not in rows or queries.empty:
        return 0.0
    first, last = int(queries["start_ns"].min()), int(queries["start_ns"].max())
    warmup_ns = max(WARMUP_MIN_S * 1e9, WARMUP_SHARE * (last - first))
    slow = rows["duration_ns"] >= t.slow_query_p95_ms * NS_PER_MS
    late = rows["start_ns"] > first + warmup_ns
    if not slow.any() or not late.any() or (slow & late).any():
        return 0.0
    return warmup_ns / 1e9
