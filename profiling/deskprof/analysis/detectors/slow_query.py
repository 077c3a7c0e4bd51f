"""Slow queries: fingerprints whose p95 duration is over a threshold.

The saving is an upper bound (all of the query's time per request), and the evidence says
so: what EXPLAIN would make of it is the missing-index detector's job.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.background import is_background
from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.sqltext import NS_PER_MS, endpoint_stat, endpoint_stats, top_endpoint


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
        findings.append(
            Finding(
                kind="slow_query",
                severity=severity_for(per_request_ms, median_ms, t),
                endpoint=endpoint,
                title=f"Slow query: p95 {p95_ms:.0f} ms over {len(rows)} calls",
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
