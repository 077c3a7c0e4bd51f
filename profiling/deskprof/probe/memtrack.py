"""memray's own ``Tracker`` inside the target, switched by a control file: no debugger.

Why: injecting memray with gdb or lldb (``memray attach``) fails on some hosts (gdb
cannot restore the CPU's extended register state on Xeons with AMX; lldb times out) and
a failed injection can kill the process. Where the probe is already in the target, the
probe starts and stops ``memray.Tracker`` itself, the way it switches its own recording.

The protocol, all files in the probe's directory:

- ``memray.request.json`` (written by the capture): ``session`` (an id), ``out_dir`` (where
  each process writes ``memray-<pid>.bin``), ``mode`` (``full`` | ``aggregate``),
  ``deadline_ns`` (tracking ends then, even if the capture never says stop), ``pids``
  (the serving processes known at the start) and ``new_workers`` (also track a process
  that serves its first request during the window: a worker started mid-capture).
- ``memray-<pid>.status.json`` (written by each process, atomically): ``state``
  ``tracking`` | ``stopped`` | ``failed``, the ``session``, ``error``, the file and times.

The capture removes the request to stop; every process looks at each flush tick
(0.25 s), so tracking starts and stops within a quarter of a second, and a deadline
inside the target closes the window if deskprof dies. Standard library only at import;
memray is imported in the target when a request arrives, and its absence is a status
line (``failed``: the capture then falls back to attaching, where that is proven safe).
Nothing here raises into the application.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any

REQUEST_FILE = "memray.request.json"
MODES = ("full", "aggregate")
NOT_IMPORTABLE = "memray is not importable in the target's interpreter"


def status_file(out_dir: str, pid: int) -> str:
    return os.path.join(out_dir, f"memray-{pid}.status.json")


def output_file(out_dir: str, pid: int) -> str:
    return os.path.join(out_dir, f"memray-{pid}.bin")


def read_request(probe_dir: str) -> dict[str, Any] | None:
    """The pending request, or None (absent, unreadable or not a request)."""
    try:
        with open(os.path.join(probe_dir, REQUEST_FILE), encoding="utf-8") as handle:
            request = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(request, dict) or not request.get("session"):
        return None
    return request


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` so a reader never sees half of it (temporary file, rename)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)


class MemoryTracking:
    """memray tracking of this process, driven by ``poll()`` from the probe's flush thread."""

    def __init__(self, probe_dir: str) -> None:
        self.probe_dir = probe_dir
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """A forked child tracks nothing (memray does not follow forks unless asked)."""
        self.pid = os.getpid()
        self._tracker: Any = None
        self._session: str | None = None
        self._request: dict[str, Any] = {}
        self._finished: set[str] = set()  # sessions this process is done with
        self._started_ns = 0

    @property
    def tracking(self) -> bool:
        return self._tracker is not None

    def poll(self, serving: bool) -> None:
        """Start or stop tracking to match the request; never raises."""
        try:
            with self._lock:
                self._poll(serving)
        except Exception:  # the application must never see our problems
            with contextlib.suppress(Exception):
                self._stop("stopped", error="internal error while switching memray")

    def _poll(self, serving: bool) -> None:
        if os.getpid() != self.pid:
            self.reset()
        request = read_request(self.probe_dir)
        now = time.time_ns()
        if self._tracker is not None:
            expired = now >= int(self._request.get("deadline_ns") or 0)
            withdrawn = request is None or request.get("session") != self._session
            if expired or withdrawn:
                self._stop("stopped", reason="deadline" if expired else "requested")
            return
        if request is None or request["session"] in self._finished:
            return
        if now >= int(request.get("deadline_ns") or 0):
            return
        listed = self.pid in (request.get("pids") or [])
        if listed or (serving and request.get("new_workers")):
            self._start(request)

    def _start(self, request: dict[str, Any]) -> None:
        session = str(request["session"])
        self._finished.add(session)  # one attempt per session, whatever happens
        out_dir = str(request.get("out_dir") or self.probe_dir)
        base = {"pid": self.pid, "session": session}
        try:
            import memray
        except ImportError:
            self._status(out_dir, {**base, "state": "failed", "error": NOT_IMPORTABLE})
            return
        mode = request.get("mode") if request.get("mode") in MODES else "full"
        path = output_file(out_dir, self.pid)
        try:
            file_format = (
                memray.FileFormat.AGGREGATED_ALLOCATIONS
                if mode == "aggregate"
                else memray.FileFormat.ALL_ALLOCATIONS
            )
            tracker = memray.Tracker(
                destination=memray.FileDestination(path, overwrite=True, compress_on_exit=False),
                native_traces=False,
                follow_fork=False,
                file_format=file_format,
            )
            tracker.__enter__()
        except Exception as exc:
            error = f"memray.Tracker did not start: {type(exc).__name__}: {exc}"
            self._status(out_dir, {**base, "state": "failed", "error": error})
            return
        self._tracker, self._session, self._request = tracker, session, dict(request)
        self._request["out_dir"] = out_dir
        self._started_ns = time.time_ns()
        self._status(
            out_dir,
            {
                **base,
                "state": "tracking",
                "mode": mode,
                "file": path,
                "start_ns": self._started_ns,
                "memray": getattr(memray, "__version__", ""),
                "method": "in-process memray.Tracker (deskprof probe)",
            },
        )

    def _stop(self, state: str, *, reason: str = "", error: str = "") -> None:
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            return
        stop_error = error
        try:
            tracker.__exit__(None, None, None)
        except Exception as exc:
            stop_error = stop_error or f"memray.Tracker did not stop cleanly: {exc}"
        out_dir = str(self._request.get("out_dir") or self.probe_dir)
        payload: dict[str, Any] = {
            "pid": self.pid,
            "session": self._session,
            "state": state,
            "file": output_file(out_dir, self.pid),
            "start_ns": self._started_ns,
            "stop_ns": time.time_ns(),
            "reason": reason,
        }
        if stop_error:
            payload["error"] = stop_error
        self._status(out_dir, payload)

    def _status(self, out_dir: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            write_json(status_file(out_dir, self.pid), payload)

    def close(self) -> None:
        """At interpreter exit: finish the file so what was tracked can be read."""
        with contextlib.suppress(Exception), self._lock:
            if os.getpid() == self.pid:
                self._stop("stopped", reason="process exiting")
