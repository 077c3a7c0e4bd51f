"""CPU samples from py-spy, on the capture clock.

py-spy runs outside the target (``--nonblocking``: it never pauses it) and writes a
Chrome trace: begin/end events per frame, ``ts`` in microseconds since py-spy's own
start, identical consecutive stacks merged. We anchor ``ts = 0`` at the wall-clock time
just before py-spy was spawned (its recorder starts a few ms later; the measured spawn
to first-output delay is written to the manifest as the anchor's uncertainty) and turn
the trace into runs of one stack on one thread, each weighted by its sample count.

On-CPU vs waiting is the kernel's word where it has one: py-spy runs with ``--threads``,
which puts the native thread id in a root pseudo-frame (``thread (1234): name``, taken
off the stack here), and :mod:`deskprof.capturing.thread_cpu` reads that thread's CPU
counter through the window; a run is ``cpu`` when its thread was on a CPU or runnable
(waiting for one) for at least 5% of it and its leaf is not a known blocking call
(:func:`apply_os_state`; a thread idle in C is active well under 2% of the time, and a
short burst inside a sampling period and a 20 ms reading often well under half). py-spy's
record formats do not carry its own per-sample "active" flag. Where the kernel gave no
reading (not Linux, a thread that came and went between readings), the innermost
*Python* frame decides: ``wait`` when it is a known blocking call (``WAIT_LEAVES``),
``cpu`` otherwise, which cannot see a thread blocked in C with no Python wrapper. Each
row says which decided (``state_from``) and the manifest counts both.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from deskprof.bundle.schema import columns
from deskprof.bundle.stacks import StackTable
from deskprof.errors import DeskprofError, NoSuchProcess, PermissionDenied
from deskprof.processes import stop_gracefully
from deskprof.tools import require_tool

# (function name, file suffix or "" for any file): innermost frames that mean "blocked"
WAIT_LEAVES: frozenset[tuple[str, str]] = frozenset(
    {
        ("select", "selectors.py"),
        ("poll", "selectors.py"),
        ("_run_once", "base_events.py"),
        ("run", "runners.py"),  # uvloop: the event loop waits inside C below asyncio.run
        ("sleep", ""),
        ("wait", ""),  # Condition.wait, Event.wait, gunicorn's SyncWorker.wait (select)
        ("acquire", ""),
        ("_wait_for_tstate_lock", "threading.py"),
        ("join", "threading.py"),
        ("get", "queue.py"),
        ("accept", "socket.py"),
        ("recv", ""),
        ("recv_into", ""),
        ("readinto", "socket.py"),
        ("sendall", ""),
        ("connect", "socket.py"),
        ("create_connection", "socket.py"),
        # psycopg 3's Connection.wait (connection.py) and wait (waiting.py): "wait" above
        ("wait_conn", "waiting.py"),
        ("wait_selector", "waiting.py"),
        ("wait_epoll", "waiting.py"),
        ("wait_poll", "waiting.py"),
        ("read", "ssl.py"),
        ("_communicate", "subprocess.py"),
        ("_try_wait", "subprocess.py"),
        ("_recv", "connection.py"),  # multiprocessing pipe: uvicorn's supervisor waiting
        ("_recv_bytes", "connection.py"),
        ("main", "resource_tracker.py"),  # multiprocessing's resource tracker, idle
        ("close_graceful", "util.py"),  # gunicorn: waits for the client to close
    }
)
_WAIT_NAMES_ANY_FILE = {name for name, suffix in WAIT_LEAVES if not suffix}


def classify(function: str, filename: str) -> str:
    """``wait`` when this innermost frame is a blocking call, else ``cpu``.

    py-spy 0.4 qualifies methods (``Condition.wait``); the rules name the function."""
    function = function.rsplit(".", 1)[-1]
    if function in _WAIT_NAMES_ANY_FILE:
        return "wait"
    base = os.path.basename(filename)
    return "wait" if (function, base) in WAIT_LEAVES else "cpu"


THREAD_FRAME = re.compile(r"thread \((\d+)\)(?:: (.*))?$")
ACTIVE_SHARE_ON = 0.05  # a run is on CPU when its thread was active for at least this share


def _thread_frame(event: dict) -> tuple[int, str] | None:
    """``(native thread id, name)`` of py-spy's ``--threads`` pseudo-frame, else None."""
    if (event.get("args") or {}).get("filename"):
        return None
    match = THREAD_FRAME.match(event.get("name", ""))
    return (int(match.group(1)), match.group(2) or "") if match else None


