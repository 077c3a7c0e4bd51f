"""Memory peaks: endpoints holding much of memray's high-water mark, per request a material
part of the processes' resident memory.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds
from deskprof.analysis.stackframes import MB, requests_per_endpoint, short_owner, stack_table


def detect_memory_peaks(
    allocations: pd.DataFrame,
    stacks: pd.DataFrame,
    requests: pd.DataFrame,
    memory: pd.DataFrame | None = None,
    *,
    thresholds: Thresholds | None = None,
    app_packages: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Endpoints holding at least ``memory_peak_min_share`` of the high-water mark (and
    ``memory_peak_min_bytes``), with their biggest allocating functions and, when memray
    wrote temporal records, the bytes they allocate per request.

    With memray's snapshots (``memory``), one request of the endpoint must also hold at
    least ``memory_peak_min_rss_share`` of the processes' resident memory at their peak
    (the endpoint's bytes divided by its requests in flight at that moment). The
    high-water mark counts only what was allocated while memray tracked (after an attach,
    a few MiB on a quiet worker), so on its own some endpoint always holds a quarter of it,
    a streaming export's one bounded chunk included, twice when two exports overlap; the
    resident memory is what the operator sizes workers by, so a peak worth a finding is a
    material part of it for a single request."""
    t = thresholds or Thresholds()
    peak = allocations[allocations["kind"] == "high_water_mark"]
    if peak.empty:
        return []
    info = stack_table(stacks, app_packages)
    peak = peak.join(info[["owner"]], on="stack_id", how="left")
    total = float(peak["size_bytes"].sum())
    resident = rss_at_peak(memory, peak["pid"].unique())
    in_flight = requests_at_peak(memory, requests)
    temporal = allocations[allocations["kind"] == "temporal"]
    per_endpoint = requests_per_endpoint(requests)
    findings = []
    attributed = peak[peak["endpoint"] != ""]
    for endpoint, rows in attributed.groupby("endpoint", sort=False):
        size = float(rows["size_bytes"].sum())
        share = size / total if total else 0.0
        if share < t.memory_peak_min_share or size < t.memory_peak_min_bytes:
            continue
        concurrent = max(1, int(in_flight.get(endpoint, 0)))
        rss_share = size / concurrent / resident if resident else None
        if rss_share is not None and rss_share < t.memory_peak_min_rss_share:
            continue
        owners = rows.groupby("owner")["size_bytes"].sum().sort_values(ascending=False).head(5)
        allocated = float(temporal[temporal["endpoint"] == endpoint]["size_bytes"].sum())
        n_requests = int(per_endpoint.get(endpoint, 0))
        top = short_owner(str(owners.index[0])) if len(owners) else endpoint
        evidence: dict[str, Any] = {
            "endpoint": endpoint,
            "peak_bytes_of_endpoint": int(size),
            "high_water_mark_bytes": int(total),
            "share_of_peak": round(share, 3),
            "rss_at_peak_bytes": int(resident) if resident else None,
            "requests_in_flight_at_peak": concurrent,
            "share_of_rss_at_peak_per_request": None if rss_share is None else round(rss_share, 3),
            "top_functions_bytes": {str(k): int(v) for k, v in owners.items()},
            "allocated_bytes_per_request": round(allocated / n_requests, 1)
            if n_requests and allocated
            else None,
            "requests": n_requests,
        }
        findings.append(
            Finding(
                kind="memory_peak",
                severity="high" if share >= 0.5 else "medium",
                endpoint=endpoint,
                title=(
                    f"Memory peak: {size / MB:.1f} MiB ({share:.0%} of the high-water mark) "
                    f"held by {top}"
                ),
                evidence=[evidence],
                estimated_saving_ms=0.0,
                fix=(
                    f"Do not build the whole result in memory in {top}: stream it (server-side "
                    "cursor with yield_per, a chunked/streaming response) so memory stays flat."
                ),
                affected_requests=n_requests,
            )
        )
    return findings


def rss_at_peak(memory: pd.DataFrame | None, pids: Any) -> float:
    """Resident bytes of ``pids`` at their high-water mark: per process, the RSS of the
    snapshot with the largest tracked heap, summed; 0 when there are no snapshots."""
    if memory is None or memory.empty:
        return 0.0
    rows = memory[memory["pid"].isin(list(pids))]
    if rows.empty or not rows["rss_bytes"].gt(0).any():
        return 0.0
    at_peak = rows.loc[rows.groupby("pid")["heap_bytes"].idxmax()]
    return float(at_peak["rss_bytes"].sum())


def requests_at_peak(memory: pd.DataFrame | None, requests: pd.DataFrame) -> pd.Series:
    """Per endpoint, its requests running when their process reached its largest tracked
    heap (the snapshot's time; memray snapshots every 10 ms)."""
    needed = {"pid", "start_ns", "end_ns", "endpoint"}
    if memory is None or memory.empty or requests.empty or not needed <= set(requests):
        return pd.Series(dtype=float)
    at_peak = memory.loc[memory.groupby("pid")["heap_bytes"].idxmax(), ["pid", "ts_ns"]]
    live = requests.merge(at_peak, on="pid")
    live = live[(live["start_ns"] <= live["ts_ns"]) & (live["ts_ns"] <= live["end_ns"])]
    return live.groupby("endpoint").size().astype(float)
