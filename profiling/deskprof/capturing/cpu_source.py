"""The ``cpu`` source: py-spy on every serving process for the capture window.

Overhead: py-spy samples from outside (``--nonblocking``: the target is never paused), so
what it costs the target is the CPU it takes from the same host. We measure exactly that
with psutil on each py-spy process: its CPU seconds between the moment it said it samples
and the moment we stop it, over the same wall-clock span, written to
``manifest["overhead"]["cpu"]``. Its start-up (reading the target's symbols) is reported
apart, and so is the time it spends writing its file after the window.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psutil

from deskprof.bundle.stacks import StackTable
from deskprof.capturing import thread_cpu
from deskprof.capturing.cpu import ACTIVE_SHARE_ON, CpuRecorder, apply_os_state
from deskprof.capturing.source import Source
from deskprof.capturing.target import serving_processes, url_port
from deskprof.errors import DeskprofError

OVERHEAD_HOW = (
    "psutil user+system CPU of each py-spy process (and any children) from when it began "
    "sampling to when it was stopped, over that wall-clock span; start-up (symbol loading) "
    "reported apart. py-spy runs --nonblocking, so this is CPU taken from the host, not "
    "time the target was paused: it slows the target only when cores are scarce"
)

STATE_HOW = (
    "os: each thread's time on a CPU or runnable, from /proc/<pid>/task/<tid>/schedstat "
    f"every {thread_cpu.INTERVAL_S * 1000:.0f} ms; a run is cpu when its thread was active "
    f"for at least {ACTIVE_SHARE_ON:.0%} of it and its leaf is not a known blocking call; "
    "CPU time (cpu_ns) is the kernel's on-CPU time shared among the thread's cpu runs; runs "
    "no reading covers fall back to the leaf-frame rule (state_from per row, counts in "
    "state_samples)"
)
STATE_HOW_LEAF = (
    "leaf-frame classification (deskprof.capturing.cpu.WAIT_LEAVES): this host has no "
    "per-thread schedstat, so threads blocked inside C calls count as cpu"
)


def process_cpu_seconds(process: psutil.Process) -> float | None:
    """User + system CPU seconds of ``process``, its reaped children and its live
    children; None when the process is gone (psutil cannot read an exited process)."""
    try:
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue  # exited between listing and reading
            total += child_times.user + child_times.system
        return total
    except psutil.Error:
        return None


@dataclass
class SamplerMeter:
    """CPU readings of one py-spy process at the start and end of the capture window."""

    pid: int
    start_cpu_s: float | None = None
    start_ns: int = 0
    end_cpu_s: float | None = None
    end_ns: int = 0
    process: psutil.Process | None = None

    start_rss: int = 0

    @classmethod
    def begin(cls, pid: int) -> SamplerMeter:
        meter = cls(pid)
        try:
            meter.process = psutil.Process(pid)
            meter.start_rss = meter.process.memory_info().rss
        except psutil.Error:
            return meter
        meter.start_cpu_s = process_cpu_seconds(meter.process)
        meter.start_ns = time.time_ns()
        return meter

    def grown_bytes(self) -> int:
        if self.process is None:
            return 0
        try:
            return max(0, self.process.memory_info().rss - self.start_rss)
        except psutil.Error:
            return 0

    def end(self) -> None:
        if self.process is not None and not self.end_ns:
            self.end_cpu_s = process_cpu_seconds(self.process)
            self.end_ns = time.time_ns()


def sampler_overhead(meters: list[SamplerMeter], rate_hz: int) -> dict[str, Any]:
    """The manifest's ``overhead["cpu"]``: py-spy's CPU seconds / capture seconds.

    ``cpu_fraction`` is in cores (0.05 = 5% of one core; py-spy processes summed over the
    longest window); ``us_per_tick`` is CPU per sampling tick of one process (it reads
    every thread of its target at each tick). A process that could not be read at both
    ends is listed with an error and left out of the sums.
    """
    per_process: dict[str, dict[str, Any]] = {}
    cpu_s, window_s, startup_s, ticks = 0.0, 0.0, 0.0, 0.0
    for meter in meters:
        if meter.start_cpu_s is None or meter.end_cpu_s is None or meter.end_ns <= meter.start_ns:
            per_process[str(meter.pid)] = {
                "error": "py-spy process could not be read at the start and end of the window"
            }
            continue
        seconds = (meter.end_ns - meter.start_ns) / 1e9
        used = max(0.0, meter.end_cpu_s - meter.start_cpu_s)
        cpu_s += used
        window_s = max(window_s, seconds)
        startup_s += meter.start_cpu_s
        ticks += rate_hz * seconds
        per_process[str(meter.pid)] = {
            "cpu_s": round(used, 4),
            "window_s": round(seconds, 3),
            "cpu_fraction": round(used / seconds, 5),
            "startup_cpu_s": round(meter.start_cpu_s, 4),
        }
    result: dict[str, Any] = {
        "tool": "py-spy record --nonblocking",
        "rate_hz": rate_hz,
        "per_process": per_process,
        "how": OVERHEAD_HOW,
    }
    if window_s > 0:
        result.update(
            cpu_s=round(cpu_s, 4),
            capture_s=round(window_s, 3),
            cpu_fraction=round(cpu_s / window_s, 5),
            us_per_tick=round(cpu_s / ticks * 1e6, 1) if ticks else None,
            startup_cpu_s=round(startup_s, 4),
        )
    else:
        result["error"] = "no py-spy process could be measured"
    return result


WATCH_INTERVAL_S = 1.0  # how often the source looks for workers started mid-capture


class CpuSource(Source):
    """py-spy on each serving process (uvicorn/gunicorn workers, or the server itself).

    One py-spy per worker, not ``--subprocesses`` on the supervisor: py-spy's chrometrace
    keeps each thread's previous stack by thread id alone, and forked workers share the
    supervisor's pthread id, so their events interleave into stacks that grow without
    bound (a gunicorn arbiter's frames repeated ~124 times per stack). A worker that a
    supervisor starts during the window gets its own py-spy within a second."""

    name = "cpu"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.recorders: list[CpuRecorder] = []
        self.meters: list[SamplerMeter] = []
        self.failures: list[str] = []
        self._target: Any = None
        self._raw: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.thread_cpu: thread_cpu.ThreadCpuSampler | None = None

    def _serving(self) -> list[int]:
        port = url_port(self._target.url)
        found: set[int] = set()
        for pid in self._target.pids:
            try:
                found.update(serving_processes(pid, port))
            except DeskprofError:
                continue  # the supervisor is gone: the session notices
        return sorted(found)

    def _add(self, pids: list[int]) -> list[DeskprofError]:
        """Start py-spy on ``pids`` in parallel; the errors of those that did not start."""
        recorders = [CpuRecorder(pid, self._raw, self.options.cpu_rate) for pid in pids]
        if self.thread_cpu is not None:
            for pid in pids:  # before py-spy starts, so its first runs are covered
                self.thread_cpu.add(pid)
        errors: list[DeskprofError] = []
        with ThreadPoolExecutor(max_workers=max(1, len(recorders))) as pool:
            attempts = [(r, pool.submit(r.start)) for r in recorders]
        for recorder, attempt in attempts:
            try:
                attempt.result()
            except DeskprofError as exc:
                errors.append(exc)
                continue
            with self._lock:
                self.recorders.append(recorder)
                if recorder.process is not None:
                    self.meters.append(SamplerMeter.begin(recorder.process.pid))
        return errors

    def start(self, target: Any, writer: Any) -> None:
        self._target, self._raw = target, writer.raw
        if thread_cpu.available():
            self.thread_cpu = thread_cpu.ThreadCpuSampler().start()
        errors = self._add(self._serving())
        if not self.recorders:
            raise errors[0] if errors else DeskprofError("no serving process to sample")
        self.failures = [f"not sampled: {exc}" for exc in errors]
        self._watcher = threading.Thread(target=self._watch, name="cpu-workers", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            with self._lock:
                known = {r.pid for r in self.recorders}
            try:
                new = [pid for pid in self._serving() if pid not in known]
            except Exception:  # a vanishing process must not end the watcher
                continue
            if new and not self._stop.is_set():
                for exc in self._add(new):
                    self.failures.append(f"not sampled (started mid-capture): {exc}")

    def pending_bytes(self) -> int:
        """py-spy keeps its trace in memory and writes it at the end: its memory growth
        since it started is what will land in ``raw/`` (a close, conservative proxy)."""
        with self._lock:
            meters = list(self.meters)
        return sum(meter.grown_bytes() for meter in meters)

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=15)
        for meter in self.meters:  # before SIGINT: writing its file is not overhead
            meter.end()
        for recorder in self.recorders:
            recorder.stop()
        if self.thread_cpu is not None:
            self.thread_cpu.stop()

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        if self.meters:
            overhead = writer.manifest.overhead
            overhead["cpu"] = sampler_overhead(self.meters, self.options.cpu_rate)
        stacks: StackTable = context.setdefault("stacks", StackTable())
        frames, reasons = [], list(self.failures)
        anchors = writer.manifest.clock.setdefault("anchors", {})
        for recorder in self.recorders:
            try:
                result = recorder.result(stacks)
            except DeskprofError as exc:
                reasons.append(str(exc))
                continue
            frames.append(result.samples)
            anchors[f"py-spy:{recorder.pid}"] = {
                "ts_zero_ns": result.anchor_ns,
                "uncertainty_ms": result.anchor_uncertainty_ms,
                "note": "py-spy ts=0 taken as the wall-clock time just before it was spawned",
            }
            if result.partial_reason:
                reasons.append(result.partial_reason)
        if frames:
            import pandas as pd

            samples = pd.concat(frames, ignore_index=True)
            if self.thread_cpu is not None:
                samples = apply_os_state(samples, self.thread_cpu.series())
            writer.write_table("samples", samples)
            writer.write_stacks(stacks)
            decided = samples.groupby("state_from")["n_samples"].sum()
            state_counts = {str(k): int(v) for k, v in decided.items()}
        else:
            state_counts = {}
        writer.manifest.sources["cpu"] = {
            "tool": "py-spy record --nonblocking --idle --threads --format chrometrace, "
            "one per process",
            "rate_hz": self.options.cpu_rate,
            "pids": sorted(r.pid for r in self.recorders),
            "sampled": "each process that serves the target's port (workers, not their "
            "supervisor); workers started during the window from when they appeared",
            "state": STATE_HOW if self.thread_cpu is not None else STATE_HOW_LEAF,
            "state_samples": state_counts,
        }
        if self.thread_cpu is not None:
            writer.manifest.overhead.setdefault("cpu", {})["thread_cpu"] = {
                "deskprof_cpu_s": round(self.thread_cpu.own_cpu_s, 4),
                "reads": self.thread_cpu.reads,
                "interval_s": self.thread_cpu.interval_s,
            }
        return reasons