def _frame_label(event: dict) -> str:
    args = event.get("args") or {}
    line = args.get("line")
    where = f"{args.get('filename', '')}:{line}" if line is not None else args.get("filename", "")
    return f"{event.get('name', '?')} ({where})"


def load_events(path: Path) -> tuple[list[dict], bool]:
    """The trace's events; a file cut short (py-spy killed) gives what parses, flagged."""
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        raise DeskprofError(f"{path} is empty: py-spy wrote no samples")
    try:
        return json.loads(text), False
    except json.JSONDecodeError:
        pass
    cut = text.rfind("},")
    if cut < 0:
        raise DeskprofError(f"{path} is not a py-spy chrome trace (truncated before any event)")
    try:
        return json.loads(text[: cut + 1] + "]"), True
    except json.JSONDecodeError as exc:
        raise DeskprofError(f"{path} is not a py-spy chrome trace: {exc}") from exc


def parse_chrometrace(
    events: list[dict], anchor_ns: int, rate_hz: int, stacks: StackTable
) -> pd.DataFrame:
    """Runs of one stack on one thread → rows of the ``samples`` table.

    Per thread we keep the open frames and the time they last changed; every event at a
    new timestamp closes the run of the stack that held since the last change.
    """
    native: dict[tuple[int, int], tuple[int, str]] = {}  # from the --threads frame
    open_frames: dict[tuple[int, int], list[tuple[str, str, str]]] = {}
    since: dict[tuple[int, int], int] = {}
    rows: list[tuple] = []
    period_us = 1e6 / rate_hz

    for event in events:
        key = (int(event.get("pid", 0)), int(event.get("tid", 0)))
        ts = int(event.get("ts", 0))
        frames = open_frames.setdefault(key, [])
        if frames and ts > since.get(key, ts):
            start = since[key]
            native_id, thread_name = native.get(key, (0, ""))
            rows.append(
                (
                    anchor_ns + start * 1000,
                    anchor_ns + ts * 1000,
                    max(1, round((ts - start) / period_us)),
                    key[0],
                    key[1],
                    native_id,
                    thread_name,
                    stacks.intern(tuple(label for label, _, _ in frames)),
                    classify(frames[-1][1], frames[-1][2]),
                    0.0,
                    0,
                    "leaf",
                )
            )
        if event.get("ph") == "B":
            thread = _thread_frame(event) if not frames else None
            if thread is not None:
                native[key] = thread  # the root of every stack of this thread: not a frame
            else:
                args = event.get("args") or {}
                label = _frame_label(event)
                frames.append((label, event.get("name", ""), args.get("filename", "")))
        elif frames:
            frames.pop()
        since[key] = ts
    frame = pd.DataFrame(rows, columns=columns("samples"))
    return frame.astype(
        {
            "ts_ns": "int64",
            "end_ns": "int64",
            "n_samples": "int64",
            "pid": "int64",
            "thread_id": "int64",
            "native_thread_id": "int64",
            "stack_id": "int64",
            "active_share": "float64",
            "cpu_ns": "int64",
        }
    )


@dataclass
class CpuResult:
    pid: int
    samples: pd.DataFrame
    anchor_ns: int
    anchor_uncertainty_ms: float | None
    partial_reason: str | None = None


