"""The ``cpu`` source: py-spy on every target PID for the capture window.

Overhead: py-spy samples from outside (``--nonblocking``: the target is never paused), so
what it costs the target is the CPU it takes from the same host. We measure exactly that
with psutil on each py-spy process: its CPU seconds between the moment it said it samples
and the moment we stop it, over the same wall-clock span, written to
``manifest["overhead"]["cpu"]``. Its start-up (reading the target's symbols) is reported
apart, and so is the time it spends writing its file after the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psutil

from deskprof.capture.cpu import CpuRecorder
from deskprof.capture.sources import Source
from deskprof.capture.stacks import StackTable

OVERHEAD_HOW = (
    "psutil user+system CPU of each py-spy process (and any children) from when it began "
    "sampling to when it was stopped, over that wall-clock span; start-up (symbol loading) "
    "reported apart. py-spy runs --nonblocking, so this is CPU taken from the host, not "
    "time the target was paused: it slows the target only when cores are scarce"
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

    @classmethod
    def begin(cls, pid: int) -> SamplerMeter:
        meter = cls(pid)
        try:
            meter.process = psutil.Process(pid)
        except psutil.Error:
            return meter
        meter.start_cpu_s = process_cpu_seconds(meter.process)
        meter.start_ns = time.time_ns()
        return meter

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


class CpuSource(Source):
    name = "cpu"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.recorders: list[CpuRecorder] = []
        self.meters: list[SamplerMeter] = []

    def start(self, target: Any, writer: Any) -> None:
        for pid in target.pids:
            # --subprocesses follows uvicorn/gunicorn workers of a supervisor PID
            recorder = CpuRecorder(pid, writer.raw, self.options.cpu_rate, subprocesses=True)
            self.recorders.append(recorder.start())
            if recorder.process is not None:
                self.meters.append(SamplerMeter.begin(recorder.process.pid))

    def stop(self) -> None:
        for meter in self.meters:  # before SIGINT: writing its file is not overhead
            meter.end()
        for recorder in self.recorders:
            recorder.stop()

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        if self.meters:
            overhead = writer.manifest.setdefault("overhead", {})
            overhead["cpu"] = sampler_overhead(self.meters, self.options.cpu_rate)
        stacks: StackTable = context.setdefault("stacks", StackTable())
        frames, reasons = [], []
        anchors = writer.manifest.setdefault("clock", {}).setdefault("anchors", {})
        for recorder in self.recorders:
            result = recorder.result(stacks)
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

            writer.write_table("samples", pd.concat(frames, ignore_index=True))
            writer.write_table("stacks", stacks.to_frame())
        writer.manifest.setdefault("sources", {})["cpu"] = {
            "tool": "py-spy record --nonblocking --idle --subprocesses --format chrometrace",
            "rate_hz": self.options.cpu_rate,
            "state": "leaf-frame classification (deskprof.capture.cpu.WAIT_LEAVES)",
        }
        return reasons
