"""The ``memory`` source: memray attached to every serving process for the capture window.

Which processes: for each target PID, the descendants that hold the listening socket of
the target URL's port (uvicorn ``--workers`` and gunicorn workers), else the PID itself
when it serves alone. A launched target is attached the same way once it answers (why
not ``memray run``: see ``deskprof.capture.memory``). Attaching takes about a second per
process (gdb), so the processes are attached, and later detached, in parallel.

A process memray cannot attach to is a warning and a partial reason while the others are
captured; when none can be attached the source does not start, and the session goes on
with the other sources and marks the bundle partial with the reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import psutil

from deskprof.capture.memory import SNAPSHOT_INTERVAL_MS, MemrayRecorder, QualnameIndex
from deskprof.capture.sources import Source
from deskprof.capture.stacks import StackTable
from deskprof.capture.target import check_pid, python_workers
from deskprof.errors import DeskprofError, ToolMissing
from deskprof.tools import INSTALL_HINT, require_tool


def serving_processes(pid: int, port: int | None) -> list[int]:
    """The processes that answer requests for ``pid``: its descendants listening on
    ``port``, else ``pid`` when it listens, else its Python children (or itself)."""
    proc = check_pid(pid)
    if port is not None:
        listening = [p.pid for p in proc.children(recursive=True) if _listens(p, port)]
        if listening:
            return sorted(listening)
        if _listens(proc, port):
            return [pid]
    return python_workers(pid)


def _listens(proc: psutil.Process, port: int) -> bool:
    try:
        sockets = proc.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets)


def url_port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


# What benchmarks/capture_overhead.py measured with memray attached to the reference
# OpenDesk's ticket list (one worker, SQLite small data) vs nothing attached, per mode:
# ratios with their 95% CIs. memray runs inside the target, so a capture cannot measure
# its cost apart; it cites these.
BENCHMARK: dict[str, dict[str, Any]] = {
    "full": {
        "p50_ratio": 1.72,
        "p50_ci95": [1.13, 5.52],
        "server_cpu_per_request_ratio": 2.07,
        "server_cpu_ci95": [1.96, 2.16],
        "measured": "2026-11-24, 8 rounds, 2 CPUs shared with other work (load average 7)",
    },
    "aggregate": {
        "p50_ratio": 1.66,
        "p50_ci95": [1.17, 3.44],
        "server_cpu_per_request_ratio": 2.08,
        "server_cpu_ci95": [1.88, 2.23],
        "measured": "2026-11-24, 8 rounds, 2 CPUs shared with other work (load average 5)",
    },
}


def overhead_estimate(mode: str, written: list[tuple[int, float]]) -> dict[str, Any]:
    """The manifest's ``overhead["memory"]``: the mode, what this capture's memray files
    grew by per second of tracking (``written``: bytes and seconds per process), and a note
    with the benchmark's measured cost of memray in that mode on the reference service."""
    measured = BENCHMARK.get(mode)
    if measured is None:
        note = f"memray {mode} mode has no benchmark figure"
    else:
        note = (
            f"memray intercepts every allocation inside the target; benchmarks/"
            f"capture_overhead.py --memray-mode {mode} measured the ticket list at p50 "
            f"x{measured['p50_ratio']} (95% CI {measured['p50_ci95']}) and server CPU per "
            f"request x{measured['server_cpu_per_request_ratio']} (95% CI "
            f"{measured['server_cpu_ci95']}) vs nothing attached ({measured['measured']})"
        )
    spans = [(size, max(0.0, seconds)) for size, seconds in written]
    return {
        "tool": "memray attach (in the target)",
        "mode": mode,
        "bytes_written": sum(size for size, _ in spans),
        "bytes_per_s": round(sum(size / seconds for size, seconds in spans if seconds > 0)),
        "tracked_s": round(max((seconds for _, seconds in spans), default=0.0), 3),
        "benchmark": measured,
        "note": note + "; run the benchmark on your host for its own figure",
    }


class MemorySource(Source):
    name = "memory"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.recorders: list[MemrayRecorder] = []
        self.failures: list[str] = []

    def start(self, target: Any, writer: Any) -> None:
        require_tool("memray")
        require_tool("gdb")
        try:
            import memray  # noqa: F401  (collect reads the files with memray.FileReader)
        except ImportError as exc:
            raise ToolMissing(f"memray not importable: {INSTALL_HINT['memray']}") from exc
        port = url_port(target.url)
        pids = sorted({w for pid in target.pids for w in serving_processes(pid, port)})
        recorders = [
            MemrayRecorder(pid, writer.raw, self.options.memory_mode, self.options.duration_s)
            for pid in pids
        ]
        with ThreadPoolExecutor(max_workers=len(recorders)) as pool:
            attempts = [(recorder, pool.submit(recorder.start)) for recorder in recorders]
        errors: list[DeskprofError] = []
        for recorder, attempt in attempts:
            try:
                attempt.result()
                self.recorders.append(recorder)
            except DeskprofError as exc:
                errors.append(exc)
        if not self.recorders:
            raise errors[0]
        self.failures = [f"not tracked: {exc}" for exc in errors]
        for failure in self.failures:
            writer.warn(f"memory: {failure}")

    def stop(self) -> None:
        if self.recorders:
            with ThreadPoolExecutor(max_workers=len(self.recorders)) as pool:
                list(pool.map(MemrayRecorder.stop, self.recorders))

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        if not self.recorders:
            return []  # the session already recorded why the source did not start
        written = [
            (r.output.stat().st_size if r.output.exists() else 0, (r.detach_ns - r.attach_ns) / 1e9)
            for r in self.recorders
        ]
        overhead = writer.manifest.setdefault("overhead", {})
        overhead["memory"] = overhead_estimate(self.options.memory_mode, written)
        stacks: StackTable = context.setdefault("stacks", StackTable())
        qualnames = QualnameIndex()
        anchors = writer.manifest.setdefault("clock", {}).setdefault("anchors", {})
        reasons = list(self.failures)
        memory, allocations = [], []
        for recorder in self.recorders:
            result = recorder.result(stacks, qualnames, context["end_ns"])
            anchors[f"memray:{recorder.pid}"] = result.anchor
            memory.append(result.memory)
            allocations.append(result.allocations)
            for warning in result.warnings:
                writer.warn(f"memory: {warning}")
            if result.partial_reason:
                reasons.append(result.partial_reason)
        writer.write_table("memory", pd.concat(memory, ignore_index=True))
        writer.write_table("allocations", pd.concat(allocations, ignore_index=True))
        writer.write_table("stacks", stacks.to_frame())
        import memray

        aggregate = self.options.memory_mode == "aggregate"
        writer.manifest.setdefault("sources", {})["memory"] = {
            "tool": "memray attach --method gdb --no-compress"
            + (" --aggregate" if aggregate else ""),
            "version": memray.__version__,
            "mode": self.options.memory_mode,
            "pids": [recorder.pid for recorder in self.recorders],
            "snapshot_interval_ms": SNAPSHOT_INTERVAL_MS,
            "native_frames": False,
            "tracked": "allocations made while attached; frees of older memory are ignored",
            "kinds": ["high_water_mark", "leaked"] + ([] if aggregate else ["temporal"]),
            "temporal": "lifetime intervals aligned on snapshots; memory freed within one "
            "snapshot interval has no temporal row",
        }
        return reasons
