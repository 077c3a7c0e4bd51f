"""System metrics of the target processes, sampled with psutil at about 10 Hz.

Child processes that appear during the capture (uvicorn restarting a worker) are picked
up on the next tick; processes that exit are noted, which is how the session learns that
its target died mid-capture.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import pandas as pd
import psutil

from deskprof.bundle.schema import columns


@dataclass
class _Previous:
    cpu_s: float
    ctx_vol: int
    ctx_invol: int
    ts_ns: int


@dataclass
class SystemSampler:
    """Background thread sampling ``pids`` (and, optionally, their children)."""

    pids: list[int]
    interval_s: float = 0.1
    include_children: bool = True
    rows: list[tuple] = field(default_factory=list)
    exited: dict[int, int] = field(default_factory=dict)  # pid -> ts_ns first seen gone
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _prev: dict[int, _Previous] = field(default_factory=dict)

    def start(self) -> SystemSampler:
        for pid in self.pids:
            self._procs[pid] = psutil.Process(pid)
        self._thread = threading.Thread(target=self._run, name="deskprof-system", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _discover_children(self) -> None:
        for proc in list(self._procs.values()):
            try:
                for child in proc.children(recursive=True):
                    self._procs.setdefault(child.pid, child)
            except psutil.Error:
                continue

    def _sample(self, pid: int, proc: psutil.Process, now_ns: int) -> None:
        try:
            with proc.oneshot():
                cpu = proc.cpu_times()
                mem = proc.memory_info()
                ctx = proc.num_ctx_switches()
                threads = proc.num_threads()
                fds = proc.num_fds()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            self.exited.setdefault(pid, now_ns)
            return
        except (psutil.AccessDenied, OSError):
            return
        cpu_s = cpu.user + cpu.system
        prev = self._prev.get(pid)
        self._prev[pid] = _Previous(cpu_s, ctx.voluntary, ctx.involuntary, now_ns)
        if prev is None:
            return  # the first reading only sets the baseline for deltas
        elapsed_s = max((now_ns - prev.ts_ns) / 1e9, 1e-9)
        self.rows.append(
            (
                now_ns,
                pid,
                100.0 * (cpu_s - prev.cpu_s) / elapsed_s,
                mem.rss,
                threads,
                fds,
                ctx.voluntary - prev.ctx_vol,
                ctx.involuntary - prev.ctx_invol,
            )
        )

    def _run(self) -> None:
        next_tick = time.monotonic()
        ticks = 0
        while not self._stop.is_set():
            if self.include_children and ticks % 10 == 0:
                # psutil races with exiting children; the next tick retries
                with contextlib.suppress(Exception):
                    self._discover_children()
            now_ns = time.time_ns()
            for pid, proc in list(self._procs.items()):
                if pid not in self.exited:
                    self._sample(pid, proc, now_ns)
            ticks += 1
            next_tick += self.interval_s
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    @property
    def all_exited(self) -> bool:
        return bool(self._procs) and all(pid in self.exited for pid in self._procs)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=columns("metrics"))
        return frame.astype(
            {
                "ts_ns": "int64",
                "pid": "int64",
                "cpu_percent": "float64",
                "rss_bytes": "int64",
                "threads": "int64",
                "fds": "int64",
                "ctx_voluntary": "int64",
                "ctx_involuntary": "int64",
            }
        )
