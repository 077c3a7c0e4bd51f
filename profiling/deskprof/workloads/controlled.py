"""Inside a long-lived Locust process: send load only in the runner's trial windows.

Imported by the locustfile when ``DESKPROF_CONTROL=1`` (see ``control.py`` for the
protocol). The users log in once and write ``ready.json``; then, window after window:
closed-loop users run their tasks only while a window is open; the open-loop user sends
one arrival per ``1/rate`` seconds from the window's start, each at its intended time,
whatever the server does (no coordinated omission). After the window's end the
controller waits for its requests (up to ``drain_s``), records the ones still waiting as
failures, flushes the records and writes ``<label>.done``.

The process quits by itself when the runner that started it is gone or no window came
for ``DESKPROF_CONTROL_IDLE_S`` seconds, so a crashed experiment leaves no load behind.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from gevent.queue import Queue

from deskprof.workloads.client import RECORDER
from deskprof.workloads.control import (
    LATE,
    Window,
    pending_windows,
    read_window,
    write_done,
    write_ready,
)

POLL_S = 0.02
START_GUARD_NS = 5_000_000  # 5 ms


class Controller:
    """The window lifecycle of one Locust process (one arm of an experiment)."""

    def __init__(self, directory: Path, users: int, parent_pid: int, idle_s: float) -> None:
        self.directory = directory
        self.expected_users = max(1, users)
        self.ready_users = 0
        self.parent_pid = parent_pid
        self.idle_s = idle_s
        self.seen: set[str] = set()
        self.windows: list[Window] = []
        self.current: Window | None = None
        self.is_open = Event()  # closed-loop users run tasks only while set
        self.open_loop: Queue = Queue()  # windows for the open-loop user
        self.arrivals_pending: set[str] = set()
        self.running: Counter[str] = Counter()  # actions in progress per window

    @classmethod
    def from_env(cls) -> Controller:
        return cls(
            Path(os.environ.get("DESKPROF_WORKLOAD_DIR", ".")),
            int(os.environ.get("DESKPROF_USERS", "1")),
            int(os.environ.get("DESKPROF_CONTROL_PARENT", "0")),
            float(os.environ.get("DESKPROF_CONTROL_IDLE_S", "600")),
        )

    # --- for the users ---------------------------------------------------------------------

    def user_ready(self) -> None:
        """A user logged in and prepared; the last one tells the runner."""
        self.ready_users += 1
        if self.ready_users == self.expected_users:
            write_ready(self.directory, {"users": self.ready_users, "pid": os.getpid()})

    def tags(self, intended_ns: int) -> dict:
        for window in reversed(self.windows):
            tag = window.tag(intended_ns)
            if tag is not None:
                return tag
        return {}

    def run_task(self, user: Any, action: str) -> None:
        """A closed-loop task: wait for an open window, then run ``action``.

        The window closes when a gevent timer fires, which can be a little late: a task
        never starts in the window's last ``START_GUARD_NS``, so no request is sent after
        the window's end."""
        while True:
            self.is_open.wait()
            window = self.current
            if window is not None and time.time_ns() < window.end_ns - START_GUARD_NS:
                break
            gevent.sleep(POLL_S / 2)
        label = window.label
        self.running[label] += 1
        try:
            getattr(user, action)()
        finally:
            self.running[label] -= 1

    def serve_open_loop(self, next_action: Callable[[], Callable[[int], Any]]) -> None:
        """The open-loop user's task: the arrivals of the next window, on time."""
        window: Window = self.open_loop.get()
        lag_s = (time.time_ns() - window.start_ns) / 1e9
        origin = time.monotonic() - lag_s  # the window's start on the monotonic clock
        for intended_ns in window.arrivals():
            delay = origin + (intended_ns - window.start_ns) / 1e9 - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self.running[window.label] += 1
            gevent.spawn(self._arrival, next_action(), intended_ns, window.label)
        self.arrivals_pending.discard(window.label)

    def _arrival(self, action: Callable[[int], Any], intended_ns: int, label: str) -> None:
        try:
            action(intended_ns)
        finally:
            self.running[label] -= 1

    # --- the control loop --------------------------------------------------------------

    def loop(self, quit_run: Callable[[], None]) -> None:
        """Poll for control files until the runner goes away or stays silent too long."""
        last = time.monotonic()
        while True:
            if self.parent_pid and os.getppid() != self.parent_pid:
                break  # the runner died: stop sending load
            if time.monotonic() - last > self.idle_s:
                break
            found = pending_windows(self.directory, self.seen)
            for path in found:
                self.seen.add(path.stem)
                self.run_window(read_window(path))
                last = time.monotonic()
            gevent.sleep(POLL_S)
        RECORDER.flush()
        quit_run()

    def run_window(self, window: Window) -> None:
        self.windows = [*self.windows[-3:], window]
        gevent.sleep(max(0.0, (window.start_ns - time.time_ns()) / 1e9))
        self.current = window
        if window.rate > 0:
            self.arrivals_pending.add(window.label)
            self.open_loop.put(window)
        else:
            self.is_open.set()
        gevent.sleep(max(0.0, (window.end_ns - time.time_ns()) / 1e9))
        self.is_open.clear()
        deadline = window.end_ns + int(window.drain_s * 1e9)
        while time.time_ns() < deadline and (
            window.label in self.arrivals_pending
            or self.running[window.label] > 0
            or RECORDER.in_flight(window.label) > 0
        ):
            gevent.sleep(POLL_S / 2)
        abandoned = RECORDER.abandon(LATE.format(drain_s=window.drain_s), window=window.label)
        RECORDER.flush()
        self.current = None
        facts = {"label": window.label, "abandoned": abandoned, "done_ns": time.time_ns()}
        write_done(self.directory, window.label, facts)
