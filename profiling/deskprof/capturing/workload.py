"""Drive load at the target with Locust, headless, in its own process.

Locust runs in a subprocess (it monkey-patches the interpreter with gevent, which must
not leak into the capture session's threads). Every request is recorded by the load
generator itself into ``raw/workload-<pid>.jsonl`` and read back as the ``workload``
table.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from deskprof.bundle.schema import columns
from deskprof.errors import DeskprofError, OptionError
from deskprof.processes import stop_gracefully
from deskprof.workloads import OPENDESK_LOCUSTFILE, RECORDER_PLUGIN, SCENARIOS
from deskprof.workloads.control import CONTROL_ENV, READY, Window, done_path, write_window

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class WorkloadSpec:
    """A scenario name (built-in) or a locustfile path; closed loop (users) or open (rate)."""

    scenario: str = "mixed"
    users: int = 10
    rate: float = 0.0  # > 0: open loop at this many requests per second
    spawn_rate: float | None = None
    allow_remote: bool = False

    @property
    def is_builtin(self) -> bool:
        return self.scenario in SCENARIOS

    def describe(self) -> dict:
        return {
            "scenario": self.scenario,
            "mode": "open" if self.rate > 0 else "closed",
            "users": self.users if self.rate <= 0 else 1,
            "rate_per_s": self.rate or None,
        }

    def validate(self, url: str) -> None:
        if not self.is_builtin and not Path(self.scenario).is_file():
            raise DeskprofError(
                f"workload {self.scenario!r} is neither a built-in scenario "
                f"({', '.join(SCENARIOS)}) nor a locustfile path"
            )
        if not self.is_builtin:
            check_locustfile(Path(self.scenario))
        if self.users < 1 or self.rate < 0:
            raise OptionError("{users} must be at least 1 and {rate} not negative", "users", "rate")
        host = urlparse(url).hostname or ""
        if host not in LOOPBACK and not self.allow_remote:
            # load is only ever aimed at loopback unless the user says otherwise
            raise OptionError(
                f"refusing to send load to {host}: only loopback targets by default; "
                "pass {allow_remote} for a staging host you own",
                "allow_remote",
            )


def check_locustfile(path: Path) -> None:
    """A locustfile that does not compile is one line quoting the error, before any load
    starts (otherwise Locust dies in its own process and the capture sees no requests)."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise DeskprofError(f"cannot read locustfile {path}: {exc.strerror}") from None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = (exc.text or "").strip()
        raise DeskprofError(
            f"locustfile {path} has a syntax error at {where}: {exc.msg}"
            + (f": {text[:120]}" if text else "")
        ) from None
    except ValueError as exc:  # NUL bytes
        raise DeskprofError(f"locustfile {path} is not Python source: {exc}") from None


@dataclass
class WorkloadRun:
    spec: WorkloadSpec
    url: str
    duration_s: float
    raw_dir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    stop_timeout_s: float = 10.0  # how long Locust lets users finish their task at the end

    def command(self) -> list[str]:
        files = (
            str(OPENDESK_LOCUSTFILE)
            if self.spec.is_builtin
            else f"{RECORDER_PLUGIN},{Path(self.spec.scenario).resolve()}"
        )
        users = 1 if self.spec.rate > 0 else self.spec.users
        spawn = self.spec.spawn_rate or max(1.0, float(users))
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            files,
            "--headless",
            "--host",
            self.url.rstrip("/"),
            "-u",
            str(users),
            "-r",
            str(spawn),
            "-t",
            f"{max(1, round(self.duration_s))}s",
            "--stop-timeout",
            f"{self.stop_timeout_s:g}",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
        ]

    def start(self) -> WorkloadRun:
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DESKPROF_WORKLOAD_DIR": str(self.raw_dir),
            "DESKPROF_SCENARIO": self.spec.scenario if self.spec.is_builtin else "custom",
            "DESKPROF_RATE": str(self.spec.rate),
            **self.extra_env,
        }
        self.log_path = self.raw_dir / "locust.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20) -> None:
        """Ask Locust to stop (it flushes its records on quit), then make sure."""
        stop_gracefully(self.process, signal.SIGINT, timeout_s)

    def wait(self, timeout_s: float) -> None:
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.stop()


def _parse_lines(text: str) -> list[dict]:
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line (killed writer)
            continue
    return rows


