"""Per endpoint: how many requests, how slow, and where their time and memory went.

One row per endpoint (``"GET /tickets"``) with latency percentiles from the probe's
requests, CPU and waiting seconds from py-spy samples attributed to it (samples times the
sampling interval), queries and DB time per request, memory, and each endpoint's share of
the whole capture. Shares are of everything captured, the unattributed part included (it
is reported in ``DataFrame.attrs``), so they add up to at most 1.

Memory, as memray measures it:

- ``peak_bytes``: bytes the endpoint's stacks held at the processes' high-water mark
  (memray's high-water-mark records, exact, in both memory modes).
- ``bytes_allocated``: a **lower bound** of the bytes the endpoint allocated. It sums
  memray's temporal records, which are aligned on its 10 ms snapshots: an allocation
  freed before the next snapshot is not in them, and in request handlers that is most
  of the bytes (on the reference service, 230 MiB of 1.5 GiB allocated in one capture).
  Without temporal records (``--memory-mode aggregate``) it falls back to ``peak_bytes``.
  ``attrs["bytes_allocated_from"]`` says which (``"temporal"`` or ``"high_water_mark"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from deskprof.analysis.cpu_time import cpu_weight

if TYPE_CHECKING:
    from deskprof.bundle.reader import Capture

SUMMARY_COLUMNS = [
    "endpoint",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cpu_s",
    "wait_s",
    "queries_per_request",
    "db_ms_per_request",
    "bytes_allocated",
    "peak_bytes",
    "request_share",
    "cpu_share",
    "db_share",
]


ALLOCATED_MEANS = {
    "temporal": "lower bound: allocations live at a 10 ms memray snapshot (shorter-lived "
    "ones are not counted)",
    "high_water_mark": "bytes held at the high-water mark (no temporal records: aggregate mode)",
}


def endpoint_summary(capture: Capture) -> pd.DataFrame:
    """:func:`summarise_endpoints` on a bundle's attributed tables."""
    return summarise_endpoints(
        capture.requests,
        capture.queries,
        capture.samples,
        capture.allocations,
        cpu_rate_hz=capture.cpu_rate_hz,
    )


def _bytes_of(allocations: pd.DataFrame, kind: str) -> pd.Series:
    rows = allocations[allocations["kind"] == kind] if len(allocations) else allocations
    return rows.groupby("endpoint", sort=False)["size_bytes"].sum()


def _allocated(allocations: pd.DataFrame) -> tuple[pd.Series, str]:
    """Bytes allocated per endpoint, a lower bound (see the module doc): the temporal
    records when the capture has them, else the bytes held at the high-water mark."""
    for kind in ("temporal", "high_water_mark"):
        per_endpoint = _bytes_of(allocations, kind)
        if len(per_endpoint):
            return per_endpoint, kind
    return pd.Series(dtype=np.int64), ""


def summarise_endpoints(
    requests: pd.DataFrame,
    queries: pd.DataFrame,
    samples: pd.DataFrame,
    allocations: pd.DataFrame,
    *,
    cpu_rate_hz: float = 100.0,
) -> pd.DataFrame:
    """One row per endpoint, most requests first (columns: ``SUMMARY_COLUMNS``).

    Inputs carry the analysis columns: ``endpoint`` on each, ``state`` and ``n_samples``
    on samples. ``attrs`` holds ``unattributed_cpu_s``, ``unattributed_db_ms``,
    ``sample_count``, ``bytes_allocated_from`` (which allocation records were summed) and
    ``bytes_allocated_is`` (what that figure measures, in words)."""
    interval_s = 1.0 / cpu_rate_hz
    grouped = requests.groupby("endpoint", sort=False)
    latency_ms = requests["duration_ns"] / 1e6
    by_latency = latency_ms.groupby(requests["endpoint"], sort=False)
    summary = pd.DataFrame(
        {
            "requests": grouped.size(),
            "errors": (requests["status"] >= 500).groupby(requests["endpoint"], sort=False).sum(),
            "p50_ms": by_latency.quantile(0.50),
            "p95_ms": by_latency.quantile(0.95),
            "p99_ms": by_latency.quantile(0.99),
        }
    )
    seconds = samples["n_samples"].to_numpy(dtype=np.float64) * interval_s
    on_cpu = samples["state"].to_numpy() == "cpu"
    # CPU time is what the kernel says the thread ran, not the samples that wanted a CPU
    cpu_seconds = cpu_weight(samples, cpu_rate_hz) * interval_s
    cpu = pd.Series(cpu_seconds).groupby(samples["endpoint"].to_numpy()).sum()
    wait = pd.Series(np.where(on_cpu, 0.0, seconds)).groupby(samples["endpoint"].to_numpy()).sum()
    db_ms = (queries["duration_ns"] / 1e6).groupby(queries["endpoint"], sort=False).sum()
    n_queries = queries.groupby("endpoint", sort=False).size()
    allocated, allocated_from = _allocated(allocations)

    endpoints = [e for e in summary.index if e != ""]
    summary = summary.reindex(endpoints)
    summary["cpu_s"] = cpu.reindex(endpoints, fill_value=0.0)
    summary["wait_s"] = wait.reindex(endpoints, fill_value=0.0)
    summary["queries_per_request"] = n_queries.reindex(endpoints, fill_value=0) / summary[
        "requests"
    ].clip(lower=1)
    summary["db_ms_per_request"] = db_ms.reindex(endpoints, fill_value=0.0) / summary[
        "requests"
    ].clip(lower=1)
    summary["bytes_allocated"] = allocated.reindex(endpoints, fill_value=0).astype(np.int64)
    peak = _bytes_of(allocations, "high_water_mark")
    summary["peak_bytes"] = peak.reindex(endpoints, fill_value=0).astype(np.int64)
    total_requests, total_cpu, total_db = len(requests), cpu.sum(), db_ms.sum()
    summary["request_share"] = summary["requests"] / total_requests if total_requests else 0.0
    summary["cpu_share"] = summary["cpu_s"] / total_cpu if total_cpu > 0 else 0.0
    summary["db_share"] = (
        db_ms.reindex(endpoints, fill_value=0.0) / total_db if total_db > 0 else 0.0
    )
    summary = summary.rename_axis("endpoint").reset_index()
    summary = summary.sort_values(["requests", "endpoint"], ascending=[False, True])
    summary = summary.reset_index(drop=True)[SUMMARY_COLUMNS]
    summary = summary.astype({"requests": np.int64, "errors": np.int64})
    summary.attrs.update(
        unattributed_cpu_s=float(cpu.get("", 0.0)),
        unattributed_db_ms=float(db_ms.get("", 0.0)),
        sample_count=int(samples["n_samples"].sum()) if len(samples) else 0,
        bytes_allocated_from=allocated_from,
        bytes_allocated_is=ALLOCATED_MEANS.get(allocated_from, "no memray records"),
        cpu_rate_hz=float(cpu_rate_hz),
    )
    return summary
