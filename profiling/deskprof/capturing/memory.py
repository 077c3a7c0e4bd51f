"""Memory from memray in each serving process for the capture window: attaching, and
reading what memray wrote (whichever way it got in).

Where the probe is in the target, memray's tracker is started from inside
(``deskprof.probe.memtrack``, ``deskprof.capturing.memory_inprocess``) and this module only
reads its files. Otherwise: ``memray attach`` with a method proven on this host
(``deskprof.capturing.attach_trial``; gdb or lldb injects memray's tracker into the live
interpreter) on every process that serves requests, ``--output`` a file under ``raw/``,
``--no-compress`` (lz4 compression would run inside the target at detach time, on its
CPU), ``--aggregate`` when ``CaptureOptions.memory_mode == "aggregate"``, and
``--duration`` set a little past the capture window as a safety net: if deskprof dies,
the target stops tracking by itself. The session's ``stop()`` ends it with ``memray
detach`` (which also cancels that timer), so tracking never outlives the capture.

Launched targets are attached the same way once they answer, not wrapped in ``memray
run``: uvicorn ``--workers N`` *spawns* its workers (fork + exec of a fresh interpreter),
which ``memray run --follow-fork`` does not follow, and the session collects before it
stops a launched target, so a ``memray run`` file would still be open when read. Attaching
also gives both modes the same window: only what happened during the capture.

Reading goes through memray's one API, ``memray.FileReader``:

- snapshots (every 10 ms: RSS and the tracked heap) → the ``memory`` table. memray
  stamps them in epoch milliseconds from the host's wall clock: the anchor is a unit
  change (x 1e6, no offset), written to the manifest like py-spy's.
- high-water-mark and leaked allocations by stack → ``allocations`` rows of kind
  ``high_water_mark`` / ``leaked`` (``ts_ns = end_ns =`` capture end, as the schema says).
  "Leaked" means allocated while attached and not freed when tracking stopped.
- temporal records (full mode only; memray cannot rebuild history from an aggregated
  file) → kind ``temporal``, one row per lifetime interval, aligned on snapshots:
  ``ts_ns`` is the first snapshot at which the memory was live, ``end_ns`` the first at
  which it was freed (capture end if never). So the rows live at a snapshot (``ts_ns <=
  t < end_ns``) add up to that snapshot's ``heap_bytes``. Allocations freed within one
  10 ms interval never show in a snapshot and have no temporal row.

Stacks: memray lists Python frames innermost first with the code object's ``co_name``;
py-spy (the CPU source) names frames by ``co_qualname`` (``Server.run``). We reverse to
root first and recover the qualified name by compiling the frame's source file
(``QualnameIndex``), so a frame that burns CPU and allocates is the same stack row.

Limits: only allocations made while attached are tracked (frees of older memory are
ignored), so ``heap_bytes`` starts near zero; a worker that a supervisor restarts during
the capture is a new PID and is not tracked; in aggregate mode memray writes its file at
detach, so a worker that dies mid-capture leaves nothing to read.
"""

from __future__ import annotations

import _imp
import importlib.util
import logging
import marshal
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

import pandas as pd
import psutil

from deskprof.bundle.schema import columns
from deskprof.bundle.stacks import StackTable
from deskprof.errors import DeskprofError, NoSuchProcess, PermissionDenied, ToolMissing
from deskprof.tools import INSTALL_HINT, find_tool, require_tool

SNAPSHOT_INTERVAL_MS = 10  # memray.Tracker's default memory_interval_ms (what attach uses)
SAFETY_MARGIN_S = 30  # the in-target timer fires this long after the window if we never detach
COMMAND_TIMEOUT_S = 60.0
CUT_GAP_MS = 500  # 50 missed snapshots before the header's end time: the file's tail is gone
MAX_TEMPORAL_ROWS = 500_000  # per process; the largest intervals are kept past this
MODES = ("full", "aggregate")


