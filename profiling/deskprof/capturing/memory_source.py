"""The ``memory`` source: memray in every serving process for the capture window.

How memray gets in, in order: where the probe is in the target (``--launch``, ``deskprof
run``, ``deskprof.probe.install``) the probe starts ``memray.Tracker`` itself (no
debugger: ``deskprof.probe.memtrack``); elsewhere ``memray attach`` with the first method
proven on a scratch process of this host (``deskprof.capturing.attach_trial``), never an
unproven one. The method used for each process is in the manifest.

Which processes: for each target PID, the descendants that hold the listening socket of
the target URL's port (uvicorn ``--workers`` and gunicorn workers), else the PID itself
when it serves alone; with the probe, also a worker that starts serving during the
window. A launched target always has the probe (why not ``memray run``: see
``deskprof.capturing.memory``). Attaching takes about a second per process (gdb), so the
processes are attached, and later detached, in parallel.

A process memray cannot attach to is a warning and a partial reason while the others are
captured; when none can be attached the source does not start, and the session goes on
with the other sources and marks the bundle partial with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import psutil

from deskprof.bundle.stacks import StackTable
from deskprof.capturing.attach_trial import first_proven
from deskprof.capturing.memory import (
    MODES,
    SNAPSHOT_INTERVAL_MS,
    MemrayRecorder,
    QualnameIndex,
    TrackedFile,
    _let_target_write,
)
from deskprof.capturing.memory_inprocess import START_WAIT_S, STOP_WAIT_S, InProcessTracking
from deskprof.capturing.source import Source
from deskprof.capturing.target import serving_processes, url_port
from deskprof.errors import DeskprofError, ToolMissing
from deskprof.probe.bootstrap import launch_env_delta
from deskprof.probe.config import ENV_DIR, ProbeConfig
from deskprof.probe.memtrack import NOT_IMPORTABLE
from deskprof.tools import INSTALL_HINT, package_version, require_tool

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
            f"memray intercepts every allocation inside the target, however it got in; benchmarks/"
            f"capture_overhead.py --memray-mode {mode} measured the ticket list at p50 "
            f"x{measured['p50_ratio']} (95% CI {measured['p50_ci95']}) and server CPU per "
            f"request x{measured['server_cpu_per_request_ratio']} (95% CI "
            f"{measured['server_cpu_ci95']}) vs nothing attached ({measured['measured']})"
        )
    spans = [(size, max(0.0, seconds)) for size, seconds in written]
    return {
        "tool": "memray inside the target (its in-process tracker, or attached)",
        "mode": mode,
        "bytes_written": sum(size for size, _ in spans),
        "bytes_per_s": round(sum(size / seconds for size, seconds in spans if seconds > 0)),
        "tracked_s": round(max((seconds for _, seconds in spans), default=0.0), 3),
        "benchmark": measured,
        "note": note + "; run the benchmark on your host for its own figure",
    }


class MemorySource(Source):
    """memray in every serving process: from inside (the probe starts ``memray.Tracker``)
    wherever the probe is, by a proven attach method elsewhere, never by an unproven one."""

    name = "memory"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.inprocess: InProcessTracking | None = None
        self.recorders: list[MemrayRecorder] = []
        self.failures: list[str] = []  # partial reasons: a process not tracked, and why
        self.fallbacks: list[str] = []  # warnings: the probe could not, attaching instead
        self.methods: dict[int, str] = {}
        self.attach_errors: list[DeskprofError] = []
        self.trials: list[dict[str, Any]] = []

    def launch_env(self, raw_dir: Any) -> dict[str, str]:
        """A launched target gets the probe (switched off unless ``sql`` records) so that
        memray runs inside it; the ``sql`` source sets the same directory when chosen."""
        if "sql" in self.options.sources:
            return {}
        directory = (Path(raw_dir) / "probe").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        config = ProbeConfig(out_dir=str(directory), enabled=False)
        return launch_env_delta(config, self.options.launch_env)

    def start(self, target: Any, writer: Any) -> None:
        if self.options.memory_mode not in MODES:
            raise DeskprofError(
                f"--memory-mode must be one of {', '.join(MODES)}, got {self.options.memory_mode!r}"
            )
        try:
            import memray  # noqa: F401  (collect reads the files with memray.FileReader)
        except ImportError as exc:
            raise ToolMissing(f"memray not importable: {INSTALL_HINT['memray']}") from exc
        port = url_port(target.url)
        pids = sorted({w for pid in target.pids for w in serving_processes(pid, port)})
        remaining = list(pids)
        probe_dir = target.environ.get(ENV_DIR)
        if probe_dir and Path(probe_dir).is_dir():
            remaining = self._start_inprocess(Path(probe_dir), writer, pids)
        if remaining:
            self._attach(remaining, writer, in_target=bool(probe_dir))
        if not self.recorders and not (self.inprocess and self.inprocess.tracked):
            self._withdraw()
            if self.attach_errors:  # the attach's own words (ptrace, no such process...)
                raise self.attach_errors[0]
            raise DeskprofError(self.failures[0] if self.failures else "no process tracked")
        for failure in self.fallbacks + self.failures:
            writer.warn(f"memory: {failure}")

    def _start_inprocess(self, probe_dir: Path, writer: Any, pids: list[int]) -> list[int]:
        """Ask the probe in each process to track; the PIDs it could not cover."""
        _let_target_write(writer.raw, pids[0] if pids else os.getpid())
        tracking = InProcessTracking(
            probe_dir, writer.raw, self.options.memory_mode, self.options.duration_s
        )
        try:
            tracking.start(pids)
        except OSError as exc:
            self.fallbacks.append(
                f"cannot ask the probe in {probe_dir} to track ({exc.strerror}; run the "
                "capture as the target's user); trying to attach instead"
            )
            return pids
        self.inprocess = tracking
        for pid in tracking.tracked:
            self.methods[pid] = INPROCESS_METHOD
        remaining = []
        for pid, error in sorted(tracking.failed.items()):
            if error == NOT_IMPORTABLE:
                self.fallbacks.append(f"PID {pid}: {error}; trying to attach instead")
                remaining.append(pid)
            else:
                self.failures.append(f"not tracked: PID {pid}: {error}")
        for pid in tracking.silent:
            self.fallbacks.append(
                f"PID {pid} did not answer the probe's memray request within "
                f"{START_WAIT_S:g}s (no probe in it?); trying to attach instead"
            )
            remaining.append(pid)
        return remaining

    def _attach(self, pids: list[int], writer: Any, *, in_target: bool) -> None:
        """Attach to ``pids`` with the first method proven on a scratch process here."""
        try:
            require_tool("memray")
        except ToolMissing as exc:
            self.failures.append(str(exc))
            return
        python = _target_python(pids[0])
        if not has_memray(python):
            self.failures.append(
                f"the target's Python ({python}) has no memray: install it there "
                f"(`{python} -m pip install memray=={package_version('memray')}`), or capture "
                "without memory (--sources cpu,sql,system)"
            )
            return
        trial, trials = first_proven(python, _python_version(python))
        self.trials = [
            {"method": t.method, "ok": t.ok, "detail": t.detail, "cached": t.cached} for t in trials
        ]
        if trial is None:
            tried = "; ".join(f"{t.method}: {t.detail}" for t in trials) or (
                "no debugger found (gdb or lldb): " + INSTALL_HINT["gdb"]
            )
            advice = (
                "start the service under `deskprof run -- <command>` (memray then runs inside "
                "it, no debugger)"
                if not in_target
                else "install memray in the target's environment"
            )
            self.failures.append(
                f"memray cannot attach on this host ({tried}); not tried on PIDs "
                f"{', '.join(map(str, pids))}: {advice}, or capture without --sources memory"
            )
            return
        recorders = [
            MemrayRecorder(
                pid, writer.raw, self.options.memory_mode, self.options.duration_s, trial.method
            )
            for pid in pids
        ]
        with ThreadPoolExecutor(max_workers=len(recorders)) as pool:
            attempts = [(recorder, pool.submit(recorder.start)) for recorder in recorders]
        for recorder, attempt in attempts:
            try:
                attempt.result()
                self.recorders.append(recorder)
                self.methods[recorder.pid] = f"memray attach --method {trial.method}"
            except DeskprofError as exc:
                self.attach_errors.append(exc)
                self.failures.append(f"not tracked: {exc}")

    def _withdraw(self) -> None:
        if self.inprocess is not None:
            self.inprocess.withdraw()

    def stop(self) -> None:
        if self.inprocess is not None:
            self.inprocess.stop()
        if self.recorders:
            with ThreadPoolExecutor(max_workers=len(self.recorders)) as pool:
                list(pool.map(MemrayRecorder.stop, self.recorders))

    def _tracked(self) -> list[TrackedFile]:
        files = [
            TrackedFile(r.pid, r.output, r.attach_ns, r.detach_ns, r.exited, r.stop_problem)
            for r in self.recorders
        ]
        if self.inprocess is not None:
            for t in sorted(self.inprocess.tracked.values(), key=lambda t: t.pid):
                self.methods.setdefault(t.pid, INPROCESS_METHOD)
                problem = None
                if t.state == "tracking":
                    problem = (
                        f"PID {t.pid} did not stop tracking within {STOP_WAIT_S:g}s; its "
                        "deadline ends it"
                    )
                elif t.error:
                    problem = f"PID {t.pid}: {t.error}"
                files.append(TrackedFile(t.pid, t.output, t.start_ns, t.stop_ns, t.exited, problem))
        return files

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        tracked = self._tracked()
        if not tracked:
            return []  # the session already recorded why the source did not start
        written = [
            (f.output.stat().st_size if f.output.exists() else 0, (f.stop_ns - f.start_ns) / 1e9)
            for f in tracked
        ]
        overhead = writer.manifest.overhead
        overhead["memory"] = overhead_estimate(self.options.memory_mode, written)
        stacks: StackTable = context.setdefault("stacks", StackTable())
        qualnames = QualnameIndex()
        anchors = writer.manifest.clock.setdefault("anchors", {})
        reasons = list(self.failures)
        memory, allocations = [], []
        for entry in tracked:
            result = entry.result(stacks, qualnames, context["end_ns"])
            anchors[f"memray:{entry.pid}"] = result.anchor
            memory.append(result.memory)
            allocations.append(result.allocations)
            for warning in result.warnings:
                writer.warn(f"memory: {warning}")
            if result.partial_reason:
                reasons.append(result.partial_reason)
        writer.write_table("memory", pd.concat(memory, ignore_index=True))
        writer.write_table("allocations", pd.concat(allocations, ignore_index=True))
        writer.write_stacks(stacks)
        import memray

        aggregate = self.options.memory_mode == "aggregate"
        methods = sorted(set(self.methods.values()))
        writer.manifest.sources["memory"] = {
            "tool": " + ".join(methods)
            + " (--no-compress"
            + (", aggregated)" if aggregate else ")"),
            "version": memray.__version__,
            "mode": self.options.memory_mode,
            "pids": [entry.pid for entry in tracked],
            "method": {str(pid): self.methods[pid] for pid in sorted(self.methods)},
            "attach_trials": self.trials,
            "snapshot_interval_ms": SNAPSHOT_INTERVAL_MS,
            "native_frames": False,
            "tracked": "allocations made while tracked; frees of older memory are ignored",
            "kinds": ["high_water_mark", "leaked"] + ([] if aggregate else ["temporal"]),
            "temporal": "lifetime intervals aligned on snapshots; memory freed within one "
            "snapshot interval has no temporal row",
        }
        return reasons


INPROCESS_METHOD = "in-process memray.Tracker (deskprof probe)"


def _target_python(pid: int) -> str:
    """The interpreter of ``pid`` as its environment knows it (the scratch process of an
    attach trial runs it): the command's own ``.../venv/bin/python``, since ``exe`` is
    the resolved binary every virtual environment on that Python shares, without the
    venv's packages (memray among them)."""
    try:
        process = psutil.Process(pid)
        exe = process.exe()
        argv0 = (process.cmdline() or [""])[0]
        cwd = process.cwd()
    except psutil.Error:
        return sys.executable
    if argv0 and "python" in Path(argv0).name:
        candidate = Path(argv0) if Path(argv0).is_absolute() else Path(cwd) / argv0
        if candidate.exists():
            return str(candidate)
    return exe if exe and "python" in Path(exe).name else sys.executable


def has_memray(python: str) -> bool:
    """Whether ``python`` can import memray (its own environment's, not deskprof's)."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return True
    try:
        done = subprocess.run(
            [python, "-c", "import memray"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _python_version(python: str) -> tuple[int, int]:
    if python == sys.executable:
        return sys.version_info[:2]
    match = re.search(r"python(\d)\.(\d+)", Path(python).name)
    return (int(match.group(1)), int(match.group(2))) if match else sys.version_info[:2]
