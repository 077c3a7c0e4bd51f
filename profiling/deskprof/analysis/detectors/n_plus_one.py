"""N+1: the same SELECT from one call site repeated inside one request.

Two ways in: Sentry's rule (at least 5 repeats taking 50 ms in one request), or the
pattern being systematic: the repeats happen in most of the endpoint's requests (a lazy
load of 9 rows on every page view costs 11 ms a request, and no single request crosses
50 ms). Once in, the finding covers every request where the query repeats, not only the
slow outliers, so its saving is the pattern's and its severity follows that time.

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
    ``n_plus_one_min_repeats`` times in one request, where either one such request took
    ``n_plus_one_min_total_ms`` on it (Sentry's rule) or at least
    ``n_plus_one_systematic_share`` of the endpoint's requests (and
    ``n_plus_one_systematic_requests``) repeat it. One finding per endpoint, fingerprint
    and call site, over every request that repeats it; saving = (repeats - 1) x mean
    duration, averaged over those requests."""
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
    stats = endpoint_stats(requests)
    hits = _passing(hits, stats, t)
    if hits.empty:
        return []
    hits["saving_ms"] = (hits["repeats"] - 1) * (hits["total_ns"] / hits["repeats"]) / NS_PER_MS
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
            "requests_over_sentry_threshold": int(group["sentry"].sum()),
            "found_by": "sentry" if group["sentry"].any() else "systematic",
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


def _passing(hits: pd.DataFrame, stats: pd.DataFrame, t: Thresholds) -> pd.DataFrame:
    """The per-request repeats of the (endpoint, fingerprint, call site) patterns that are
    N+1: one request over Sentry's threshold, or repeats in most of the endpoint's
    requests."""
    pattern = ["endpoint", "fingerprint_id", "call_site"]
    hits = hits.assign(sentry=hits["total_ns"] >= t.n_plus_one_min_total_ms * NS_PER_MS)
    grouped = hits.groupby(pattern, sort=False)
    any_sentry = grouped["sentry"].transform("any")
    affected = grouped["request_id"].transform("size")
    counts = stats["requests"] if "requests" in stats else pd.Series(dtype=float)
    of_endpoint = hits["endpoint"].map(counts).fillna(0.0)
    systematic = (affected >= t.n_plus_one_systematic_requests) & (
        affected >= t.n_plus_one_systematic_share * of_endpoint.clip(lower=1)
    )
    return hits[any_sentry | systematic].reset_index(drop=True)


def _repeated_in_request(reads: pd.DataFrame, keys: list[str], t: Thresholds) -> pd.DataFrame:
    """Per (endpoint, fingerprint, call site, request) group repeated at least
    ``n_plus_one_min_repeats`` times: the keys, ``repeats``, ``total_ns``, the first row's
    ``call_function`` and its position in ``reads`` (``row``), groups in order of first
    appearance.

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
    passed = np.flatnonzero(repeats >= t.n_plus_one_min_repeats)
    first_row = np.full(n_groups, -1, dtype=np.int64)
    first_row[group[::-1]] = np.arange(len(group) - 1, -1, -1)
    rows = first_row[passed]
    hits = reads[[*keys, "call_function"]].iloc[rows].reset_index(drop=True)
    hits.insert(len(keys), "repeats", repeats[passed])
    hits.insert(len(keys) + 1, "total_ns", total_ns[passed])
    hits["row"] = rows
    return hits