# --- running memray -------------------------------------------------------------------------


def attach_command(
    memray: str, pid: int, output: Path, mode: str, window_s: float, method: str = "gdb"
) -> list[str]:
    """``memray attach`` for one PID: all allocations or aggregated, Python frames only."""
    if mode not in MODES:
        raise DeskprofError(f"--memory-mode must be one of {', '.join(MODES)}, got {mode!r}")
    safety_s = math.ceil(window_s) + SAFETY_MARGIN_S
    args = [memray, "attach", "--method", method, "--output", str(output), "--no-compress"]
    args += ["--duration", str(safety_s)]
    if mode == "aggregate":
        args.append("--aggregate")
    return [*args, str(pid)]


def attach_error(pid: int, output: str) -> DeskprofError:
    """memray's (and gdb's) words for a failed attach → one line that says what to do."""
    text = output.lower()
    last = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if "does not exist" in text or "no such process" in text:
        return NoSuchProcess(f"no process with PID {pid}")
    if "ptrace" in text or "permission to trace" in text or "different user" in text:
        return PermissionDenied(
            f"memray (gdb) may not attach to PID {pid}: run as root or the target's user, "
            "allow ptrace (sysctl kernel.yama.ptrace_scope=0), or add CAP_SYS_PTRACE"
        )
    if "find a supported gdb" in text:
        return ToolMissing(f"gdb not found: {INSTALL_HINT['gdb']}")
    if "python 3.7 or newer" in text:
        return ToolMissing(f"PID {pid} is not a Python process memray can attach to")
    if "no module named 'memray'" in text or "memray shared library" in text:
        return ToolMissing(
            f"PID {pid}'s Python cannot load memray: install memray (the version deskprof "
            "uses) in the target's environment, readable by its user"
        )
    if "permission denied" in text:
        return PermissionDenied(
            f"PID {pid} may not write its memray file: make the bundle directory writable "
            "by the target's user"
        )
    return DeskprofError(f"memray attach failed on PID {pid}: {last[-1] if last else 'no output'}")


def _run_memray(args: list[str], pid: int, method: str = "gdb") -> tuple[int | None, str]:
    """Run a memray attach/detach command in its own session (Ctrl-C on the terminal must
    not interrupt gdb mid-attach); a timeout kills it and resumes the target, which a
    killed gdb can leave stopped."""
    env = dict(os.environ)
    debugger = find_tool(method) if method in ("gdb", "lldb") else None
    if debugger:  # memray runs the debugger from PATH: make it the one deskprof found
        env["PATH"] = f"{Path(debugger).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        hint = INSTALL_HINT["memray"]
        raise ToolMissing(f"cannot run {args[0]} ({exc.strerror}): {hint}") from exc
    try:
        output, _ = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        with suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        with suppress(OSError):
            os.kill(pid, signal.SIGCONT)
        return None, output + f"\ntimed out after {COMMAND_TIMEOUT_S:g}s"


