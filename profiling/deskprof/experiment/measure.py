"""What one trial measured, per endpoint: latency percentiles, throughput, errors, queries
and DB time per request, CPU and peak RSS of the target.

Latency is the load generator's ``latency_ns``: from the *intended* start in open-loop
mode, so a server that falls behind shows its queue instead of hiding it (no coordinated
omission). Percentiles are over the successful requests; failures are counted apart.
Queries and DB time come from the in-process probe, joined on the ``X-Request-ID`` the
generator sent. CPU and RSS are psutil readings of the target's process tree.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from deskprof.workloads.scenarios import SETUP_REQUESTS  # log-ins and setup: not measured

ALL = "(all)"  # the row for the whole trial; target-level metrics live only here


@dataclass(frozen=True)
class Metric:
    """A column of the trials table that gets a verdict."""

    name: str
    label: str
    higher_is_better: bool = False
    kind: str = "time"  # time: faster/slower; amount: lower/higher


METRICS = (
    Metric("p50_ms", "latency p50 (ms, from intended start)"),
    Metric("p95_ms", "latency p95 (ms)"),
    Metric("p99_ms", "latency p99 (ms)"),
    Metric("throughput_rps", "successful requests per second", higher_is_better=True),
    Metric("queries_per_request", "SQL statements per request (probe)", kind="amount"),
    Metric("db_ms_per_request", "time in SQL per request (ms, probe)"),
    Metric("cpu_ms_per_request", "target CPU per request (ms, psutil)", kind="amount"),
    Metric("peak_rss_mb", "target peak RSS (MB, psutil, sampled 10/s)", kind="amount"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
TRIAL_COLUMNS = [
    "endpoint",
    "requests",
    "errors",
    "error_rate",
    *METRIC_NAMES[:4],
    "probe_coverage",
    *METRIC_NAMES[4:],
]


class ResourceMonitor:
    """CPU seconds and peak RSS of a process tree between ``start()`` and ``stop()``.

    CPU: user+system time gained by every process seen (a process that appears mid-trial
    counts from zero). RSS: the highest sum over the tree, sampled every ``interval_s``.
    """

    def __init__(self, pids: list[int], interval_s: float = 0.1) -> None:
        self.roots = list(pids)
        self.interval_s = interval_s
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _processes(self) -> list[psutil.Process]:
        procs: dict[int, psutil.Process] = {}
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                procs[pid] = root
                procs.update((c.pid, c) for c in root.children(recursive=True))
            except psutil.Error:
                continue
        return list(procs.values())

    def sample(self, initial: bool = False) -> None:
        rss = 0
        for proc in self._processes():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue
            used = times.user + times.system
            self.first.setdefault(proc.pid, used if initial else 0.0)
            self.last[proc.pid] = used
        self.peak_rss = max(self.peak_rss, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> ResourceMonitor:
        if self.roots:
            self.sample(initial=True)
            self._thread = threading.Thread(target=self._loop, name="deskprof-rss", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> tuple[float, float]:
        """(CPU seconds, peak RSS bytes); NaN for both when there were no PIDs to watch."""
        if self._thread is None:
            return float("nan"), float("nan")
        self._stop.set()
        self._thread.join()
        self.sample()
        cpu = sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)
        return cpu, float(self.peak_rss)


def _percentiles(latency_ns: pd.Series) -> tuple[float, float, float]:
    if latency_ns.empty:
        return (float("nan"),) * 3
    p50, p95, p99 = np.percentile(latency_ns.to_numpy() / 1e6, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def summarize_trial(
    records: pd.DataFrame,
    *,
    cpu_s: float = float("nan"),
    peak_rss_bytes: float = float("nan"),
) -> pd.DataFrame:
    """One row per endpoint plus ``(all)``; columns ``TRIAL_COLUMNS``. ``records`` is the
    ``workload`` table of one trial (setup requests such as log-ins are left out)."""
    records = records[~records["name"].isin(SETUP_REQUESTS)]
    if records.empty:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    window_s = max((records["end_ns"].max() - records["intended_ns"].min()) / 1e9, 1e-9)
    rows = []
    groups = [(name, group) for name, group in records.groupby("name", sort=True)]
    for endpoint, group in [*groups, (ALL, records)]:
        failed = (group["status"] == 0) | (group["status"] >= 400)
        ok = group[~failed]
        p50, p95, p99 = _percentiles(ok["latency_ns"])
        rows.append(
            {
                "endpoint": endpoint,
                "requests": len(group),
                "errors": int(failed.sum()),
                "error_rate": float(failed.mean()),
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
                "throughput_rps": len(ok) / window_s,
            }
        )
    frame = pd.DataFrame(rows)
    is_all = frame["endpoint"] == ALL
    frame["cpu_ms_per_request"] = np.where(is_all, cpu_s * 1000 / len(records), np.nan)
    frame["peak_rss_mb"] = np.where(is_all, peak_rss_bytes / 1024**2, np.nan)
    for column in ("probe_coverage", "queries_per_request", "db_ms_per_request"):
        frame[column] = np.nan
    return frame[TRIAL_COLUMNS]


def probe_per_request(probe_dir: Path | None) -> pd.DataFrame:
    """``request_id, queries, db_ms`` for every request the probe saw (0 queries included);
    empty when there is no probe output."""
    columns = ["request_id", "queries", "db_ms"]
    if probe_dir is None or not Path(probe_dir).is_dir():
        return pd.DataFrame(columns=columns)
    from deskprof.probe.reader import read_probe_dir

    records = read_probe_dir(probe_dir)
    seen = pd.DataFrame(records["requests"], columns=["request_id"]).drop_duplicates()
    queries = pd.DataFrame(records["queries"], columns=["request_id", "duration_ns"])
    per_request = queries.groupby("request_id").agg(
        queries=("duration_ns", "size"), db_ns=("duration_ns", "sum")
    )
    out = seen.join(per_request, on="request_id")
    out["queries"] = out["queries"].fillna(0).astype("int64")
    out["db_ms"] = out["db_ns"].fillna(0) / 1e6
    return out[columns]


def add_probe_metrics(
    trials: pd.DataFrame, requests: pd.DataFrame, per_request: pd.DataFrame
) -> pd.DataFrame:
    """Fill ``queries_per_request``, ``db_ms_per_request`` and ``probe_coverage`` (share of
    the trial's requests the probe saw) from the probe, per trial and endpoint."""
    if per_request.empty or requests.empty:
        return trials
    joined = requests[~requests["name"].isin(SETUP_REQUESTS)].merge(
        per_request, on="request_id", how="left"
    )
    joined["seen"] = joined["queries"].notna()
    frames = [joined.assign(endpoint=joined["name"]), joined.assign(endpoint=ALL)]
    stats = (
        pd.concat(frames)
        .groupby(["trial", "endpoint"])
        .agg(
            probe_coverage=("seen", "mean"),
            queries_per_request=("queries", "mean"),
            db_ms_per_request=("db_ms", "mean"),
        )
    )
    trials = trials.drop(columns=list(stats.columns)).join(stats, on=["trial", "endpoint"])
    return trials


def wait_for_probe_flush(seconds: float = 0.6) -> None:
    """The probe flushes every 0.25 s; give the last trial's records time to land."""
    time.sleep(seconds)
