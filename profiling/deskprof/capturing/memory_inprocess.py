"""The capture's side of in-process memray tracking (see ``deskprof.probe.memtrack``).

``InProcessTracking.start`` writes the request into the target's probe directory and
waits for each serving process to answer with a status file; ``stop`` withdraws the
request and waits for every process that tracked to close its file. Processes that never
answer (no probe in them, or a probe too old to know the request) and processes whose
interpreter lacks memray are handed back, so the source can try attaching them instead.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from deskprof.probe import memtrack
from deskprof.probe.config import FLUSH_INTERVAL_S

START_WAIT_S = 5.0  # a flush tick is 0.25 s; a busy worker's thread may take longer
STOP_WAIT_S = 30.0  # aggregate mode writes its whole file when tracking stops
SAFETY_MARGIN_S = 30  # the in-target deadline, past the window, if deskprof never stops


@dataclass
class TrackedProcess:
    """One process that tracked itself for this session."""

    pid: int
    output: Path
    start_ns: int
    stop_ns: int = 0
    state: str = "tracking"
    error: str = ""
    exited: bool = False


@dataclass
class InProcessTracking:
    probe_dir: Path
    out_dir: Path
    mode: str
    window_s: float
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    tracked: dict[int, TrackedProcess] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    silent: list[int] = field(default_factory=list)

    @property
    def request_path(self) -> Path:
        return self.probe_dir / memtrack.REQUEST_FILE

    def start(self, pids: list[int]) -> None:
        """Ask ``pids`` (and workers that start serving during the window) to track."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        deadline_ns = time.time_ns() + int((math.ceil(self.window_s) + SAFETY_MARGIN_S) * 1e9)
        request = {
            "session": self.session,
            "out_dir": str(self.out_dir.resolve()),
            "mode": self.mode,
            "deadline_ns": deadline_ns,
            "pids": pids,
            "new_workers": True,
        }
        memtrack.write_json(str(self.request_path), request)
        waiting = set(pids)
        deadline = time.monotonic() + START_WAIT_S
        while waiting and time.monotonic() < deadline:
            time.sleep(FLUSH_INTERVAL_S / 2)
            self.refresh()
            waiting -= set(self.tracked) | set(self.failed)
        self.silent = sorted(waiting)

    def refresh(self) -> None:
        """Read every status file of this session (new workers appear here)."""
        for path in self.out_dir.glob("memray-*.status.json"):
            status = _read_status(path)
            if not status or status.get("session") != self.session:
                continue
            pid = int(status.get("pid") or 0)
            state = str(status.get("state") or "")
            if state == "failed":
                self.failed.setdefault(pid, str(status.get("error") or "failed"))
                continue
            entry = self.tracked.get(pid)
            if entry is None:
                output = Path(
                    str(status.get("file") or memtrack.output_file(str(self.out_dir), pid))
                )
                entry = self.tracked[pid] = TrackedProcess(pid, output, int(status["start_ns"]))
            entry.state = state
            entry.stop_ns = int(status.get("stop_ns") or 0)
            entry.error = str(status.get("error") or "")

    def stop(self) -> None:
        """Withdraw the request; wait until every tracking process closed its file."""
        with contextlib.suppress(OSError):
            self.request_path.unlink()
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline:
            self.refresh()
            open_ = [t for t in self.tracked.values() if t.state == "tracking"]
            for entry in open_:
                if not _alive(entry.pid):
                    entry.exited, entry.state = True, "exited"
                    entry.stop_ns = entry.stop_ns or time.time_ns()
            if not [t for t in open_ if t.state == "tracking"]:
                return
            time.sleep(FLUSH_INTERVAL_S / 2)

    def withdraw(self) -> None:
        """Remove the request without waiting (a capture that never got going)."""
        with contextlib.suppress(OSError):
            self.request_path.unlink()


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def probe_writable(probe_dir: str | os.PathLike[str]) -> bool:
    return os.access(probe_dir, os.W_OK)