@dataclass
class MemrayRecorder:
    """memray attached to one PID between ``start()`` and ``stop()``."""

    pid: int
    raw_dir: Path
    mode: str = "full"
    window_s: float = 30.0
    method: str = "gdb"  # one proven on this host (deskprof.capturing.attach_trial)
    attach_ns: int = 0
    detach_ns: int = 0
    exited: bool = False
    stop_problem: str | None = None
    output: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.output = self.raw_dir / f"memray-{self.pid}.bin"
        self.log = self.raw_dir / f"memray-{self.pid}.log"

    def start(self) -> MemrayRecorder:
        memray = require_tool("memray")
        if not psutil.pid_exists(self.pid):
            raise NoSuchProcess(f"no process with PID {self.pid}")
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        _let_target_write(self.raw_dir, self.pid)
        args = attach_command(memray, self.pid, self.output, self.mode, self.window_s, self.method)
        self.attach_ns = time.time_ns()
        code, output = _run_memray(args, self.pid, self.method)
        self.log.write_text(f"$ {' '.join(args)}\n{output}")
        if code != 0:
            self.attach_ns = 0
            raise attach_error(self.pid, output)
        return self

    def stop(self) -> None:
        """Detach (the target writes and closes its file); a PID that is gone is noted."""
        if not self.attach_ns or self.detach_ns:
            return
        self.detach_ns = time.time_ns()
        if not psutil.pid_exists(self.pid):
            self.exited = True
            return
        args = [require_tool("memray"), "detach", "--method", self.method, str(self.pid)]
        code, output = _run_memray(args, self.pid, self.method)
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(args)}\n{output}")
        self.detach_ns = time.time_ns()
        if code == 0 or "no previous `memray attach`" in output:  # the safety timer won
            return
        if not psutil.pid_exists(self.pid):
            self.exited = True
            return
        self.stop_problem = (
            f"memray detach failed on PID {self.pid} ({attach_error(self.pid, output)}); "
            f"its tracking ends by itself {SAFETY_MARGIN_S}s after the window"
        )


@dataclass
class TrackedFile:
    """One process's memray file and its window, however memray got in (attach or the
    in-process tracker): what ``collect`` reads."""

    pid: int
    output: Path
    start_ns: int
    stop_ns: int
    exited: bool = False
    stop_problem: str | None = None

    def result(self, stacks: StackTable, qualnames: QualnameIndex, end_ns: int) -> MemoryResult:
        result = read_capture(self.output, self.pid, stacks, qualnames, end_ns)
        result.anchor.update(attach_ns=self.start_ns, detach_ns=self.stop_ns)
        if self.exited:
            result.partial_reason = (
                f"PID {self.pid} exited while memray tracked it; kept what it wrote"
                + (f" ({result.partial_reason})" if result.partial_reason else "")
            )
        elif self.stop_problem and not result.partial_reason:
            result.partial_reason = self.stop_problem
        return result


def _let_target_write(raw_dir: Path, pid: int) -> None:
    """The target writes its own memray file: when deskprof runs as root against another
    user's process, hand that user the raw directory."""
    if os.geteuid() != 0:
        return
    with suppress(psutil.Error, OSError):
        uid = psutil.Process(pid).uids().effective
        if uid != 0 and raw_dir.stat().st_uid != uid:
            os.chown(raw_dir, uid, -1)


# --- reading a memray file into bundle rows -----------------------------------------------


class QualnameIndex:
    """``co_qualname`` for memray's (file, ``co_name``, line), as py-spy names frames.

    Each source file is compiled once; the code object named ``function`` whose line
    table holds ``line`` gives the qualified name. Files that cannot be read or compiled
    (``<frozen ...>``, ``<string>``, another Python's syntax) keep memray's name."""

    def __init__(self) -> None:
        self._files: dict[str, dict[str, list[tuple[frozenset[int], str]]]] = {}

    def qualname(self, filename: str, function: str, line: int) -> str:
        table = self._files.get(filename)
        if table is None:
            table = self._files[filename] = _code_table(filename)
        candidates = table.get(function, [])
        for lines, qualname in candidates:
            if line in lines:
                return qualname
        return candidates[0][1] if len(candidates) == 1 else function


_FROZEN_ALIASES = {
    "importlib._bootstrap": "_frozen_importlib",
    "importlib._bootstrap_external": "_frozen_importlib_external",
}


