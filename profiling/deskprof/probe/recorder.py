"""The probe's output: a bounded in-memory buffer, flushed to one JSON-lines file per process.

Hooks run on the application's request path, so they only append a dict to a deque;
serialising and writing happen on a daemon thread every 0.25 s (and at exit, and on
``close()``). Memory is bounded by ``max_records`` and disk by ``max_bytes``; a record
that does not fit is counted as dropped, never silently lost, and the counts are written
as ``probe_stats`` lines that a capture reads (the last one per pid)::

    {"kind": "probe_stats", "pid": 1234, "ts_ns": ..., "written": 812, "dropped": 0,
     "errors": 0, "active": true}

One file per process (``probe-<pid>.jsonl``) because servers run several workers: no
locking between processes, and a forked child starts its own file and flush thread.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any

from deskprof.probe import control
from deskprof.probe.config import DEFAULT_MAX_BYTES, DEFAULT_MAX_RECORDS, FLUSH_INTERVAL_S
from deskprof.probe.memtrack import MemoryTracking

log = logging.getLogger("deskprof.probe")

STATS_KIND = "probe_stats"
STATS_INTERVAL_S = 1.0  # at most one stats line a second while counts change...
STATS_INTERVAL_CAPPED_S = 10.0  # ...and one every 10 s once the byte cap is reached
REOPEN_AFTER_S = 5.0  # an unwritable directory is retried this often, not every flush
LOGGED_ERRORS = 3  # the first few internal errors are logged; all are counted

_LIVE: weakref.WeakSet[Recorder] = weakref.WeakSet()
_SHARED: dict[str, Recorder] = {}
_SHARED_LOCK = threading.Lock()


STATS_FILE_BYTES = 512  # preallocated: rewritten in place, so it works on a full disk


def file_name(pid: int) -> str:
    return f"probe-{pid}.jsonl"


def stats_file_name(pid: int) -> str:
    return f"probe-{pid}.stats"


class Recorder:
    """Buffer and writer for one output directory in one process.

    ``active`` is the switch every hook reads first: False when disabled by ``disable()``,
    by a ``probe.off`` control file, or after ``close()``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        enabled: bool = True,
        flush_interval: float = FLUSH_INTERVAL_S,
        start: bool = True,
    ) -> None:
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self.closed = False
        self.active = False
        self._wanted = enabled
        self._control: control.State | None = None
        self._users = 0
        self.serving = False  # this process has received a request (it is a worker)
        self.memory = MemoryTracking(self.out_dir)
        self._reset_process_state()
        self.poll_control()
        _LIVE.add(self)
        if start:
            self._start_thread()

    # --- state that belongs to one process ----------------------------------------------

    def _reset_process_state(self) -> None:
        self.pid = os.getpid()
        self.path = os.path.join(self.out_dir, file_name(self.pid))
        self._buf: deque[dict[str, Any]] = deque()
        self._written = 0
        self._dropped = 0
        self._errors = 0
        self._bytes = 0
        self._fd: int | None = None
        self._stats_fd: int | None = None
        self._torn = False  # a write failed part-way: the file may end in half a line
        self._open_failed_at = 0.0
        self._flush_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._id_prefix = f"{self.pid:x}-{os.urandom(3).hex()}-"
        self._ids = itertools.count(1)
        self._stats_written: tuple[int, int, int, bool] | None = None
        self._stats_at = 0.0
        self._lazy_thread = False

    def _start_thread(self) -> None:
        with self._count_lock:
            if self._thread is not None or self.closed:
                return
            self._thread = threading.Thread(target=self._run, name="deskprof-probe", daemon=True)
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        """The parent keeps (and flushes) its own buffer and file; the child starts fresh.

        The child's flush thread starts with its first record, not here: a fork that is
        about to ``exec`` (``subprocess`` with ``preexec_fn`` runs these handlers) should
        not start threads.
        """
        if self.closed:
            return
        old_fds = (self._fd, self._stats_fd)
        self._reset_process_state()
        self.serving = False
        self.memory.reset()
        for old_fd in old_fds:
            if old_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(old_fd)
        self._lazy_thread = True

    # --- the hot path -------------------------------------------------------------------

    def emit(self, record: dict[str, Any]) -> None:
        """Queue one record (a dict of JSON-able values); counts it as dropped when full."""
        if len(self._buf) >= self.max_records:
            with self._count_lock:
                self._dropped += 1
            return
        self._buf.append(record)
        if self._lazy_thread:
            self._lazy_thread = False
            self._start_thread()

    def mark_serving(self) -> None:
        """Called by the middleware on a process's first request, probe on or off: a
        worker forked after start-up gets its flush thread (and memray switching) now."""
        self.serving = True
        if self._lazy_thread:
            self._lazy_thread = False
            self._start_thread()

    def next_id(self) -> str:
        """A short id unique across processes and runs (pid, random tag, counter)."""
        return f"{self._id_prefix}{next(self._ids):x}"

    def error(self, exc: BaseException | None = None, where: str = "") -> None:
        """Count an internal error (the application never sees it); log the first few."""
        with self._count_lock:
            self._errors += 1
            count = self._errors
        if count <= LOGGED_ERRORS:
            with contextlib.suppress(Exception):
                log.warning(
                    "deskprof probe: internal error in %s (counted, not raised): %r",
                    where or "a hook",
                    exc,
                    exc_info=exc if isinstance(exc, BaseException) else None,
                )

    # --- switching ----------------------------------------------------------------------

    def enable(self) -> None:
        self._wanted = True
        self._apply()

    def disable(self) -> None:
        self._wanted = False
        self._apply()

    def poll_control(self) -> None:
        """Read the control files (the flush thread does this every tick)."""
        try:
            self._control = control.read_state(self.out_dir)
        except OSError as exc:
            self.error(exc, "reading the control file")
        self._apply()

    def _apply(self) -> None:
        if self.closed:
            self.active = False
        elif self._control is not None:
            self.active = self._control == "on"
        else:
            self.active = self._wanted

    # --- writing ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.poll_control()
                self.memory.poll(self.serving)
                self.flush()
            except Exception as exc:  # the thread must outlive any bug
                self.error(exc, "the flush thread")

    def flush(self, *, final: bool = False) -> None:
        """Write what is buffered (and a stats line when due); never raises."""
        if not self.closed:
            self._flush(final)

    def _flush(self, final: bool) -> None:
        try:
            with self._flush_lock:
                self._flush_locked(final)
        except Exception as exc:
            self.error(exc, "flush")

    def _flush_locked(self, final: bool) -> None:
        records: list[dict[str, Any]] = []
        buf = self._buf
        while True:
            try:
                records.append(buf.popleft())
            except IndexError:
                break
        if not records and not self._stats_due(final):
            return
        fd = self._ensure_open()
        if fd is None:
            self._count_dropped(len(records))
            return
        lines: list[bytes] = []
        size = self._bytes
        dropped = 0
        for record in records:
            try:
                line = (json.dumps(record, separators=(",", ":"), default=repr) + "\n").encode()
            except Exception as exc:
                self.error(exc, "serialising a record")
                dropped += 1
                continue
            if size + len(line) > self.max_bytes:
                dropped += 1
                continue
            lines.append(line)
            size += len(line)
        kept = len(lines)
        self._written += kept
        self._count_dropped(dropped)
        stats_due = self._stats_due(final)
        if stats_due:
            lines.append(self._stats_line())
        if not lines:
            return
        if self._torn:  # end the half line a failed write left, so the next one parses
            lines.insert(0, b"\n")
        data = b"".join(lines)
        try:
            _write_all(fd, data)
            self._torn = False
        except OSError as exc:
            landed = getattr(exc, "written", 0)
            if landed:  # the file may now end in part of a line (until a write succeeds)
                self._torn = True
            self.error(exc, f"writing {self.path}")
            first = 1 if lines[0] == b"\n" else 0  # the torn-line terminator, not a record
            ends = itertools.accumulate(len(line) for line in lines)
            whole = sum(1 for end in list(ends)[first : first + kept] if end <= landed)
            self._written -= kept - whole  # records cut off or never written: dropped
            self._count_dropped(kept - whole)
            self._bytes += landed
            self._write_side_stats()
            return
        self._bytes += len(data)
        if stats_due:
            self._write_side_stats()

    def _count_dropped(self, n: int) -> None:
        if n:
            with self._count_lock:
                self._dropped += n

    def _snapshot(self) -> tuple[int, int, int, bool]:
        return (self._written, self._dropped, self._errors, self.active)

    def _stats_due(self, final: bool) -> bool:
        snap = self._snapshot()
        if snap == self._stats_written:
            return False
        if self._stats_written is None and snap[:3] == (0, 0, 0):
            return False  # nothing happened in this process: leave no file behind
        if final:
            return True
        interval = STATS_INTERVAL_CAPPED_S if self._bytes >= self.max_bytes else STATS_INTERVAL_S
        return time.monotonic() - self._stats_at >= interval

    def _stats_line(self) -> bytes:
        snap = self._snapshot()
        self._stats_written = snap
        self._stats_at = time.monotonic()
        written, dropped, errors, active = snap
        record = {
            "kind": STATS_KIND,
            "pid": self.pid,
            "ts_ns": time.time_ns(),
            "written": written,
            "dropped": dropped,
            "errors": errors,
            "active": active,
        }
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()

    def _write_side_stats(self) -> None:
        """The counters into ``probe-<pid>.stats``, in place: ``probe status`` can read
        the errors of a disk too full for the JSON-lines file to take another line."""
        fd = self._stats_fd
        if fd is None:
            return
        written, dropped, errors, active = self._snapshot()
        record = {
            "kind": STATS_KIND, "pid": self.pid, "ts_ns": time.time_ns(), "written": written,
            "dropped": dropped, "errors": errors, "active": active,
        }  # fmt: skip
        data = json.dumps(record, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):  # counted already; nothing else to tell it with
            os.pwrite(fd, data.ljust(STATS_FILE_BYTES - 1) + b"\n", 0)

    def _open_side_stats(self) -> None:
        path = os.path.join(self.out_dir, stats_file_name(self.pid))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size < STATS_FILE_BYTES:
                os.pwrite(fd, b" " * (STATS_FILE_BYTES - 1) + b"\n", 0)
        except OSError:
            os.close(fd)
            return
        self._stats_fd = fd

    def _ensure_open(self) -> int | None:
        if self._fd is not None:
            return self._fd
        now = time.monotonic()
        if self._open_failed_at and now - self._open_failed_at < REOPEN_AFTER_S:
            return None
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(self.path, flags, 0o644)
            self._bytes = os.fstat(fd).st_size
        except OSError as exc:
            self._open_failed_at = now
            self.error(exc, f"opening {self.path}")
            return None
        self._fd = fd
        self._open_side_stats()
        return fd

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread, write everything left and a final stats line; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._apply()
        self.memory.close()
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._flush(final=True)
        with self._flush_lock:
            for fd in (self._fd, self._stats_fd):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._fd = self._stats_fd = None

    def stats(self) -> dict[str, Any]:
        """The counters as they are now (written counts records already on disk)."""
        return {
            "pid": self.pid,
            "path": self.path,
            "written": self._written,
            "dropped": self._dropped,
            "errors": self._errors,
            "buffered": len(self._buf),
            "bytes": self._bytes,
            "active": self.active,
        }


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``; an OSError carries ``written``, the bytes that did land."""
    view = memoryview(data)
    done = 0
    while view:
        try:
            n = os.write(fd, view)
        except OSError as exc:
            exc.written = done  # type: ignore[attr-defined]
            raise
        done += n
        view = view[n:]


def open_recorder(out_dir: str | os.PathLike[str], **options: Any) -> Recorder:
    """The recorder for ``out_dir`` in this process, shared by every user of that directory
    (two writers of one ``probe-<pid>.jsonl`` would each write their own stats)."""
    key = os.path.abspath(os.fspath(out_dir))
    with _SHARED_LOCK:
        recorder = _SHARED.get(key)
        if recorder is None or recorder.closed or recorder.pid != os.getpid():
            recorder = Recorder(key, **options)
            _SHARED[key] = recorder
        recorder._users += 1
        return recorder


def release_recorder(recorder: Recorder) -> None:
    """Give back a recorder from ``open_recorder``; the last user closes it."""
    with _SHARED_LOCK:
        recorder._users -= 1
        if recorder._users > 0:
            return
        if _SHARED.get(recorder.out_dir) is recorder:
            del _SHARED[recorder.out_dir]
    recorder.close()


def close_all() -> None:
    """Flush and close every recorder of this process (at interpreter exit)."""
    for recorder in list(_LIVE):
        with contextlib.suppress(Exception):
            recorder.close()


def _after_fork_in_child() -> None:
    for recorder in list(_LIVE):
        with contextlib.suppress(Exception):
            recorder._after_fork_in_child()


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
