"""Memory growth: a process whose heap (else RSS) rises steadily over the capture and is
never freed, charged to the code whose allocations memray still saw alive at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds
from deskprof.analysis.stackframes import MB, short_owner, stack_table

MIN_WINDOW_NS = 1_000_000_000  # the floor window when no request is longer
# memray's heap counts from when tracking began: warm-up and a first large request are a
# step up that then stays flat; kept memory goes on rising, so the floor's second half must
# carry at least this share of the growth
LATE_SHARE = 0.25


def _second_half_growth(floor: pd.DataFrame, column: str) -> float:
    """How much the floor rose over the second half of its time span."""
    ts = floor["ts_ns"].to_numpy(dtype=np.int64)
    values = floor[column].to_numpy(dtype=float)
    middle = np.searchsorted(ts, ts[0] + (ts[-1] - ts[0]) // 2)
    return float(values[-1] - values[min(middle, len(values) - 1)])


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


def floor_series(rows: pd.DataFrame, column: str, window_ns: int) -> pd.DataFrame:
    """The series' lower envelope: at each sample, the least value over the next
    ``window_ns`` (samples whose window runs past the end are left out).

    Memory a request holds is gone within its duration, so a window as long as the
    longest request sees the floor between them; memory that is kept raises the floor."""
    ts = rows["ts_ns"].to_numpy(dtype=np.int64)
    values = rows[column].to_numpy(dtype=float)
    if not len(ts):
        return rows.iloc[:0][["ts_ns"]].assign(**{column: []})
    ends = np.searchsorted(ts, ts + window_ns, side="right")
    complete = ts + window_ns <= ts[-1]
    floors = [values[i:end].min() for i, end in enumerate(ends) if complete[i]]
    return pd.DataFrame({"ts_ns": ts[complete], column: floors})


def _longest_request_ns(requests: pd.DataFrame | None, pid: int) -> int:
    """The longest request of ``pid`` (of any process when it served none), at least
    ``MIN_WINDOW_NS``."""
    if requests is None or requests.empty or "duration_ns" not in requests:
        return MIN_WINDOW_NS
    own = requests[requests["pid"] == pid] if "pid" in requests else requests
    durations = (own if len(own) else requests)["duration_ns"]
    return max(MIN_WINDOW_NS, int(durations.max()))


def detect_memory_growth(
    memory: pd.DataFrame,
    allocations: pd.DataFrame,
    stacks: pd.DataFrame,
    requests: pd.DataFrame | None = None,
    *,
    thresholds: Thresholds | None = None,
    app_packages: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Memory that grows and is never freed: per process, a steady slope of the heap's
    (else RSS's) floor adding ``memory_growth_min_bytes`` over the capture with
    r² ≥ ``memory_growth_min_r2``. The floor is the least value over a window as long as
    the process's longest request (:func:`floor_series`): CSV exports in flight raise the
    heap for seconds and overlapping ones make it climb, but they free it, and only a floor
    that rises says memory is kept. It must still be rising in the second half (at least
    ``LATE_SHARE`` of the growth): memray's heap starts at zero when tracking starts, so
    warm-up, or one export whose arenas stay mapped, is a step, not a leak. A capture
    shorter than two windows cannot tell.
    The endpoint is the one whose stacks leaked most (memray's records still alive at the
    end), else ``""``; leaked records alone are not growth (in-flight requests hold them)."""
    t = thresholds or Thresholds()
    leaked = allocations[allocations["kind"] == "leaked"] if not allocations.empty else allocations
    leaked_by_endpoint = pd.Series(dtype=float)
    owners = pd.Series(dtype=float)
    if not leaked.empty:
        leaked_by_endpoint = leaked.groupby("endpoint")["size_bytes"].sum().sort_values()
        if not stacks.empty:
            info = stack_table(stacks, app_packages)
            with_owner = leaked.join(info[["owner"]], on="stack_id", how="left")
            owners = with_owner.groupby("owner")["size_bytes"].sum().sort_values(ascending=False)
    leaked_total = float(leaked["size_bytes"].sum()) if not leaked.empty else 0.0
    growing = []
    for pid, rows in memory.groupby("pid"):
        column = "heap_bytes" if rows["heap_bytes"].fillna(0).gt(0).any() else "rss_bytes"
        window_ns = _longest_request_ns(requests, int(pid))
        floor = floor_series(rows.sort_values("ts_ns"), column, window_ns)
        if floor.empty or np.ptp(floor["ts_ns"].to_numpy()) < window_ns:
            continue  # shorter than two windows: in-flight memory and kept memory look alike
        slope, r2, seconds = _slope(floor, column)
        growth = slope * seconds
        late = _second_half_growth(floor, column)
        if (
            growth >= t.memory_growth_min_bytes
            and r2 >= t.memory_growth_min_r2
            and late >= LATE_SHARE * growth
        ):
            growing.append(
                {
                    "pid": int(pid),
                    "series": column,
                    "growth_bytes": int(growth),
                    "bytes_per_minute": round(slope * 60.0, 1),
                    "r2": round(r2, 3),
                    "seconds": round(seconds, 1),
                    "floor_window_s": round(window_ns / 1e9, 2),
                    "second_half_growth_bytes": int(late),
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
