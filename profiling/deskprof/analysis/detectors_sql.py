"""SQL detectors: N+1, slow queries, connection churn (uncached reads: detectors_cache).

Each is a plain function of the contract's DataFrames (``queries`` with ``fingerprint``,
``fingerprint_id``, ``operation`` and ``endpoint``; ``requests`` with ``endpoint``) that
returns :class:`Finding` objects, so a test can hand it ten rows built by hand. The shared
helpers here (tables a statement touches, whether parameter values were kept, per-endpoint
latency) are used by the other SQL detector modules too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.findings import Finding, Thresholds, severity_for

NS_PER_MS = 1e6
WRITES = ("INSERT", "UPDATE", "DELETE")

# --- shared helpers ------------------------------------------------------------------

_TABLE_AFTER = re.compile(r"\b(?:join|update|into)\s+([a-z_][\w$]*(?:\.[a-z_][\w$]*)?)", re.I)
_FROM_LIST = re.compile(
    r"\bfrom\s+(.+?)(?=\bwhere\b|\bgroup\b|\border\b|\blimit\b|\boffset\b|\bjoin\b|\binner\b"
    r"|\bleft\b|\bright\b|\bfull\b|\bcross\b|\bunion\b|\bhaving\b|\breturning\b|\bfor\b|\)|$)",
    re.I | re.S,
)
_NOT_TABLES = frozenset({"select", "lateral", "only", "as", "(", "?"})


def tables_in(statement: str) -> list[str]:
    """Tables a statement reads or writes (``FROM a, b``, ``JOIN``, ``UPDATE``, ``INTO``),
    lowercased, schema prefix dropped, in order of appearance. Subqueries are looked into
    as text, so ``IN (SELECT ... FROM t)`` names ``t`` too."""
    found: list[str] = []
    for match in _FROM_LIST.finditer(statement):
        for part in match.group(1).split(","):
            words = part.strip().split()
            if words and words[0].lower() not in _NOT_TABLES and not words[0].startswith("("):
                found.append(words[0])
    found.extend(m.group(1) for m in _TABLE_AFTER.finditer(statement))
    out: list[str] = []
    for name in found:
        name = name.strip('"`').lower().rsplit(".", 1)[-1]
        if name and name not in out and re.fullmatch(r"[a-z_][\w$]*", name):
            out.append(name)
    return out


_TYPE_NAMES = frozenset(
    [
        "int",
        "str",
        "float",
        "bool",
        "None",
        "NoneType",
        "datetime",
        "date",
        "time",
        "timedelta",
        "Decimal",
        "UUID",
        "bytes",
        "bytearray",
        "memoryview",
        "list",
        "dict",
        "tuple",
        "set",
        "Range",
        "Json",
        "Jsonb",
        "Enum",
        "ndarray",
    ]
)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def values_kept(parameters: pd.Series, hint: bool | None = None) -> bool:
    """Whether the ``parameters`` column holds values (``--keep-parameters``) rather than
    type names. ``hint`` (the manifest's ``keep_parameters``) wins when given; otherwise a
    sample is sniffed: only Python type names (``"int"``, ``"str"``...) means redacted, so
    an unusual type name (a custom class) can pass for a value: prefer the hint."""
    if hint is not None:
        return bool(hint)
    for text in parameters.dropna().astype(str).head(500):
        try:
            leaves = _leaves(json.loads(text))
        except ValueError:
            continue
        for leaf in leaves:
            if not isinstance(leaf, str) or leaf not in _TYPE_NAMES:
                return True
    return False


def endpoint_stats(requests: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint: ``requests`` (count) and ``median_ms`` (latency), indexed by endpoint."""
    if requests.empty or "endpoint" not in requests:
        return pd.DataFrame({"requests": [], "median_ms": []})
    grouped = requests.groupby("endpoint")["duration_ns"]
    return pd.DataFrame(
        {"requests": grouped.size(), "median_ms": grouped.median() / NS_PER_MS}
    ).astype(float)


def _stat(stats: pd.DataFrame, endpoint: str, column: str) -> float:
    return float(stats[column].get(endpoint, 0.0)) if column in stats else 0.0


def short_site(call_site: str) -> str:
    """``/long/path/opendesk/tickets.py:112`` → ``opendesk/tickets.py:112``."""
    parts = str(call_site).replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else str(call_site)


def top_endpoint(frame: pd.DataFrame) -> str:
    """The endpoint that spends the most time in these rows (``""`` outside requests)."""
    in_requests = frame[frame["endpoint"] != ""]
    if in_requests.empty:
        return ""
    return str(in_requests.groupby("endpoint")["duration_ns"].sum().idxmax())


def read_rows(queries: pd.DataFrame, *, in_requests: bool = False) -> np.ndarray:
    """Positions of the SELECTs that did not fail (and ran inside a request, when
    ``in_requests``), in table order."""
    keep = (queries["operation"] == "SELECT").to_numpy(dtype=bool)
    if "error" in queries:
        keep = keep & (queries["error"].fillna("") == "").to_numpy(dtype=bool)
    if in_requests:
        keep = keep & (queries["request_id"] != "").to_numpy(dtype=bool)
    return np.flatnonzero(keep)


def _reads(
    queries: pd.DataFrame, columns: list[str] | None = None, *, in_requests: bool = False
) -> pd.DataFrame:
    """The rows of :func:`read_rows`, index kept.

    ``columns`` keeps only those columns: a filter copies every column it keeps, and
    copying a million statement or fingerprint texts costs more than a detector's own
    work (detectors fetch those texts for the few rows they report)."""
    frame = queries if columns is None else queries[[c for c in columns if c in queries]]
    return frame.iloc[read_rows(queries, in_requests=in_requests)]


# --- N+1 -----------------------------------------------------------------------------


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
        median_ms = _stat(stats, endpoint, "median_ms")
        repeats_median = float(group["repeats"].median())
        function = str(group["call_function"].iloc[0])
        evidence = {
            "endpoint": endpoint,
            "fingerprint": str(group["fingerprint"].iloc[0]),
            "fingerprint_id": fp_id,
            "call_site": site,
            "call_function": function,
            "requests_affected": len(group),
            "requests_of_endpoint": int(_stat(stats, endpoint, "requests")),
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


# --- slow query ----------------------------------------------------------------------


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
        affected = int(at_endpoint["request_id"].nunique()) if endpoint else len(rows)
        per_request_ms = float(at_endpoint["duration_ns"].sum()) / max(affected, 1) / NS_PER_MS
        median_ms = _stat(stats, endpoint, "median_ms")
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


# --- connection churn ----------------------------------------------------------------


def detect_connection_churn(
    connections: pd.DataFrame, requests: pd.DataFrame, *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """New DBAPI connections (``connect`` events) per request at least ``churn_min_ratio``.

    One finding for the whole service (endpoint ``""``: the fix is the engine's pool), with
    the per-endpoint ratios as evidence. The probe does not time a connect, so the saving
    is measured only when an endpoint has requests with and without a new connection (the
    difference of their medians); otherwise it is 0 and the evidence says so."""
    t = thresholds or Thresholds()
    if requests.empty or len(requests) < t.churn_min_requests:
        return []
    connects = connections[connections["event"] == "connect"]
    inside = connects[connects["request_id"] != ""]
    ratio = len(inside) / len(requests)
    if ratio < t.churn_min_ratio:
        return []
    per_request = inside.groupby("request_id").size()
    reqs = requests.assign(connects=requests["request_id"].map(per_request).fillna(0))
    by_endpoint = reqs.groupby("endpoint").agg(
        requests=("request_id", "size"), connects=("connects", "sum")
    )
    by_endpoint["per_request"] = by_endpoint["connects"] / by_endpoint["requests"]
    savings, weights = [], []
    for _endpoint, rows in reqs.groupby("endpoint"):
        with_new = rows[rows["connects"] > 0]["duration_ns"]
        without = rows[rows["connects"] == 0]["duration_ns"]
        if len(with_new) >= 3 and len(without) >= 3:
            savings.append(max(0.0, float(with_new.median() - without.median()) / NS_PER_MS))
            weights.append(len(with_new))
    saving = float(np.average(savings, weights=weights)) if savings else 0.0
    evidence: list[dict[str, Any]] = [
        {
            "connects_per_request": round(ratio, 3),
            "connects_in_requests": len(inside),
            "connects_outside_requests": int(len(connects) - len(inside)),
            "requests": len(requests),
            "checkouts": int((connections["event"] == "checkout").sum()),
            "saving_basis": (
                "median latency with a new connection minus without, same endpoint"
                if savings
                else "not measured: every request opened a connection and the probe does "
                "not time connects"
            ),
        }
    ]
    evidence.extend(
        {
            "endpoint": ep,
            "requests": int(r["requests"]),
            "connects_per_request": round(float(r["per_request"]), 3),
        }
        for ep, r in by_endpoint.sort_values("requests", ascending=False).head(8).iterrows()
    )
    return [
        Finding(
            kind="connection_churn",
            severity="high" if ratio >= 0.9 else "medium",
            endpoint="",
            title=f"Connection churn: {ratio:.2f} new database connections per request",
            evidence=evidence,
            estimated_saving_ms=saving,
            fix=(
                "Keep connections: a sized pool (SQLAlchemy QueuePool with pool_size and "
                "pool_pre_ping=True) instead of NullPool or a connection per request; with "
                "many worker processes, PgBouncer in front of PostgreSQL."
            ),
            affected_requests=len(inside),
        )
    ]
