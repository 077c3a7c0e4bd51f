"""Performance budgets for the backend, in the spirit of Lighthouse CI's assertions.

A budgets file (TOML) sets per-endpoint limits that a capture must meet: latency
percentiles, queries and DB time per request, bytes allocated per request, error rate.
``[endpoints."*"]`` applies to every endpoint, a named endpoint's table overrides it::

    min_requests = 5              # endpoints with fewer requests are not judged

    [endpoints."*"]
    p95_ms = 800
    error_rate = 0.01

    [endpoints."GET /tickets"]
    p95_ms = 300
    queries_per_request = 12

    [relative]                    # against --baseline: at most this much worse
    p95_ms = 0.10
    queries_per_request = 0.0

A relative budget is a regression only when the statistics say so: each capture is cut
into time windows, the metric taken per window (requests inside one window share the
server's state, so the window, not the request, is the unit, as trials are in an
experiment), and the windows compared with :func:`deskprof.experiment.stats.compare`:
"regression" only when the whole confidence interval of the ratio is beyond
``1 + limit``. An A/A pair of captures therefore passes. A metric that does not vary at
all (queries per request of a deterministic endpoint) is compared directly.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deskprof.errors import DeskprofError

# metric -> what it is, for messages and units
METRICS: dict[str, str] = {
    "p50_ms": "median latency (ms)",
    "p95_ms": "p95 latency (ms)",
    "p99_ms": "p99 latency (ms)",
    "queries_per_request": "SQL statements per request",
    "db_ms_per_request": "DB time per request (ms)",
    "alloc_bytes_per_request": "bytes allocated per request (lower bound, memray)",
    "error_rate": "share of responses with status >= 500",
}
# metrics a relative budget can judge per time window (a window's bytes are not kept)
RELATIVE_METRICS = ("p50_ms", "p95_ms", "p99_ms", "queries_per_request", "db_ms_per_request")
ALL = "*"
MIN_WINDOWS, MAX_WINDOWS, WINDOW_MIN_S = 5, 12, 2.0
MIN_WINDOW_REQUESTS = 3


@dataclass(frozen=True)
class Budgets:
    """What a budgets file says: absolute limits by endpoint (``"*"``: every one) and
    relative limits (allowed increase over the baseline, 0.10 = 10%)."""

    absolute: dict[str, dict[str, float]]
    relative: dict[str, float] = field(default_factory=dict)
    min_requests: int = 5
    source: str = ""

    def limits_for(self, endpoint: str) -> dict[str, float]:
        return {**self.absolute.get(ALL, {}), **self.absolute.get(endpoint, {})}


@dataclass(frozen=True)
class Check:
    """One budget judged on one endpoint."""

    endpoint: str
    metric: str
    limit: float
    value: float
    passed: bool
    mode: str = "absolute"  # or "relative"
    detail: str = ""  # relative: the ratio, its CI and the verdict

    def line(self) -> str:
        """The one line a breach (or a pass, in the verbose list) is printed as."""
        status = "ok    " if self.passed else "BREACH"
        if self.mode == "relative":
            return f"{status} {self.endpoint}  {self.metric}  {self.detail}"
        return (
            f"{status} {self.endpoint}  {self.metric} = {format_value(self.metric, self.value)} "
            f"(budget {format_value(self.metric, self.limit)})"
        )


@dataclass
class CheckResult:
    checks: list[Check]
    notes: list[str]

    @property
    def breaches(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.breaches

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([c.__dict__ for c in self.checks])


def format_value(metric: str, value: float) -> str:
    """A value with its unit and thousands separators, never in exponent form."""
    if not math.isfinite(value):
        return "n/a"
    if metric == "error_rate":
        return f"{value:.2%}"
    if metric == "alloc_bytes_per_request":
        return f"{value / 2**20:,.2f} MiB" if value >= 2**20 else f"{value:,.0f} B"
    if metric.endswith("_ms") or metric == "db_ms_per_request":
        return f"{value:,.1f} ms"
    return f"{value:,.1f}"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise DeskprofError(f"{where}: a budget is a number >= 0, not {value!r}")
    return float(value)


def _metrics(table: Any, where: str, allowed: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(table, dict):
        raise DeskprofError(f"{where} must be a table of metric = number")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise DeskprofError(
            f"{where}: unknown metric {unknown[0]!r}; budgets know {', '.join(allowed)}"
        )
    return {metric: _number(value, f"{where}.{metric}") for metric, value in table.items()}


def load_budgets(path: str | Path) -> Budgets:
    """Read and check a budgets file; every mistake is one line naming where it is."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeskprofError(f"no budgets file at {path}; see examples/budgets.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeskprofError(f"cannot read budgets file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DeskprofError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"endpoints", "relative", "min_requests"})
    if unknown:
        raise DeskprofError(
            f"{path}: unknown section {unknown[0]!r}; use endpoints, relative, min_requests"
        )
    endpoints = data.get("endpoints", {})
    if not isinstance(endpoints, dict):
        raise DeskprofError(f'{path}: [endpoints."METHOD /route"] tables hold the limits')
    absolute = {
        name: _metrics(table, f"{path}: endpoints.{name!r}", tuple(METRICS))
        for name, table in endpoints.items()
    }
    relative = _metrics(data.get("relative", {}), f"{path}: relative", RELATIVE_METRICS)
    min_requests = data.get("min_requests", 5)
    if isinstance(min_requests, bool) or not isinstance(min_requests, int) or min_requests < 1:
        raise DeskprofError(f"{path}: min_requests is a whole number >= 1")
    if not absolute and not relative:
        raise DeskprofError(f'{path} sets no budget: add [endpoints."*"] or [relative]')
    return Budgets(absolute, relative, int(min_requests), str(path))


def endpoint_metrics(summary: pd.DataFrame) -> pd.DataFrame:
    """Every budget metric per endpoint, from :func:`deskprof.analysis.endpoints
    .summarise_endpoints` (indexed by endpoint)."""
    if summary.empty:
        return pd.DataFrame(columns=["requests", *METRICS])
    frame = summary.set_index("endpoint")
    requests = frame["requests"].clip(lower=1)
    out = frame[["requests", "p50_ms", "p95_ms", "p99_ms"]].copy()
    out["queries_per_request"] = frame["queries_per_request"]
    out["db_ms_per_request"] = frame["db_ms_per_request"]
    out["alloc_bytes_per_request"] = frame["bytes_allocated"] / requests
    out["error_rate"] = frame["errors"] / requests
    return out


def check_absolute(summary: pd.DataFrame, budgets: Budgets) -> CheckResult:
    """Each endpoint's metrics against its limits (endpoints with fewer than
    ``min_requests`` requests are listed in the notes, not judged; a metric the capture
    has no data for, e.g. bytes without memray, is a note too)."""
    metrics = endpoint_metrics(summary)
    checks, notes = [], []
    named = [e for e in budgets.absolute if e != ALL]
    for endpoint in named:
        if endpoint not in metrics.index:
            notes.append(f"{endpoint}: not in this capture (no requests), not judged")
    for endpoint, row in metrics.iterrows():
        limits = budgets.limits_for(str(endpoint))
        if not limits:
            continue
        if row["requests"] < budgets.min_requests:
            notes.append(f"{endpoint}: {int(row['requests'])} request(s), fewer than "
                         f"min_requests = {budgets.min_requests}, not judged")  # fmt: skip
            continue
        for metric, limit in limits.items():
            value = float(row[metric])
            if not math.isfinite(value):
                notes.append(f"{endpoint}: no data for {metric} in this capture")
                continue
            checks.append(Check(str(endpoint), metric, limit, value, value <= limit))
    return CheckResult(checks, notes)


def _windows(requests: pd.DataFrame) -> np.ndarray:
    """Window edges (ns) over a capture's requests: 5 to 12 windows, at least 2 s each."""
    first, last = int(requests["start_ns"].min()), int(requests["start_ns"].max()) + 1
    span_s = (last - first) / 1e9
    n = int(min(MAX_WINDOWS, max(MIN_WINDOWS, span_s // WINDOW_MIN_S)))
    return np.linspace(first, last, n + 1)


def window_values(
    requests: pd.DataFrame, queries: pd.DataFrame, endpoint: str, metric: str
) -> np.ndarray:
    """``metric`` of ``endpoint`` per time window of the capture (windows with fewer than
    ``MIN_WINDOW_REQUESTS`` of its requests left out)."""
    if requests.empty:
        return np.array([])
    edges = _windows(requests)
    mine = requests[requests["endpoint"] == endpoint]
    window = np.clip(np.searchsorted(edges, mine["start_ns"], side="right") - 1, 0, len(edges) - 2)
    mine = mine.assign(window=window)
    if metric in ("queries_per_request", "db_ms_per_request"):
        per_request = queries[queries["request_id"].isin(mine["request_id"])].groupby("request_id")
        counts = per_request.size() if metric == "queries_per_request" else (
            per_request["duration_ns"].sum() / 1e6
        )  # fmt: skip
        mine = mine.assign(value=mine["request_id"].map(counts).fillna(0.0).astype(float))
        stat = mine.groupby("window")["value"].agg(["mean", "size"])
        values = stat["mean"][stat["size"] >= MIN_WINDOW_REQUESTS]
    else:
        q = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}[metric]
        grouped = mine.groupby("window")["duration_ns"]
        sizes = grouped.size()
        values = (grouped.quantile(q) / 1e6)[sizes >= MIN_WINDOW_REQUESTS]
    return values.to_numpy(dtype=float)


def check_relative(
    candidate: Any, baseline: Any, budgets: Budgets, *, seed: int = 0
) -> CheckResult:
    """Each endpoint both captures served (``min_requests`` in each) against the relative
    limits: a regression only when the windows' ratio CI is wholly beyond ``1 + limit``."""
    from deskprof.experiment.stats import INCONCLUSIVE, MIN_UNITS, compare

    checks, notes = [], []
    base_requests, cand_requests = baseline.requests, candidate.requests
    both = set(base_requests["endpoint"]) & set(cand_requests["endpoint"])
    for endpoint in sorted(both):
        n_base = int((base_requests["endpoint"] == endpoint).sum())
        n_cand = int((cand_requests["endpoint"] == endpoint).sum())
        if min(n_base, n_cand) < budgets.min_requests:
            notes.append(f"{endpoint}: too few requests to compare ({n_base} and {n_cand})")
            continue
        for metric, limit in budgets.relative.items():
            base = window_values(base_requests, baseline.queries, endpoint, metric)
            cand = window_values(cand_requests, candidate.queries, endpoint, metric)
            result = compare(base, cand, paired=False, threshold=limit, seed=seed,
                             kind="time" if metric.endswith("_ms") else "amount")  # fmt: skip
            verdict, ratio = result.verdict, result.ratio
            enough = min(len(base), len(cand)) >= MIN_UNITS
            flat = enough and np.ptp(base) == 0 and np.ptp(cand) == 0
            if verdict == INCONCLUSIVE and flat:  # no variation at all: compare directly
                ratio = float(cand[0] / base[0]) if base[0] else (math.inf if cand[0] else 1.0)
                verdict = "higher" if ratio > 1 + limit else "no detectable change"
                detail = f"{format_value(metric, base[0])} -> {format_value(metric, cand[0])}"
            else:
                detail = (
                    f"ratio {ratio:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}] over "
                    f"{len(base)}+{len(cand)} windows"
                )
            regression = verdict in ("slower", "higher")
            label = "regression" if regression else verdict
            detail = f"{label}: {detail} (allowed +{limit:.0%})"
            checks.append(
                Check(endpoint, metric, 1 + limit, ratio, not regression, "relative", detail)
            )
            if verdict == INCONCLUSIVE:
                said = "; ".join(result.warnings).replace("trial(s)", "window(s)")
                said = said.replace("trials", "windows")  # the unit here is a time window
                notes.append(f"{endpoint} {metric}: inconclusive ({said})")
    return CheckResult(checks, notes)


def check(capture: Any, budgets: Budgets, baseline: Any = None) -> CheckResult:
    """Absolute budgets on ``capture``, and relative ones against ``baseline`` when both
    are given (relative budgets without a baseline are a note, not a pass)."""
    from deskprof.analysis.endpoints import endpoint_summary

    result = check_absolute(endpoint_summary(capture), budgets)
    if budgets.relative and baseline is None:
        result.notes.append("relative budgets not judged: no baseline capture given")
    elif budgets.relative:
        relative = check_relative(capture, baseline, budgets)
        result = CheckResult(result.checks + relative.checks, result.notes + relative.notes)
    return result
