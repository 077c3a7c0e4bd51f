"""N+1: the same SELECT from one call site repeated inside one request (Sentry's rule).

A plain function of the contract's ``queries`` and ``requests``, so a test can hand it ten
rows built by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.sqltext import (
    NS_PER_MS,
    endpoint_stat,
    endpoint_stats,
    read_rows,
    short_site,
)


def detect_n_plus_one(
    queries: pd.DataFrame, requests: pd.DataFrame, *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """The same SELECT fingerprint from the same call site at least
    ``n_plus_one_min_repeats`` times in one request, taking at least
    ``n_plus_one_min_total_ms`` there (Sentry's rule). One finding per endpoint, fingerprint
    and call site; saving = (repeats - 1) x mean duration, averaged over affected requests."""
    t = thresholds or Thresholds()
    keys = ["endpoint", "fingerprint_id", "call_site", "request_id"]
    rows = read_rows(queries, in_requests=True)
    if not len(rows):
        return []
    reads = queries[[*keys, "duration_ns", "call_function"]].iloc[rows]
    hits = _repeated_in_request(reads, keys, t)
    hits.insert(len(keys) + 2, "fingerprint", queries["fingerprint"].iloc[rows[hits["row"]]].array)
    hits = hits.drop(columns="row")
    if hits.empty:
        return []
    hits["saving_ms"] = (hits["repeats"] - 1) * (hits["total_ns"] / hits["repeats"]) / NS_PER_MS
    stats = endpoint_stats(requests)
    findings = []
    for (endpoint, fp_id, site), group in hits.groupby(
        ["endpoint", "fingerprint_id", "call_site"], sort=False
    ):
        saving = float(group["saving_ms"].mean())
        median_ms = endpoint_stat(stats, endpoint, "median_ms")
        repeats_median = float(group["repeats"].median())
        function = str(group["call_function"].iloc[0])
        evidence = {
            "endpoint": endpoint,
            "fingerprint": str(group["fingerprint"].iloc[0]),
            "fingerprint_id": fp_id,
            "call_site": site,
            "call_function": function,
            "requests_affected": len(group),
            "requests_of_endpoint": int(endpoint_stat(stats, endpoint, "requests")),
            "repeats_per_request_median": repeats_median,
            "repeats_per_request_max": int(group["repeats"].max()),
            "db_ms_per_request": round(float(group["total_ns"].mean()) / NS_PER_MS, 3),
            "mean_query_ms": round(
                float(group["total_ns"].sum() / group["repeats"].sum()) / NS_PER_MS, 3
            ),
            "endpoint_median_ms": round(median_ms, 3),
        }
        findings.append(
            Finding(
                kind="n_plus_one",
                severity=severity_for(saving, median_ms, t),
                endpoint=endpoint,
                title=(
                    f"N+1: the same query runs {repeats_median:.0f}x per request from "
                    f"{short_site(site)} ({function})"
                ),
                evidence=[evidence],
                estimated_saving_ms=saving,
                fix=(
                    f"Load these rows in one query: eager-load what {function} touches at "
                    f"{short_site(site)} (SQLAlchemy selectinload()/joinedload()), or fetch "
                    "them with one IN (...) query before the loop."
                ),
                affected_requests=len(group),
            )
        )
    return findings


def _repeated_in_request(reads: pd.DataFrame, keys: list[str], t: Thresholds) -> pd.DataFrame:
    """Per (endpoint, fingerprint, call site, request) group over the N+1 thresholds: the
    keys, ``repeats``, ``total_ns``, the first row's ``call_function`` and its position in
    ``reads`` (``row``), groups in order of first appearance.

    Counts and sums come from the integer group numbers (``np.bincount``), and the string
    columns are read only for the groups that pass: a million reads make a few hundred
    thousand groups, of which a handful are N+1."""
    group = reads.groupby(keys, sort=False).ngroup().to_numpy()
    n_groups = int(group.max()) + 1
    repeats = np.bincount(group, minlength=n_groups).astype(np.int64)
    # float64 sums of integer nanoseconds are exact below 2**53 ns (104 days per group)
    total_ns = np.bincount(
        group, weights=reads["duration_ns"].to_numpy(dtype=np.float64), minlength=n_groups
    ).astype(np.int64)
    passed = np.flatnonzero(
        (repeats >= t.n_plus_one_min_repeats) & (total_ns >= t.n_plus_one_min_total_ms * NS_PER_MS)
    )
    first_row = np.full(n_groups, -1, dtype=np.int64)
    first_row[group[::-1]] = np.arange(len(group) - 1, -1, -1)
    rows = first_row[passed]
    hits = reads[[*keys, "call_function"]].iloc[rows].reset_index(drop=True)
    hits.insert(len(keys), "repeats", repeats[passed])
    hits.insert(len(keys) + 1, "total_ns", total_ns[passed])
    hits["row"] = rows
    return hits
