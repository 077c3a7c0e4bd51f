"""Uncached hot reads: the same read repeated across requests with no write in between.

Reports recomputed on every request are the classic case: the rows did not change, so the
answer did not either. Writes are found in the same capture (INSERT/UPDATE/DELETE on any
of the read's tables, from any request or process), so "no write in between" is what the
capture saw, not a guess.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.sqltext import (
    NS_PER_MS,
    WRITES,
    endpoint_stat,
    endpoint_stats,
    read_rows,
    tables_in,
    values_kept,
)

_AGGREGATE = re.compile(r"\b(?:count|sum|avg|min|max)\(|\bgroup by\b")
_EQ_PARAM = re.compile(r"(?<![<>!=])=\s*\?|\?(?:::[a-z_]+(?: [a-z_]+)*)?\s*=(?!=)")
_IN_PARAMS = re.compile(r"\bin \(\?")


def cache_key(endpoint: str) -> str:
    """A cache key for an endpoint's response: ``GET /reports/{name}`` → ``reports:{name}:
    {query-hash}`` (the path's parameters, then a hash of the query string)."""
    path = endpoint.split(" ", 1)[-1].strip("/")
    parts = [p for p in path.replace("/", ":").split(":") if p]
    return ":".join([*parts, "{query-hash}"]) if parts else "{query-hash}"


def report_like(fp: str) -> bool:
    """With parameter values redacted, "the same read" can only be judged by shape: an
    aggregation or a scan of a range (a report), not a lookup by key (``col = ?``, an
    ``IN (?, ...)`` batch) and not a page (``LIMIT``), whose values differ per request."""
    fp = fp.lower()
    if " limit " in f" {fp} " or _IN_PARAMS.search(fp):
        return False
    return bool(_AGGREGATE.search(fp)) or not _EQ_PARAM.search(fp)


def _write_times(queries: pd.DataFrame) -> dict[str, np.ndarray]:
    writes = queries[["fingerprint", "start_ns"]][queries["operation"].isin(WRITES)]
    times: dict[str, list[int]] = {}
    for fp, starts in writes.groupby("fingerprint")["start_ns"]:
        for table in tables_in(fp):
            times.setdefault(table, []).extend(starts.tolist())
    return {table: np.sort(np.asarray(v, dtype=np.int64)) for table, v in times.items()}


def _cacheable_runs(
    reads: pd.DataFrame, tables_by_id: dict[str, list[str]], writes: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The rows of ``reads`` that an earlier request had already read with no write to
    their tables since.

    Reads are keyed by (endpoint, fingerprint, parameters); within a key, in time order,
    each request's run of executions is cacheable when the key's previous run (an
    earlier request) started after the last write to its tables before this run ended.
    All keys at once: runs are numbered over the key-then-time order, and writes are
    counted per table with one ``searchsorted`` over all runs that read it. Rows come back
    key by key (keys in order of their first read), in time order within a key."""
    reads = reads.sort_values("start_ns", kind="stable")
    key = reads.groupby(["endpoint", "fingerprint_id", "parameters"], sort=False).ngroup()
    order = np.argsort(key.to_numpy(), kind="stable")
    rows = reads.iloc[order]
    key_codes = key.to_numpy()[order]
    request_codes = pd.factorize(rows["request_id"])[0]
    starts = rows["start_ns"].to_numpy(dtype=np.int64)
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = (key_codes[1:] != key_codes[:-1]) | (request_codes[1:] != request_codes[:-1])
    run_of_row = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], len(rows)) - 1
    first_ns, last_ns = starts[run_start], starts[run_end]
    run_key = key_codes[run_start]
    has_previous = np.zeros(len(run_start), dtype=bool)
    has_previous[1:] = run_key[1:] == run_key[:-1]
    previous_first = np.zeros(len(run_start), dtype=np.int64)
    previous_first[1:] = first_ns[:-1]
    run_fp, fp_ids = pd.factorize(rows["fingerprint_id"].iloc[run_start])
    between = np.zeros(len(run_start), dtype=np.int64)
    for table, times in writes.items():
        reads_table = np.array([table in tables_by_id[i] for i in fp_ids], dtype=bool)[run_fp]
        if not len(times) or not reads_table.any():
            continue
        counted = np.searchsorted(times, last_ns) - np.searchsorted(
            times, previous_first, side="right"
        )
        between += np.where(reads_table, counted, 0)
    ok_run = has_previous & (between == 0)
    return rows[ok_run[run_of_row]]


def detect_uncached_reads(
    queries: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
    parameters_kept: bool | None = None,
) -> list[Finding]:
    """Reads an endpoint repeats across requests with no write to their tables in between.

    A read is keyed by fingerprint and parameters: the values when the capture kept them,
    else the parameter types plus :func:`report_like` shape (so lookups by key are not
    mistaken for repeats). Per key, each request's run of executions is cacheable when an
    earlier request ran the same key and no INSERT/UPDATE/DELETE touched its tables since.
    One finding per endpoint whose cacheable DB time per affected request is at least
    ``uncached_min_ms`` over ``uncached_min_requests`` requests; the saving is that DB
    time (a lower bound: the Python work on the rows is saved too)."""
    t = thresholds or Thresholds()
    columns = ["endpoint", "fingerprint_id", "parameters", "request_id", "start_ns"]
    positions = read_rows(queries, in_requests=True)
    if not len(positions):
        return []
    reads = queries[[*columns, "duration_ns"]].iloc[positions]
    kept = values_kept(reads["parameters"], parameters_kept)
    # judge each distinct fingerprint once (its text read from its first row), then keep
    # its rows by integer code: the fingerprint texts of every row are never copied
    codes, fp_ids = pd.factorize(reads["fingerprint_id"])
    first = np.full(len(fp_ids), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    fp_texts = [str(fp) for fp in queries["fingerprint"].iloc[positions[first]]]
    text_of = dict(zip(fp_ids, fp_texts, strict=True))
    tables = {fp: tables_in(fp) for fp in fp_texts}
    tables_by_id = {i: tables[fp] for i, fp in text_of.items()}
    wanted = np.array([bool(tables[fp]) and (kept or report_like(fp)) for fp in fp_texts])
    reads = reads[wanted[codes]] if len(fp_ids) else reads
    if reads.empty:
        return []
    cacheable = _cacheable_runs(reads, tables_by_id, _write_times(queries))
    if cacheable.empty:
        return []
    cacheable = cacheable.assign(fingerprint=cacheable["fingerprint_id"].map(text_of))
    stats = endpoint_stats(requests)
    findings = []
    for endpoint, rows in cacheable.groupby("endpoint", sort=False):
        affected = int(rows["request_id"].nunique())
        per_request_ms = float(rows["duration_ns"].sum()) / affected / NS_PER_MS
        if affected < t.uncached_min_requests or per_request_ms < t.uncached_min_ms:
            continue
        by_fp = (
            rows.groupby("fingerprint")
            .agg(
                executions=("duration_ns", "size"),
                requests=("request_id", "nunique"),
                total_ms=("duration_ns", "sum"),
            )
            .sort_values("total_ms", ascending=False)
        )
        by_fp["total_ms"] = by_fp["total_ms"] / NS_PER_MS
        median_ms = endpoint_stat(stats, endpoint, "median_ms")
        read_tables = sorted({tb for fp in by_fp.index for tb in tables[fp]})
        evidence: list[dict[str, Any]] = [
            {
                "endpoint": endpoint,
                "requests_affected": affected,
                "requests_of_endpoint": int(endpoint_stat(stats, endpoint, "requests")),
                "cacheable_db_ms_per_request": round(per_request_ms, 3),
                "endpoint_median_ms": round(median_ms, 3),
                "tables": read_tables,
                "distinct_reads": len(by_fp),
                "keyed_by": "parameter values" if kept else "parameter types and shape",
                "saving_basis": "DB time of the repeated reads (lower bound)",
            }
        ]
        evidence.extend(
            {
                "fingerprint": fp,
                "executions": int(row["executions"]),
                "requests": int(row["requests"]),
                "db_ms_total": round(float(row["total_ms"]), 3),
            }
            for fp, row in by_fp.head(5).iterrows()
        )
        findings.append(
            Finding(
                kind="uncached_read",
                severity=severity_for(per_request_ms, median_ms, t),
                endpoint=endpoint,
                title=(
                    f"Uncached hot read: {len(by_fp)} read(s) of {', '.join(read_tables)} "
                    f"repeated across {affected} requests with no write in between"
                ),
                evidence=evidence,
                estimated_saving_ms=per_request_ms,
                fix=(
                    f"Cache the result in Redis under a key of the endpoint and its "
                    f"parameters ({cache_key(str(endpoint))}), with a TTL, and delete the "
                    f"key on writes to {', '.join(read_tables)}; compute it with SQL "
                    "aggregation rather than loading rows into Python."
                ),
                affected_requests=affected,
            )
        )
    return findings
