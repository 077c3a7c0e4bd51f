"""N+1: the same SELECT from one call site repeated inside one request.

Two ways in: Sentry's rule (at least 5 repeats taking 50 ms in one request), or the
pattern being systematic: the repeats happen in most of the endpoint's requests (a lazy
load of 9 rows on every page view costs 11 ms a request, and no single request crosses
50 ms). Once in, the finding covers every request where the query repeats, not only the
slow outliers, so its saving is the pattern's and its severity follows that time.

One loop, one finding: a list page that lazy-loads five relations per row runs five
patterns from five lines of one function, and they are one problem with one fix (eager
loading in the query that lists the rows), so they are reported together with each
relation, its call site and its counts in the evidence. The unit is the module within an
endpoint: the loops of one module behind one route (a reports module's report functions
behind ``/reports/{name}``) share the way they load rows, and so their fix.

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
    tables_in,
)


def detect_n_plus_one(
    queries: pd.DataFrame, requests: pd.DataFrame, *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """The same SELECT fingerprint from the same call site at least
    ``n_plus_one_min_repeats`` times in one request, where either one such request took
    ``n_plus_one_min_total_ms`` on it (Sentry's rule) or at least
    ``n_plus_one_systematic_share`` of the endpoint's requests (and
    ``n_plus_one_systematic_requests``) repeat it. One finding per endpoint and module:
    the patterns whose call sites are in one file (each relation a list page lazy-loads
    is one pattern; eager loading fixes them together), over every request that repeats
    any; saving = (repeats - 1) x mean duration per pattern, summed per request and
    averaged over those requests."""
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
    hits["loop_file"] = hits["call_site"].astype(str).str.rsplit(":", n=1).str[0]
    findings = []
    for (endpoint, _file), loop in hits.groupby(["endpoint", "loop_file"], sort=False):
        findings.append(_loop_finding(str(endpoint), loop, stats, t))
    return findings


def _pattern(group: pd.DataFrame) -> dict:
    """One repeated query of a loop: what it reads, from where, how often."""
    fp = str(group["fingerprint"].iloc[0])
    return {
        "fingerprint": fp,
        "fingerprint_id": str(group["fingerprint_id"].iloc[0]),
        "tables": tables_in(fp),
        "call_site": str(group["call_site"].iloc[0]),
        "requests_affected": len(group),
        "repeats_per_request_median": float(group["repeats"].median()),
        "repeats_per_request_max": int(group["repeats"].max()),
        "db_ms_per_request": round(float(group["total_ns"].mean()) / NS_PER_MS, 3),
        "mean_query_ms": round(
            float(group["total_ns"].sum() / group["repeats"].sum()) / NS_PER_MS, 3
        ),
        "found_by": "sentry" if group["sentry"].any() else "systematic",
        "call_function": str(group["call_function"].iloc[0]),
    }


def _loop_finding(endpoint: str, loop: pd.DataFrame, stats: pd.DataFrame, t: Thresholds) -> Finding:
    """One finding for the loops of one module in one endpoint's requests (each lazy
    relation they touch a pattern), its patterns costliest first."""
    groups = [group for _, group in loop.groupby(["fingerprint_id", "call_site"])]
    groups.sort(key=lambda group: -float(group["saving_ms"].sum()))  # costliest first
    patterns = [_pattern(group) for group in groups]
    functions = list(dict.fromkeys(loop["call_function"].astype(str)))
    affected = int(loop["request_id"].nunique())
    saving = float(loop["saving_ms"].sum()) / max(affected, 1)
    top = patterns[0]
    function = functions[0] if len(functions) == 1 else ", ".join(functions)
    median_ms = endpoint_stat(stats, endpoint, "median_ms")
    sites = sorted({short_site(p["call_site"]) for p in patterns}, key=_line_order)
    where = _site_range(sites)
    tables = list(dict.fromkeys(tb for p in patterns for tb in p["tables"][:1]))
    summary = {
        "endpoint": endpoint,
        **{k: top[k] for k in ("fingerprint", "fingerprint_id", "call_site")},
        "call_function": str(loop["call_function"].iloc[0]),
        "functions": functions,
        "queries_in_loop": len(patterns),
        "tables": tables,
        "requests_affected": affected,
        "requests_of_endpoint": int(endpoint_stat(stats, endpoint, "requests")),
        "requests_over_sentry_threshold": int(loop[loop["sentry"]]["request_id"].nunique()),
        "found_by": "sentry" if loop["sentry"].any() else "systematic",
        **{k: top[k] for k in ("repeats_per_request_median", "repeats_per_request_max")},
        "db_ms_per_request": round(
            float(loop.groupby("request_id")["total_ns"].sum().mean()) / NS_PER_MS, 3
        ),
        "endpoint_median_ms": round(median_ms, 3),
    }
    many = len(patterns) > 1
    title = (
        f"N+1: {len(patterns)} queries repeat per request in {function} ({where}): "
        f"{', '.join(tables)}"
        if many
        else f"N+1: the same query runs {top['repeats_per_request_median']:.0f}x per request "
        f"from {where} ({function})"
    )
    return Finding(
        kind="n_plus_one",
        severity=severity_for(saving, median_ms, t),
        endpoint=endpoint,
        title=title,
        evidence=[summary, *patterns] if many else [summary],
        estimated_saving_ms=saving,
        fix=(
            f"Load the rows {function} touches at {where} with the query that lists them: "
            f"eager-load the relationship{'s' if len(tables) > 1 else ''} to "
            f"{', '.join(tables)} (SQLAlchemy .options(selectinload(...)) per relationship, "
            "joinedload() for a many-to-one), or fetch each with one IN (...) query "
            "before the loop."
        ),
        affected_requests=affected,
    )


def _line_order(site: str) -> tuple[str, int]:
    path, _, line = site.rpartition(":")
    return (path, int(line)) if line.isdigit() else (site, 0)


def _site_range(sites: list[str]) -> str:
    """``app/views.py:112-116`` for sites in one file, else the sites joined."""
    paths = {site.rpartition(":")[0] for site in sites}
    if len(sites) > 1 and len(paths) == 1:
        first, last = sites[0].rpartition(":")[2], sites[-1].rpartition(":")[2]
        return f"{sites[0].rpartition(':')[0]}:{first}-{last}"
    return ", ".join(sites)


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
