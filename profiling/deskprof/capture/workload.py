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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from deskprof.errors import DeskprofError
from deskprof.processes import stop_gracefully
from deskprof.schema import columns
from deskprof.workloads import OPENDESK_LOCUSTFILE, RECORDER_PLUGIN, SCENARIOS

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
        if self.users < 1 or self.rate < 0:
            raise DeskprofError("--users must be at least 1 and --rate not negative")
        host = urlparse(url).hostname or ""
        if host not in LOOPBACK and not self.allow_remote:
            # load is only ever aimed at loopback unless the user says otherwise
            raise DeskprofError(
                f"refusing to send load to {host}: only loopback targets by default; "
                "pass --allow-remote-load for a staging host you own"
            )


@dataclass
class WorkloadRun:
    spec: WorkloadSpec
    url: str
    duration_s: float
    raw_dir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

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
            "10",
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


def read_workload(raw_dir: Path) -> pd.DataFrame:
    """All ``workload-*.jsonl`` records; a torn last line (killed writer) is skipped."""
    rows = []
    for path in sorted(raw_dir.glob("workload-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    frame = pd.DataFrame(rows, columns=columns("workload"))
    ints = ["intended_ns", "start_ns", "end_ns", "latency_ns", "status"]
    return frame.astype({c: "int64" for c in ints}).sort_values("start_ns", ignore_index=True)