def _module_code(filename: str) -> CodeType | None:
    """The module's code object: frozen in this interpreter (``<frozen runpy>``), from its
    ``.pyc`` when that is current (as the import system checks it: source mtime and
    size), else compiled from the source."""
    if filename.startswith("<frozen ") and filename.endswith(">"):
        name = filename[len("<frozen ") : -1]
        with suppress(ImportError):
            return _imp.get_frozen_object(_FROZEN_ALIASES.get(name, name))
        return None
    with suppress(OSError, ValueError, EOFError, NotImplementedError):
        cached = Path(importlib.util.cache_from_source(filename)).read_bytes()
        source = Path(filename).stat()
        header = [int.from_bytes(cached[i : i + 4], "little") for i in (4, 8, 12)]
        if cached[:4] == importlib.util.MAGIC_NUMBER and header == [
            0, int(source.st_mtime) & 0xFFFFFFFF, source.st_size & 0xFFFFFFFF,
        ]:  # fmt: skip
            code = marshal.loads(cached[16:])
            if isinstance(code, CodeType):
                return code
    try:
        return compile(Path(filename).read_bytes(), filename, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return None


def _code_table(filename: str) -> dict[str, list[tuple[frozenset[int], str]]]:
    code = _module_code(filename)
    if code is None:
        return {}
    table: dict[str, list[tuple[frozenset[int], str]]] = {}
    pending = [code]
    while pending:
        code = pending.pop()
        lines = frozenset(line for _, _, line in code.co_lines() if line is not None)
        table.setdefault(code.co_name, []).append((lines, code.co_qualname))
        pending.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return table


@dataclass
class MemoryResult:
    pid: int
    memory: pd.DataFrame
    allocations: pd.DataFrame
    anchor: dict[str, Any]
    partial_reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def frame_labels(trace: Iterable[tuple[str, str, int]], qualnames: QualnameIndex) -> tuple:
    """memray's frames (innermost first, ``co_name``) → root-first ``"qualname (file:line)"``
    labels, the CPU source's format."""
    labels = [
        f"{qualnames.qualname(filename, function, line)} ({filename}:{line})"
        for function, filename, line in trace
    ]
    return tuple(reversed(labels))


def allocator_name(code: int) -> str:
    import memray

    try:
        return memray.AllocatorType(code).name.lower()
    except ValueError:
        return str(code)


def snapshot_frame(pid: int, snapshots: Iterable[Any]) -> pd.DataFrame:
    """memray snapshots (epoch ms) → the ``memory`` table."""
    rows = [(s.time * 1_000_000, pid, s.rss, s.heap) for s in snapshots]
    return pd.DataFrame(rows, columns=columns("memory")).astype("int64")


def aggregate_rows(
    pid: int, kind: str, records: Iterable[Any], stack_id: Callable[[Any], int], at_ns: int
) -> list[tuple]:
    """High-water-mark or leaked records (one per stack and allocator) → rows."""
    return [
        (pid, kind, at_ns, at_ns, stack_id(r), allocator_name(r.allocator), r.size, r.n_allocations)
        for r in records
    ]


def temporal_rows(
    pid: int,
    records: Iterable[Any],
    stack_id: Callable[[Any], int],
    snapshot_ns: list[int],
    tracking_end_ns: int,
    end_ns: int,
) -> list[tuple]:
    """Lifetime intervals → rows aligned on snapshots (see the module docstring).

    An interval's ``allocated_before_snapshot = a`` counts the snapshots taken before the
    allocation, so the memory is first seen live at snapshot ``a``; freed before snapshot
    ``d`` (``None``: never freed while tracked)."""

    def at(index: int | None, past_end: int) -> int:
        return snapshot_ns[index] if index is not None and index < len(snapshot_ns) else past_end

    rows = []
    for record in records:
        sid, allocator = stack_id(record), allocator_name(record.allocator)
        for iv in record.intervals:
            start = at(iv.allocated_before_snapshot, tracking_end_ns)
            stop = max(start, at(iv.deallocated_before_snapshot, end_ns))
            row = (pid, "temporal", start, stop, sid, allocator, iv.n_bytes, iv.n_allocations)
            rows.append(row)
    return rows


def completeness(start_ms: int, end_ms: int, snapshot_ms: list[int]) -> str | None:
    """Why a memray file is not whole, from its header times and its snapshots: memray
    rewrites the header's end time when tracking stops, and writes a snapshot every 10 ms."""
    if not snapshot_ms:
        return "memray wrote no memory snapshots"
    last = snapshot_ms[-1]
    if end_ms < last:
        return "memray did not finish its file (tracking never stopped cleanly)"
    if end_ms - last > CUT_GAP_MS:
        return f"the file is cut short {(end_ms - last) / 1000:.1f}s before tracking ended"
    return None


def _ms(moment: Any) -> int:
    return round(moment.timestamp() * 1000)


def read_capture(
    path: Path, pid: int, stacks: StackTable, qualnames: QualnameIndex, end_ns: int
) -> MemoryResult:
    """One memray file → ``memory`` and ``allocations`` rows, reading what can be read."""
    try:
        import memray
    except ImportError as exc:
        raise ToolMissing(f"memray not importable: {INSTALL_HINT['memray']}") from exc

    empty = MemoryResult(pid, snapshot_frame(pid, []), _allocations_frame([]), {})
    if not path.exists() or path.stat().st_size == 0:
        empty.partial_reason = f"PID {pid}: memray wrote nothing to {path.name}"
        return empty
    memray.set_log_level(logging.CRITICAL)  # a cut file makes memray log; we say it once
    try:
        reader = memray.FileReader(path)
    except OSError as exc:
        empty.partial_reason = f"PID {pid}: cannot read {path.name} ({exc})"
        return empty
    finally:
        memray.set_log_level(logging.WARNING)
    warnings = []
    with reader:
        meta = reader.metadata
        snapshots = list(reader.get_memory_snapshots())
        snapshot_ms = [s.time for s in snapshots]
        reason = completeness(_ms(meta.start_time), _ms(meta.end_time), snapshot_ms)
        tracking_end_ns = max([_ms(meta.end_time), *snapshot_ms]) * 1_000_000

        def stack_id(record: Any) -> int:
            return stacks.intern(frame_labels(record.stack_trace(), qualnames))

        rows = aggregate_rows(
            pid, "high_water_mark", reader.get_high_watermark_allocation_records(), stack_id,
            end_ns,
        )  # fmt: skip
        rows += aggregate_rows(
            pid, "leaked", reader.get_leaked_allocation_records(), stack_id, end_ns
        )
        aggregated = meta.file_format == memray.FileFormat.AGGREGATED_ALLOCATIONS
        if not aggregated:
            temporal = temporal_rows(
                pid, reader.get_temporal_allocation_records(merge_threads=True), stack_id,
                [ms * 1_000_000 for ms in snapshot_ms], tracking_end_ns, end_ns,
            )  # fmt: skip
            if len(temporal) > MAX_TEMPORAL_ROWS:
                warnings.append(
                    f"PID {pid}: kept the {MAX_TEMPORAL_ROWS} largest of {len(temporal)} "
                    "temporal intervals (use --memory-mode aggregate for long captures)"
                )
                temporal.sort(key=lambda row: row[6], reverse=True)
                del temporal[MAX_TEMPORAL_ROWS:]
            rows += temporal
    anchor = {
        "unit": "epoch_ms",
        "to_ns": "x 1e6, no offset (memray stamps snapshots with the host's wall clock)",
        "tracking_start_ns": _ms(meta.start_time) * 1_000_000,
        "tracking_end_ns": tracking_end_ns,
        "snapshot_interval_ms": SNAPSHOT_INTERVAL_MS,
        "file_format": "aggregated" if aggregated else "all_allocations",
    }
    return MemoryResult(
        pid,
        snapshot_frame(pid, snapshots),
        _allocations_frame(rows),
        anchor,
        f"PID {pid}: {reason}; kept what was readable" if reason else None,
        warnings,
    )


def _allocations_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns("allocations"))
    return frame.astype(
        {
            "pid": "int64",
            "ts_ns": "int64",
            "end_ns": "int64",
            "stack_id": "int64",
            "size_bytes": "int64",
            "n_allocations": "int64",
        }
    )
