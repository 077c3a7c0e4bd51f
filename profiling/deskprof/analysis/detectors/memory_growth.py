"""Memory growth: a process whose heap (else RSS) rises steadily over the capture and is
never freed, charged to the code whose allocations memray still saw alive at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds
from deskprof.analysis.stackframes import MB, short_owner, stack_table


def _slope(frame: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """(bytes per second, r squared, seconds covered) of ``column`` over ``ts_ns``."""
    x = (frame["ts_ns"].to_numpy(dtype=float) - float(frame["ts_ns"].min())) / 1e9
    y = frame[column].to_numpy(dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0, 0.0, float(np.ptp(x)) if len(x) else 0.0
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1.0 - float(np.sum(residual**2)) / float(np.sum((y - y.mean()) ** 2))
    return float(slope), r2, float(np.ptp(x))


def detect_memory_growth(
    memory: pd.DataFrame,
    allocations: pd.DataFrame,
    stacks: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Memory that grows and is never freed: per process, a steady heap (else RSS) slope
    adding ``memory_growth_min_bytes`` over the capture with r² ≥ ``memory_growth_min_r2``.
    The endpoint is the one whose stacks leaked most (memray's records still alive at the
    end), else ``""``. Leaked records alone are not growth: when memray detaches, every
    request still in flight (a CSV export half-written) holds memory it would have freed a
    moment later, so only a rising heap says the memory is really kept."""
    t = thresholds or Thresholds()
    leaked = allocations[allocations["kind"] == "leaked"] if not allocations.empty else allocations
    leaked_by_endpoint = pd.Series(dtype=float)
    owners = pd.Series(dtype=float)
    if not leaked.empty:
        leaked_by_endpoint = leaked.groupby("endpoint")["size_bytes"].sum().sort_values()
        if not stacks.empty:
            info = stack_table(stacks)
            with_owner = leaked.join(info[["owner"]], on="stack_id", how="left")
            owners = with_owner.groupby("owner")["size_bytes"].sum().sort_values(ascending=False)
    leaked_total = float(leaked["size_bytes"].sum()) if not leaked.empty else 0.0
    growing = []
    for pid, rows in memory.groupby("pid"):
        column = "heap_bytes" if rows["heap_bytes"].fillna(0).gt(0).any() else "rss_bytes"
        slope, r2, seconds = _slope(rows.sort_values("ts_ns"), column)
        growth = slope * seconds
        if growth >= t.memory_growth_min_bytes and r2 >= t.memory_growth_min_r2:
            growing.append(
                {
                    "pid": int(pid),
                    "series": column,
                    "growth_bytes": int(growth),
                    "bytes_per_minute": round(slope * 60.0, 1),
                    "r2": round(r2, 3),
                    "seconds": round(seconds, 1),
                }
            )
    if not growing:
        return []
    named = leaked_by_endpoint[leaked_by_endpoint.index != ""]
    endpoint = str(named.index[-1]) if len(named) else ""
    top = short_owner(str(owners.index[0])) if len(owners) else "the allocating code"
    evidence: list[dict[str, Any]] = [
        {
            "leaked_bytes": int(leaked_total),
            "leaked_by_endpoint": {str(k): int(v) for k, v in leaked_by_endpoint.items()},
            "top_leaking_functions": {str(k): int(v) for k, v in owners.head(5).items()},
            "processes_growing": len(growing),
        },
        *growing,
    ]
    grown = max((g["growth_bytes"] for g in growing), default=0)
    return [
        Finding(
            kind="memory_growth",
            severity="high" if leaked_total >= t.memory_growth_min_bytes else "medium",
            endpoint=endpoint,
            title=(
                f"Memory growth never freed: {max(grown, leaked_total) / MB:.1f} MiB "
                f"over the capture ({top})"
            ),
            evidence=evidence,
            estimated_saving_ms=0.0,
            fix=(
                f"Find what keeps references alive in {top}: module-level caches or lists "
                "without a bound, objects attached to long-lived state; bound or release them."
            ),
            affected_requests=0,
        )
    ]