def workload_frame(rows: list[dict]) -> pd.DataFrame:
    """The ``workload`` table (schema columns, typed, by start) of recorded rows."""
    frame = pd.DataFrame(rows, columns=columns("workload"))
    ints = ["intended_ns", "start_ns", "end_ns", "latency_ns", "status"]
    return frame.astype({c: "int64" for c in ints}).sort_values("start_ns", ignore_index=True)


def read_workload(raw_dir: Path) -> pd.DataFrame:
    """All ``workload-*.jsonl`` records; a torn last line (killed writer) is skipped."""
    rows = []
    for path in sorted(raw_dir.glob("workload-*.jsonl")):
        rows.extend(_parse_lines(path.read_text(encoding="utf-8")))
    return workload_frame(rows)


@dataclass
class ControlledLoad:
    """One long-lived Locust process for a built-in scenario, driven window by window.

    ``start()`` launches it (its users log in once) and waits until it is ready;
    ``window(...)`` hands it a trial window (see ``deskprof.workloads.control``) and
    returns it; ``wait_done(window)`` blocks until the window's requests are answered or
    recorded as failed; ``records(window)`` gives the window's measured requests (the
    warm-up at its start left out). ``stop()`` ends the process. Between windows it
    sends nothing. It quits by itself if this process dies or stays silent for
    ``idle_s``, and Locust's own run time caps it at ``max_s``.
    """

    spec: WorkloadSpec
    url: str
    raw_dir: Path
    max_s: float = 3600.0
    idle_s: float = 600.0
    drain_s: float = 30.0
    lead_s: float = 0.2  # a window starts this long after it is written
    run: WorkloadRun | None = None
    _offsets: dict[Path, int] = field(default_factory=dict)
    _rows: list[dict] = field(default_factory=list)

    def start(self, timeout_s: float = 120.0) -> ControlledLoad:
        return self.launch().wait_ready(timeout_s)

    def launch(self) -> ControlledLoad:
        """Start the process; ``wait_ready`` then waits for its users' log-ins."""
        env = {
            CONTROL_ENV: "1",
            "DESKPROF_USERS": str(1 if self.spec.rate > 0 else self.spec.users),
            "DESKPROF_CONTROL_PARENT": str(os.getpid()),
            "DESKPROF_CONTROL_IDLE_S": str(self.idle_s),
        }
        # stopped only between windows, when nothing is in flight: users waiting for the
        # next window need not be waited for
        self.run = WorkloadRun(
            self.spec, self.url, self.max_s, self.raw_dir, extra_env=env, stop_timeout_s=0
        )
        self.run.start()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> ControlledLoad:
        self._wait_for(self.raw_dir / READY, timeout_s, "log in its users")
        return self

    def _wait_for(self, path: Path, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if self.run is None or not self.run.running():
                raise DeskprofError(
                    f"the load generator exited before it could {what}; see {self._log()}"
                )
            if time.monotonic() > deadline:
                raise DeskprofError(
                    f"the load generator did not {what} within {timeout_s:g} s; see {self._log()}"
                )
            time.sleep(0.02)

    def _log(self) -> Path:
        return self.raw_dir / "locust.log"

    def window(self, label: str, seconds: float, warmup_s: float = 0.0) -> Window:
        window = Window(
            label=label,
            start_ns=time.time_ns() + int(self.lead_s * 1e9),
            warmup_s=warmup_s,
            seconds=seconds,
            rate=self.spec.rate,
            drain_s=self.drain_s,
        )
        write_window(self.raw_dir, window)
        return window

    def wait_done(self, window: Window) -> None:
        left_s = (window.end_ns - time.time_ns()) / 1e9
        self._wait_for(done_path(self.raw_dir, window.label), left_s + window.drain_s + 30,
                       f"finish {window.label}")  # fmt: skip

    def records(self, window: Window) -> pd.DataFrame:
        """The window's measured requests (its warm-up left out), as the workload table."""
        for path in sorted(self.raw_dir.glob("workload-*.jsonl")):
            with path.open("rb") as stream:
                stream.seek(self._offsets.get(path, 0))
                chunk = stream.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._offsets[path] = self._offsets.get(path, 0) + len(complete)
            parsed = _parse_lines(complete.decode("utf-8"))
            self._rows.extend(r for r in parsed if r.get("window"))  # setup is in none
        mine = [r for r in self._rows if r.get("window") == window.label]
        self._rows = [r for r in self._rows if r.get("window") != window.label]
        return workload_frame([r for r in mine if not r.get("warmup")])

    def running(self) -> bool:
        return self.run is not None and self.run.running()

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()