@dataclass
class CpuRecorder:
    """py-spy against one PID for the capture window; ``stop()`` ends it early."""

    pid: int
    raw_dir: Path
    rate_hz: int = 100
    subprocesses: bool = False
    idle: bool = True
    process: subprocess.Popen | None = None
    anchor_ns: int = 0
    first_output_ns: int | None = None
    output: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.output = self.raw_dir / f"pyspy-{self.pid}.json"
        self.log = self.raw_dir / f"pyspy-{self.pid}.log"

    def start(self) -> CpuRecorder:
        pyspy = require_tool("py-spy")
        if not psutil.pid_exists(self.pid):
            raise NoSuchProcess(f"no process with PID {self.pid}")
        args = [pyspy, "record", "--pid", str(self.pid), "--rate", str(self.rate_hz)]
        args += ["--format", "chrometrace", "--output", str(self.output), "--nonblocking"]
        if self.idle:
            args.append("--idle")
        args.append("--threads")  # native thread ids, for the kernel's on-CPU counters
        if self.subprocesses:
            args.append("--subprocesses")
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as log:
            self.anchor_ns = time.time_ns()
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._check_started()
        return self

    def _check_started(self, timeout_s: float = 10.0) -> None:
        """Wait for py-spy to say it samples; map its failures to clear errors."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "Sampling process" in text:
                self.first_output_ns = time.time_ns()
                return
            if self.process is not None and self.process.poll() is not None:
                raise self._error(text)
            time.sleep(0.02)

    def _error(self, text: str) -> DeskprofError:
        lowered = text.lower()
        if "permission denied" in lowered or "operation not permitted" in lowered:
            return PermissionDenied(
                f"py-spy may not read PID {self.pid}: run as root or the target's user, "
                "or allow ptrace (sysctl kernel.yama.ptrace_scope=0)"
            )
        if "no such process" in lowered or "failed to find process" in lowered:
            return NoSuchProcess(f"no process with PID {self.pid}")
        last = [line for line in text.strip().splitlines() if line.strip()]
        return DeskprofError(f"py-spy failed on PID {self.pid}: {last[-1] if last else text}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGINT makes py-spy stop sampling and write its file."""
        stop_gracefully(self.process, signal.SIGINT, timeout_s)

    def result(self, stacks: StackTable) -> CpuResult:
        reason = None
        if not self.output.exists():
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise self._error(text or "no output file")
        events, truncated = load_events(self.output)
        if truncated:
            reason = f"{self.output.name} was cut short; kept the samples before the cut"
        log = self.log.read_text(errors="replace")
        if "process exited" in log.lower() or "process ended" in log.lower():
            reason = reason or f"PID {self.pid} exited while py-spy was sampling"
        samples = parse_chrometrace(events, self.anchor_ns, self.rate_hz, stacks)
        uncertainty = (
            (self.first_output_ns - self.anchor_ns) / 1e6 if self.first_output_ns else None
        )
        return CpuResult(self.pid, samples, self.anchor_ns, uncertainty, reason)


def apply_os_state(samples: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """``samples`` with ``active_share``, ``cpu_ns`` and ``state`` from the kernel's
    per-thread counters (``series``, :class:`~deskprof.capturing.thread_cpu.ThreadCpuSampler`)
    where they cover a run, ``state_from="os"`` there; the leaf-frame state elsewhere.

    ``state`` says whether the thread wanted a CPU (on one or runnable): the flame
    graph's shape. ``cpu_ns`` is the CPU time the kernel counted for the thread, shared
    among its on-CPU runs (:func:`~deskprof.capturing.thread_cpu.allocate_cpu_ns`): on
    a crowded host a busy thread waits in the run queue, so CPU *time* (per endpoint,
    per hot spot) is that, not the samples. A known blocking leaf stays
    ``wait`` even on a busy thread: the share is of the whole run, and a run of
    ``select`` on a thread that ran between its waits is still waiting."""
    from deskprof.capturing.thread_cpu import active_shares, allocate_cpu_ns

    out = samples.reset_index(drop=True).copy()
    active = active_shares(out, series, "active_ns")
    known = ~np.isnan(active)
    out["active_share"] = np.where(known, active, 0.0)
    running = known & (active >= ACTIVE_SHARE_ON) & (out["state"].to_numpy() == "cpu")
    out["state"] = np.where(known, np.where(running, "cpu", "wait"), out["state"].to_numpy())
    out["state_from"] = np.where(known, "os", "leaf")
    out["cpu_ns"] = allocate_cpu_ns(out, series, running).round().astype(np.int64)
    return out
