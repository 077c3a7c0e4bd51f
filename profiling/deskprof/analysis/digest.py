"""The query digest, in the layout engineers know from pgBadger and pt-query-digest.

Three parts: overall statistics (how many queries, how many distinct, how much DB time,
over what window, at what rate), a profile table (one row per fingerprint ranked by total
time: where the database time goes, and which endpoints and call sites send it), and a
latency histogram on log-scale buckets. All take a ``queries`` table (from a bundle via
``Capture.queries`` or from a PostgreSQL log via ``deskprof.analysis.pglog``); a frame
without fingerprints (built by hand) is fingerprinted on the way in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.fingerprint import fingerprint_series

NS_PER_MS = 1_000_000
# log-scale bucket edges in ms (1-3-10 steps, about half a decade each), with open ends
BUCKET_EDGES_MS = (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000)

PROFILE_COLUMNS = [
    "rank",
    "fingerprint_id",
    "fingerprint",
    "operation",
    "calls",
    "total_ms",
    "mean_ms",
    "p95_ms",
    "max_ms",
    "rows",
    "share",
    "errors",
    "endpoints",
    "call_sites",
]


def with_fingerprints(queries: pd.DataFrame) -> pd.DataFrame:
    """``queries`` with ``fingerprint``, ``fingerprint_id`` and ``operation`` (computed
    when absent) and ``endpoint`` (``""`` when absent)."""
    out = queries
    if not {"fingerprint", "fingerprint_id", "operation"} <= set(queries.columns):
        fps = fingerprint_series(queries["statement"])
        out = pd.concat([queries.drop(columns=fps.columns, errors="ignore"), fps], axis=1)
    if "endpoint" not in out.columns:
        out = out.assign(endpoint="")
    return out


def overall_stats(queries: pd.DataFrame) -> dict[str, Any]:
    """``queries``, ``unique_fingerprints``, ``total_db_ms``, ``window_start_ns``,
    ``window_end_ns``, ``window_s``, ``qps`` (queries per second of window), ``errors``,
    ``outside_requests`` (queries not tied to a request). JSON-safe values."""
    n = len(queries)
    if not n:
        return {
            "queries": 0,
            "unique_fingerprints": 0,
            "total_db_ms": 0.0,
            "window_start_ns": 0,
            "window_end_ns": 0,
            "window_s": 0.0,
            "qps": 0.0,
            "errors": 0,
            "outside_requests": 0,
        }
    q = with_fingerprints(queries)
    start = q["start_ns"].to_numpy(dtype=np.int64)
    end = start + q["duration_ns"].to_numpy(dtype=np.int64)
    first, last = int(start.min()), int(end.max())
    window_s = max(last - first, 0) / 1e9
    return {
        "queries": int(n),
        "unique_fingerprints": int(q["fingerprint_id"].nunique()),
        "total_db_ms": float(q["duration_ns"].sum() / NS_PER_MS),
        "window_start_ns": first,
        "window_end_ns": last,
        "window_s": window_s,
        "qps": float(n / window_s) if window_s > 0 else float("nan"),
        "errors": int((q["error"].astype(str) != "").sum()) if "error" in q else 0,
        "outside_requests": int((q["request_id"].astype(str) == "").sum())
        if "request_id" in q
        else 0,
    }


def _ranked_lists(q: pd.DataFrame, codes: np.ndarray, column: str, n_groups: int) -> list:
    """Per fingerprint code, the distinct non-empty values of ``column``, most calls first."""
    out: list[list[str]] = [[] for _ in range(n_groups)]
    if column not in q:
        return out
    # integer codes in sorted order of the values, so "value ascending" is "code ascending"
    value_codes, values = pd.factorize(q[column].astype(str), sort=True)
    values = np.asarray(values, dtype=object)
    keep = value_codes >= 0
    if "" in set(values):
        keep &= value_codes != int(np.flatnonzero(values == "")[0])
    pairs = pd.DataFrame({"code": codes[keep], "value": value_codes[keep]})
    counted = pairs.groupby(["code", "value"], sort=False).size().reset_index(name="n")
    counted = counted.sort_values(["code", "n", "value"], ascending=[True, False, True])
    for code, value in zip(counted["code"], counted["value"], strict=True):
        out[code].append(values[value])
    return out


def query_profile(queries: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """One row per fingerprint, ranked by total time (rank 1 = most DB time).

    Columns: rank, fingerprint_id, fingerprint, operation, calls, total_ms, mean_ms,
    p95_ms, max_ms, rows (sum of known rowcounts), share (of all DB time, 0..1), errors,
    endpoints and call_sites (lists, most calls first). ``top`` keeps the first rows."""
    if not len(queries):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in PROFILE_COLUMNS})
    q = with_fingerprints(queries)
    codes, uniques = pd.factorize(q["fingerprint_id"], sort=False)
    n = len(uniques)
    ms = q["duration_ns"].to_numpy(dtype=np.float64) / NS_PER_MS
    rows = q["rowcount"].to_numpy(dtype=np.int64) if "rowcount" in q else np.zeros(len(q), int)
    calls = np.bincount(codes, minlength=n)
    total = np.bincount(codes, weights=ms, minlength=n)
    by_code = pd.Series(ms).groupby(codes, sort=True)
    p95 = by_code.quantile(0.95).reindex(range(n)).to_numpy()
    max_ms = by_code.max().reindex(range(n)).to_numpy()
    errors = (
        np.bincount(codes, weights=(q["error"].astype(str) != "").to_numpy(), minlength=n)
        if "error" in q
        else np.zeros(n)
    )
    first_row = np.full(n, -1, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    grand_total = total.sum()
    profile = pd.DataFrame(
        {
            "fingerprint_id": np.asarray(uniques, dtype=object),
            "fingerprint": q["fingerprint"].iloc[first_row].to_numpy(dtype=object),
            "operation": q["operation"].iloc[first_row].to_numpy(dtype=object),
            "calls": calls.astype(np.int64),
            "total_ms": total,
            "mean_ms": total / np.maximum(calls, 1),
            "p95_ms": p95,
            "max_ms": max_ms,
            "rows": np.bincount(codes, weights=np.where(rows > 0, rows, 0), minlength=n).astype(
                np.int64
            ),
            "share": total / grand_total if grand_total > 0 else np.zeros(n),
            "errors": errors.astype(np.int64),
            "endpoints": _ranked_lists(q, codes, "endpoint", n),
            "call_sites": _ranked_lists(q, codes, "call_site", n),
        }
    )
    profile = profile.sort_values(
        ["total_ms", "calls", "fingerprint_id"], ascending=[False] * 2 + [True]
    )
    profile.insert(0, "rank", np.arange(1, n + 1))
    profile = profile.reset_index(drop=True)
    return profile.head(top) if top else profile


def latency_histogram(queries: pd.DataFrame) -> pd.DataFrame:
    """Query durations on log-scale buckets (``< 0.01 ms``, ``0.01 ms - 0.03 ms`` ... ``>= 10 s``).

    Columns: bucket (label), low_ms, high_ms (``inf`` for the last), queries, share (of
    queries), total_ms (time spent in that bucket). Every bucket is present, empty or not,
    so two histograms line up."""
    edges = np.array((0.0, *BUCKET_EDGES_MS, np.inf))
    ms = queries["duration_ns"].to_numpy(dtype=np.float64) / NS_PER_MS
    which = np.clip(np.searchsorted(edges, ms, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    totals = np.bincount(which, weights=ms, minlength=len(edges) - 1)
    low, high = edges[:-1], edges[1:]
    labels = [_bucket_label(lo, hi) for lo, hi in zip(low, high, strict=True)]
    return pd.DataFrame(
        {
            "bucket": labels,
            "low_ms": low,
            "high_ms": high,
            "queries": counts.astype(np.int64),
            "share": counts / len(ms) if len(ms) else np.zeros(len(counts)),
            "total_ms": totals,
        }
    )


def _fmt_ms(value: float) -> str:
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:g} ms"


def _bucket_label(low: float, high: float) -> str:
    if low == 0:
        return f"< {_fmt_ms(high)}"
    if np.isinf(high):
        return f">= {_fmt_ms(low)}"
    return f"{_fmt_ms(low)} - {_fmt_ms(high)}"
