"""Profile detectors: CPU hot spots (py-spy samples) and memory (memray allocations).

Both charge work to the **first application frame** walking from the leaf towards the root:
self time in ``datetime.__add__`` called from ``opendesk/sla.py:due_time_loop`` is the SLA
loop's, which is what a developer changes. Library, standard library and generated code
are never "application". Idle and event-loop frames (selectors, asyncio's run loop,
thread waits) are not CPU work and are dropped, even if a sample was classified on-CPU.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.findings import Finding, Thresholds

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_LIBRARY = ("site-packages", "dist-packages", "/lib/python", "<frozen", "<string>", "/deskprof/")
_IDLE_FILES = ("selectors.py", "asyncio/base_events.py", "threading.py", "queue.py", "socket.py")
_IDLE_FUNCTIONS = frozenset({"select", "poll", "epoll_wait", "wait", "_run_once", "run_forever"})
MB = 1 << 20


def split_frame(frame: str) -> tuple[str, str, int]:
    """``"due_time_loop (/srv/opendesk/sla.py:38)"`` → (function, file, line)."""
    match = _FRAME.match(str(frame))
    if match is None:
        return str(frame), "", 0
    return match.group("function"), match.group("file"), int(match.group("line") or 0)


def is_application(file: str) -> bool:
    path = file.replace("\\", "/")
    return bool(path) and not any(marker in path for marker in _LIBRARY)


def is_idle(frame: str) -> bool:
    function, file, _ = split_frame(frame)
    path = file.replace("\\", "/")
    return function in _IDLE_FUNCTIONS or any(path.endswith(name) for name in _IDLE_FILES)


def owner_frame(frames: list[str]) -> str:
    """The first application frame from the leaf, as ``"function (file)"`` (line dropped,
    so a loop's lines add up); the leaf itself when no frame is the application's."""
    frames = list(frames)
    for frame in reversed(frames):
        function, file, _ = split_frame(frame)
        if is_application(file):
            return f"{function} ({file})"
    if not frames:
        return ""
    function, file, _ = split_frame(frames[-1])
    return f"{function} ({file})"


def _short(owner: str) -> str:
    function, file, _ = split_frame(owner)
    parts = file.replace("\\", "/").split("/")
    return f"{function} ({'/'.join(parts[-2:])})"


def _stack_table(stacks: pd.DataFrame) -> pd.DataFrame:
    table = stacks.drop_duplicates("stack_id").set_index("stack_id")
    frames = table["frames"].map(lambda f: list(f) if f is not None else [])
    return pd.DataFrame(
        {
            "owner": frames.map(owner_frame),
            "idle": frames.map(lambda f: bool(f) and is_idle(f[-1])),
            "leaf": frames.map(lambda f: f[-1] if f else ""),
        },
        index=table.index,
    )


def _requests_per_endpoint(requests: pd.DataFrame) -> pd.Series:
    if requests.empty or "endpoint" not in requests:
        return pd.Series(dtype=float)
    return requests.groupby("endpoint").size().astype(float)


def detect_cpu_hotspots(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
    rate_hz: float = 100.0,
) -> list[Finding]:
    """Per endpoint, the application functions holding at least ``cpu_min_share`` of its
    on-CPU samples (and ``cpu_min_samples``). Saving = that function's CPU time per request
    (an upper bound: what removing the work entirely would give)."""
    t = thresholds or Thresholds()
    on_cpu = samples[(samples["state"] == "cpu") & (samples["endpoint"] != "")]
    if on_cpu.empty:
        return []
    info = _stack_table(stacks)
    on_cpu = on_cpu.join(info, on="stack_id", how="inner")
    on_cpu = on_cpu[~on_cpu["idle"]]
    per_endpoint = _requests_per_endpoint(requests)
    findings = []
    for endpoint, rows in on_cpu.groupby("endpoint", sort=False):
        total = float(rows["n_samples"].sum())
        by_owner = rows.groupby("owner")["n_samples"].sum().sort_values(ascending=False)
        n_requests = float(per_endpoint.get(endpoint, 0.0)) or 1.0
        for owner, count in by_owner.items():
            share = float(count) / total
            if share < t.cpu_min_share or count < t.cpu_min_samples:
                continue
            cpu_ms = float(count) / rate_hz * 1000.0
            per_request = cpu_ms / n_requests
            leaves = rows[rows["owner"] == owner].groupby("leaf")["n_samples"].sum()
            evidence = {
                "endpoint": endpoint,
                "function": owner,
                "samples": int(count),
                "endpoint_cpu_samples": int(total),
                "share_of_endpoint_cpu": round(share, 3),
                "cpu_ms_total": round(cpu_ms, 1),
                "cpu_ms_per_request": round(per_request, 3),
                "requests": int(per_endpoint.get(endpoint, 0)),
                "rate_hz": rate_hz,
                "top_leaf_frames": {
                    str(k): int(v) for k, v in leaves.sort_values(ascending=False).head(3).items()
                },
                "saving_basis": "upper bound: all of this function's CPU time per request",
            }
            findings.append(
                Finding(
                    kind="cpu_hotspot",
                    severity="high" if share >= 0.5 else "medium",
                    endpoint=endpoint,
                    title=f"CPU hot spot: {_short(owner)} holds {share:.0%} of the endpoint's CPU",
                    evidence=[evidence],
                    estimated_saving_ms=per_request,
                    fix=(
                        f"Make {_short(owner)} cheaper: replace per-item loops with arithmetic "
                        "or SQL (a closed form, an aggregate), or compute it once and cache it."
                    ),
                    affected_requests=int(per_endpoint.get(endpoint, 0)),
                )
            )
    return findings


def detect_memory_peaks(
    allocations: pd.DataFrame,
    stacks: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Endpoints holding at least ``memory_peak_min_share`` of the high-water mark (and
    ``memory_peak_min_bytes``), with their biggest allocating functions and, when memray
    wrote temporal records, the bytes they allocate per request."""
    t = thresholds or Thresholds()
    peak = allocations[allocations["kind"] == "high_water_mark"]
    if peak.empty:
        return []
    info = _stack_table(stacks)
    peak = peak.join(info[["owner"]], on="stack_id", how="left")
    total = float(peak["size_bytes"].sum())
    temporal = allocations[allocations["kind"] == "temporal"]
    per_endpoint = _requests_per_endpoint(requests)
    findings = []
    attributed = peak[peak["endpoint"] != ""]
    for endpoint, rows in attributed.groupby("endpoint", sort=False):
        size = float(rows["size_bytes"].sum())
        share = size / total if total else 0.0
        if share < t.memory_peak_min_share or size < t.memory_peak_min_bytes:
            continue
        owners = rows.groupby("owner")["size_bytes"].sum().sort_values(ascending=False).head(5)
        allocated = float(temporal[temporal["endpoint"] == endpoint]["size_bytes"].sum())
        n_requests = int(per_endpoint.get(endpoint, 0))
        top = _short(str(owners.index[0])) if len(owners) else endpoint
        evidence: dict[str, Any] = {
            "endpoint": endpoint,
            "peak_bytes_of_endpoint": int(size),
            "high_water_mark_bytes": int(total),
            "share_of_peak": round(share, 3),
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
    adding ``memory_growth_min_bytes`` over the capture with r² ≥ ``memory_growth_min_r2``,
    or leaked allocations (memray's records never freed) of that size. The endpoint is the
    one whose stacks leaked most, else ``""``."""
    t = thresholds or Thresholds()
    leaked = allocations[allocations["kind"] == "leaked"] if not allocations.empty else allocations
    leaked_by_endpoint = pd.Series(dtype=float)
    owners = pd.Series(dtype=float)
    if not leaked.empty:
        leaked_by_endpoint = leaked.groupby("endpoint")["size_bytes"].sum().sort_values()
        if not stacks.empty:
            info = _stack_table(stacks)
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
    if not growing and leaked_total < t.memory_growth_min_bytes:
        return []
    named = leaked_by_endpoint[leaked_by_endpoint.index != ""]
    endpoint = str(named.index[-1]) if len(named) else ""
    top = _short(str(owners.index[0])) if len(owners) else "the allocating code"
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
            severity="high" if growing and leaked_total >= t.memory_growth_min_bytes else "medium",
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
