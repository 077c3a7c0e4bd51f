"""Each sampled thread's CPU time from the kernel, so "on CPU" means on CPU.

py-spy knows whether a thread is running (it asks the OS before each sample) but its
record formats do not carry that flag, and a leaf-frame rule cannot see a thread that
blocks inside C (``select.select`` called from a server's own loop, ``time.sleep``, a
driver waiting on its socket): such threads looked busy. The kernel's per-thread
counter does see it: ``/proc/<pid>/task/<tid>/schedstat`` starts with the nanoseconds
the thread has spent on a CPU, then those it spent runnable, waiting for one. One
thread of deskprof reads it for every thread of every sampled process at
``interval_s``; a py-spy run then gets the share of its wall time that its thread was
running or ready to run (:func:`active_shares`).

Memory stays bounded: a reading is kept only where a thread's counter moved (with the
reading before it, so the step lands in the right interval) or once a second, so an
idle thread costs a row a second, not fifty.

Cost: one small file read per thread per interval in this process; the sampler's own
CPU time and read count are in the manifest (``overhead.cpu.thread_cpu``).
"""

from __future__ import annotations

import os
import threading
import time
from array import array
from pathlib import Path

import numpy as np
import pandas as pd

INTERVAL_S = 0.02
KEEPALIVE_NS = 1_000_000_000  # an unchanged counter is still written once a second
PROC = Path("/proc")


def available() -> bool:
    """Whether this kernel exposes per-thread schedstat (Linux with schedstats or
    sched_info; absent on other systems)."""
    return (PROC / "self" / "schedstat").exists()


