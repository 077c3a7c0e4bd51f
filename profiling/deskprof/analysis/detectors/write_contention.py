"""Write contention: a write by key that is slow because it waits for other writers.

A forum that counts views with ``UPDATE topics SET views = views + 1 WHERE id = ?`` on
every page view makes every view of a popular topic write the same row: each writer waits
for the one before it to commit (a row lock on PostgreSQL, the database lock on SQLite).
The statement is slow, but its plan is a primary-key lookup, so "add an index" (what a
slow-query rule says) does not fit. The evidence is in the capture's own timing: a write
that overlapped another writer's open transaction on the same table waited, and one that
ran alone did not.

A writer's transaction is taken to last from its write until its connection went back to
the pool (the ``connections`` table's ``checkin``, which ends or rolls back the
transaction), else until its request ended, else until the statement returned.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.sqltext import (
    NS_PER_MS,
    endpoint_stat,
    endpoint_stats,
    tables_in,
    top_endpoint,
    values_kept,
)

# ``WHERE <key> = ?`` (one or several equalities, nothing else): a write of known rows
_KEYED_WRITE = re.compile(
    r"^\s*(?:update|delete)\b.*\bwhere\s+(?:[\w.\"]+\s*=\s*\?(?:\s+and\s+|\s*$))+", re.I | re.S
)
MIN_LONE = 5  # calls that ran alone needed to compare against those that overlapped


def keyed_write(fingerprint: str) -> bool:
    """An UPDATE or DELETE whose WHERE is only ``column = ?`` equalities (rows by key)."""
    return bool(_KEYED_WRITE.match(fingerprint))


def _transaction_ends(
    writes: pd.DataFrame, requests: pd.DataFrame, connections: pd.DataFrame
) -> np.ndarray:
    """Per write, when its transaction ended at the latest: the next ``checkin`` of its
    connection, else its request's end, else the statement's own end."""
    ends = (writes["start_ns"] + writes["duration_ns"]).to_numpy(dtype=np.int64).copy()
    if not requests.empty and {"request_id", "end_ns"} <= set(requests):
        request_end = requests.set_index("request_id")["end_ns"]
        request_end = request_end[~request_end.index.duplicated()]
        mapped = writes["request_id"].map(request_end).to_numpy(dtype=float)
        known = ~np.isnan(mapped)
        ends[known] = np.maximum(ends[known], mapped[known].astype(np.int64))
    if connections.empty or "connection_id" not in writes:
        return ends
    checkins = connections[connections["event"] == "checkin"]
    by_connection = {
        key: np.sort(group["ts_ns"].to_numpy(dtype=np.int64))
        for key, group in checkins.groupby(["pid", "connection_id"])
    }
    starts = writes["start_ns"].to_numpy(dtype=np.int64)
    returns = starts + writes["duration_ns"].to_numpy(dtype=np.int64)
    for key, rows in writes.groupby(["pid", "connection_id"]).indices.items():
        times = by_connection.get(key)
        if times is None:
            continue
        at = np.searchsorted(times, starts[rows])
        found = at < len(times)
        rows, at = rows[found], at[found]
        ends[rows] = np.maximum(times[at], returns[rows])
    return ends


def _overlapped(writes: pd.DataFrame, holds_until: np.ndarray) -> np.ndarray:
    """Per write, whether another writer to one of its tables held an open transaction
    while it ran: that writer's write started before this one returned and its
    transaction ended after this one started, on another connection (one's own earlier
    write does not block it).

    Per table, in start order, the writers that started before a write returned are a
    prefix; the two latest-holding transactions of that prefix on different connections
    answer for every write of it, so each table is one pass (not all pairs)."""
    starts = writes["start_ns"].to_numpy(dtype=np.int64)
    returns = starts + writes["duration_ns"].to_numpy(dtype=np.int64)
    if {"pid", "connection_id"} <= set(writes):
        connections = writes.groupby(["pid", "connection_id"], sort=False).ngroup().to_numpy()
    else:  # unknown: only the write itself is excluded
        connections = np.arange(len(writes))
    by_table: dict[str, list[int]] = {}
    for i, tables in enumerate(writes["tables"]):
        for table in tables:
            by_table.setdefault(table, []).append(i)
    out = np.zeros(len(writes), dtype=bool)
    for members in by_table.values():
        rows = np.asarray(members)[np.argsort(starts[members], kind="stable")]
        best = np.empty((len(rows), 2), dtype=np.int64)  # latest hold, its connection
        second = np.full(len(rows), np.iinfo(np.int64).min)  # latest on another connection
        top, top_conn, other = np.iinfo(np.int64).min, -1, np.iinfo(np.int64).min
        for k, j in enumerate(rows):
            hold, conn = int(holds_until[j]), int(connections[j])
            if hold > top:
                if conn != top_conn:
                    other = top
                top, top_conn = hold, conn
            elif conn != top_conn:
                other = max(other, hold)
            best[k], second[k] = (top, top_conn), other
        prefix = np.searchsorted(starts[rows], returns[rows], side="left")
        for k, j in enumerate(rows):
            last = prefix[k] - 1
            if last < 0:
                continue
            hold, conn = best[last]
            holder = hold if conn != connections[j] else second[last]
            out[j] |= bool(holder > starts[j])
    return out


def detect_write_contention(
    queries: pd.DataFrame,
    requests: pd.DataFrame,
    connections: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
    parameters_kept: bool | None = None,
) -> list[Finding]:
    """Keyed writes (:func:`keyed_write`) with at least ``slow_query_min_calls`` calls
    whose time is waiting for other writers (at least ``contention_min_wait_ms`` over
    the capture, overlapped calls at least ``contention_min_overlapped_ms`` in median;
    a forum's view counter waits 8 ms a view, far under a slow-query threshold):
    the calls that overlapped another writer's open transaction are at least
    ``contention_min_ratio`` times slower in median than those that ran alone
    (Mann-Whitney, p below ``contention_max_p``), or, with fewer than ``MIN_LONE`` lone
    calls, the median is that many times the cost alone (the lone calls' median or the
    fastest tenth, whichever is less) and most slow calls overlapped. Saving: the wait,
    each overlapped call's time over the cost alone."""
    t = thresholds or Thresholds()
    if queries.empty:
        return []
    ok = queries["operation"].isin(("UPDATE", "DELETE", "INSERT")).to_numpy(dtype=bool).copy()
    if "error" in queries:
        ok &= (queries["error"].fillna("") == "").to_numpy(dtype=bool)
    columns = ["fingerprint_id", "fingerprint", "start_ns", "duration_ns", "request_id"]
    columns += ["endpoint", "pid", "connection_id", "parameters", "call_site"]
    writes = queries[[c for c in columns if c in queries]].iloc[np.flatnonzero(ok)]
    if writes.empty:
        return []
    writes = writes.assign(tables=[tables_in(str(fp)) for fp in writes["fingerprint"]])
    holds = _transaction_ends(writes, requests, connections)
    overlapped = _overlapped(writes, holds)
    stats = endpoint_stats(requests)
    kept = values_kept(writes["parameters"], parameters_kept) if "parameters" in writes else False
    findings = []
    for fp_id, positions in writes.groupby("fingerprint_id").indices.items():
        rows = writes.iloc[positions]
        fp = str(rows["fingerprint"].iloc[0])
        if not keyed_write(fp) or len(rows) < t.slow_query_min_calls:
            continue
        durations = rows["duration_ns"].to_numpy(dtype=float) / NS_PER_MS
        verdict = _contended(durations, overlapped[positions], t)
        if verdict is None or verdict["wait_ms"] < t.contention_min_wait_ms:
            continue
        if verdict["overlapped_median_ms"] < t.contention_min_overlapped_ms:
            continue
        findings.append(_finding(rows, fp, fp_id, durations, verdict, stats, kept, t))
    return findings


def _contended(
    durations: np.ndarray, overlapped: np.ndarray, t: Thresholds
) -> dict[str, Any] | None:
    """How the calls' times split between alone and overlapped, when that split says
    they waited; None when it does not."""
    lone, shared = durations[~overlapped], durations[overlapped]
    if not len(shared):
        return None
    median = float(np.median(durations))
    if len(lone) >= MIN_LONE:
        lone_median = float(np.median(lone))
        ratio = float(np.median(shared)) / max(lone_median, 1e-3)
        p_value = float(scipy_stats.mannwhitneyu(shared, lone, alternative="greater").pvalue)
        if ratio < t.contention_min_ratio or p_value > t.contention_max_p:
            return None
        basis = f"overlapped calls {ratio:.1f}x slower in median than lone ones (p={p_value:.2g})"
    else:
        # nearly every call waited (the lock is never free under this load): what one
        # costs alone is the few lone calls, or the fastest tenth, whichever is less
        lone_median = float(np.quantile(durations, 0.1))
        if len(lone):
            lone_median = min(lone_median, float(np.median(lone)))
        slow = durations >= np.quantile(durations, 0.75)
        ratio = median / max(lone_median, 1e-3)
        if ratio < t.contention_min_ratio or overlapped[slow].mean() < 0.8:
            return None
        p_value = None
        basis = (
            f"almost every call overlapped another writer; alone one took "
            f"{lone_median:.2f} ms, the median {median:.1f} ms"
        )
    wait_ms = float(np.clip(shared - lone_median, 0, None).sum())
    return {
        "lone_calls": len(lone),
        "overlapped_calls": len(shared),
        "lone_median_ms": round(lone_median, 3),
        "overlapped_median_ms": round(float(np.median(shared)), 3),
        "ratio": round(ratio, 2),
        "p_value": p_value,
        "wait_ms": wait_ms,
        "basis": basis,
    }


def _key_values(parameters: str, fingerprint: str) -> str:
    """The values a keyed write's WHERE binds (the last placeholders of a positional list;
    the new values it SETs come first and differ on every view of a counter)."""
    try:
        values = json.loads(parameters)
    except (TypeError, ValueError):
        return str(parameters)
    where = fingerprint.lower().rsplit(" where ", 1)[-1]
    if isinstance(values, list):
        keys = where.count("?")
        return json.dumps(values[-keys:] if keys else values, default=str)
    return str(parameters)


def _hot_key(rows: pd.DataFrame, kept: bool) -> dict[str, Any]:
    """With values kept, how often the most written key came up (a hot row)."""
    if not kept or "parameters" not in rows:
        return {}
    fp = str(rows["fingerprint"].iloc[0])
    keys = rows["parameters"].map(lambda p: _key_values(p, fp))
    counts = keys.value_counts()
    return {"hot_key_share": round(float(counts.iloc[0]) / len(rows), 3), "keys": len(counts)}


def _finding(
    rows: pd.DataFrame,
    fp: str,
    fp_id: str,
    durations: np.ndarray,
    verdict: dict[str, Any],
    stats: pd.DataFrame,
    kept: bool,
    t: Thresholds,
) -> Finding:
    endpoint = top_endpoint(rows) if "endpoint" in rows else ""
    at_endpoint = rows[rows["endpoint"] == endpoint] if endpoint else rows
    affected = int(at_endpoint["request_id"].nunique()) if endpoint else len(at_endpoint)
    saving = verdict["wait_ms"] * len(at_endpoint) / len(rows) / max(affected, 1)
    tables = ", ".join(tables_in(fp)) or "the table"
    hot = _hot_key(rows, kept)
    share = endpoint_stat(stats, endpoint, "requests")
    evidence = {
        "fingerprint": fp,
        "fingerprint_id": fp_id,
        "calls": len(rows),
        "p50_ms": round(float(np.median(durations)), 3),
        "p95_ms": round(float(np.quantile(durations, 0.95)), 3),
        **{k: v for k, v in verdict.items() if k not in ("wait_ms", "basis")},
        "contention_basis": verdict["basis"],
        "wait_ms_total": round(verdict["wait_ms"], 3),
        "requests_writing": affected,
        "requests_of_endpoint": int(share),
        **hot,
        "call_sites": sorted(set(rows["call_site"].astype(str)))[:5] if "call_site" in rows else [],
        "saving_basis": "time the overlapped calls spent beyond a lone call's median",
    }
    where = "the same row" if hot.get("hot_key_share", 0) >= 0.5 else f"rows of {tables}"
    return Finding(
        kind="write_contention",
        severity=severity_for(saving, endpoint_stat(stats, endpoint, "median_ms"), t),
        endpoint=endpoint,
        title=(
            f"Write contention: {verdict['overlapped_calls']} of {len(rows)} writes to {where} "
            "waited for another writer's open transaction "
            f"(p95 {evidence['p95_ms']:.0f} ms, alone {verdict['lone_median_ms']:.2f} ms)"
        ),
        evidence=[evidence],
        estimated_saving_ms=saving,
        fix=(
            "Not an index: the write finds its rows by key and waits for other "
            f"requests' open transactions on {tables} (on SQLite the lock is the whole "
            "database: any write waits for any open write transaction). Keep the "
            "transaction short: do the slow work of the request (rendering, search "
            "indexing, HTTP calls) after the COMMIT, not between the write and it; or "
            "take the write off the request path (count in Redis with INCR and flush in "
            "batches, or queue it)."
        ),
        affected_requests=affected,
    )