def read_thread_cpu_ns(pid: int) -> dict[int, tuple[int, int]]:
    """``{native thread id: (ns on a CPU, ns runnable waiting for one)}`` so far for
    ``pid``'s threads (schedstat's first two fields). On CPU plus runnable is "active"
    (a busy thread on a crowded host is still busy, as py-spy's own idle test, thread
    state R, has it); on CPU alone is the CPU time it cost. Empty when the process is
    gone or unreadable (a thread that ends between listing and reading is left out)."""
    out: dict[int, tuple[int, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as handle:
                fields = handle.read().split()
                out[int(tid)] = (int(fields[0]), int(fields[1]))
        except (OSError, ValueError, IndexError):
            continue
    return out


class ThreadCpuSampler:
    """Reads every thread's CPU counter of the registered processes every
    ``interval_s`` until stopped; :meth:`series` gives the kept readings."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._pids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        names = ("pid", "tid", "ts_ns", "cpu_ns", "runnable_ns")
        self._columns = {name: array("q") for name in names}
        # per (pid, tid): the last reading seen, and when a reading was last kept
        self._last: dict[tuple[int, int], tuple[int, tuple[int, int]]] = {}
        self._last_kept_ns: dict[tuple[int, int], int] = {}
        self.reads = 0
        self.own_cpu_s = 0.0  # this sampler thread's own CPU time

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def start(self) -> ThreadCpuSampler:
        self._thread = threading.Thread(target=self._run, name="thread-cpu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._read_all()  # a last reading, so runs that end at the stop are covered

    def _run(self) -> None:
        while not self._stop.is_set():
            self._read_all()
            self.own_cpu_s = time.thread_time()
            self._stop.wait(self.interval_s)

    def _keep(self, key: tuple[int, int], ts_ns: int, counters: tuple[int, int]) -> None:
        for name, value in zip(self._columns, (*key, ts_ns, *counters), strict=True):
            self._columns[name].append(value)
        self._last_kept_ns[key] = ts_ns

    def _read_all(self) -> None:
        with self._lock:
            pids = sorted(self._pids)
        for pid in pids:
            ts_ns = time.time_ns()
            counters = read_thread_cpu_ns(pid)
            self.reads += len(counters)
            for tid, reading in counters.items():
                key = (pid, tid)
                last = self._last.get(key)
                kept_ns = self._last_kept_ns.get(key, 0)
                if last is None or reading != last[1]:
                    if last is not None and kept_ns != last[0]:
                        self._keep(key, *last)  # the step began after this reading
                    self._keep(key, ts_ns, reading)
                elif ts_ns - kept_ns >= KEEPALIVE_NS:
                    self._keep(key, ts_ns, reading)
                self._last[key] = (ts_ns, reading)

    def series(self) -> pd.DataFrame:
        """Kept readings: ``pid``, ``native_thread_id``, ``ts_ns``, ``cpu_ns`` (on a
        CPU) and ``active_ns`` (on a CPU or runnable), cumulative, sorted by thread and
        time."""
        cpu = np.frombuffer(self._columns["cpu_ns"], dtype=np.int64)
        frame = pd.DataFrame(
            {
                "pid": np.frombuffer(self._columns["pid"], dtype=np.int64),
                "native_thread_id": np.frombuffer(self._columns["tid"], dtype=np.int64),
                "ts_ns": np.frombuffer(self._columns["ts_ns"], dtype=np.int64),
                "cpu_ns": cpu,
                "active_ns": cpu + np.frombuffer(self._columns["runnable_ns"], dtype=np.int64),
            }
        )
        return frame.sort_values(["pid", "native_thread_id", "ts_ns"], ignore_index=True)


def _by_thread(series: pd.DataFrame, counter: str) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Per ``(pid, native_thread_id)``: the reading times and that ``counter``."""
    return {
        key: (group["ts_ns"].to_numpy(), group[counter].to_numpy())
        for key, group in series.groupby(["pid", "native_thread_id"], sort=False)
    }


def active_shares(
    samples: pd.DataFrame, series: pd.DataFrame, counter: str = "active_ns"
) -> np.ndarray:
    """For each run of ``samples`` (``pid``, ``native_thread_id``, ``ts_ns``,
    ``end_ns``): the share of its wall time its thread was on a CPU or runnable
    (``counter="cpu_ns"``: on a CPU only), from the
    thread's counter interpolated at both ends of the part of the run its readings
    cover; NaN where the thread has fewer than two readings or none cover the run
    (decided by leaf frames instead)."""
    shares = np.full(len(samples), np.nan)
    if samples.empty or series.empty:
        return shares
    by_thread = _by_thread(series, counter)
    keyed = samples[["pid", "native_thread_id"]].reset_index(drop=True)
    positions = keyed.groupby(["pid", "native_thread_id"], sort=False).indices
    start_all = samples["ts_ns"].to_numpy()
    end_all = samples["end_ns"].to_numpy()
    for key, index in positions.items():
        readings = by_thread.get(key)
        if readings is None or len(readings[0]) < 2:
            continue
        times, counters = readings
        # the part of each run the readings cover (py-spy may start a little earlier)
        start = np.maximum(start_all[index], times[0])
        end = np.minimum(end_all[index], times[-1])
        covered = end > start
        used = np.interp(end, times, counters) - np.interp(start, times, counters)
        share = np.clip(used / np.maximum(end - start, 1), 0.0, 1.0)
        shares[index] = np.where(covered, share, np.nan)
    return shares


def allocate_cpu_ns(samples: pd.DataFrame, series: pd.DataFrame, on_cpu: np.ndarray) -> np.ndarray:
    """CPU nanoseconds per run: each reading interval's rise of the thread's on-CPU
    counter shared among that thread's ``on_cpu`` runs by how much of the interval each
    covers. A run's own wall-time share would undercount a short burst (a 5 ms handler
    step inside a 10 ms sampling period, inside a 20 ms reading): the burst's neighbour
    runs are waits and take no CPU, so the interval's CPU is the busy run's. 0 for runs
    not ``on_cpu`` or no reading covers."""
    out = np.zeros(len(samples))
    if samples.empty or series.empty or not on_cpu.any():
        return out
    readings = _by_thread(series, "cpu_ns")
    chosen = samples[on_cpu].reset_index()
    for key, runs in chosen.groupby(["pid", "native_thread_id"], sort=False):
        found = readings.get(key)
        if found is None or len(found[0]) < 2:
            continue
        times, counters = found
        deltas = np.diff(counters).astype(np.float64)
        starts, ends = runs["ts_ns"].to_numpy(), runs["end_ns"].to_numpy()
        first = np.clip(np.searchsorted(times, starts, "right") - 1, 0, len(deltas) - 1)
        last = np.clip(np.searchsorted(times, ends, "left") - 1, 0, len(deltas) - 1)
        pairs = []  # (run position, interval, overlap ns)
        for position, (a, b, lo, hi) in enumerate(zip(starts, ends, first, last, strict=True)):
            for interval in range(lo, hi + 1):
                overlap = min(b, times[interval + 1]) - max(a, times[interval])
                if overlap > 0:
                    pairs.append((position, interval, overlap))
        if not pairs:
            continue
        position, interval, overlap = (np.asarray(column) for column in zip(*pairs, strict=True))
        covered = np.bincount(interval, weights=overlap, minlength=len(deltas))
        share = overlap / covered[interval]
        per_run = np.bincount(position, weights=share * deltas[interval], minlength=len(runs))
        # one thread runs on one CPU at a time: never more than the run's wall time
        out[runs["index"].to_numpy()] = np.minimum(per_run, ends - starts)
    return out
