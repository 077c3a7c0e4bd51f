"""The process(es) being captured: given by PID, or launched by the workbench.

Reads what the target was started with (``OPENDESK_*`` and ``DESKPROF_PROBE_DIR`` from
``/proc/<pid>/environ`` of the process and its children), so a capture of a running
server knows its database, its Redis, its fixes and where its probe writes, without the
user repeating them.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from deskprof.errors import NoSuchProcess, PermissionDenied, TargetUnreachable
from deskprof.processes import stop_gracefully

ENV_KEYS = (
    "OPENDESK_FIXES",
    "OPENDESK_DATABASE_URL",
    "OPENDESK_REDIS_URL",
    "DESKPROF_PROBE_DIR",
)


def read_environ(pid: int) -> dict[str, str]:
    """The initial environment of ``pid`` (only the keys deskprof cares about)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except FileNotFoundError as exc:
        raise NoSuchProcess(f"no process with PID {pid}") from exc
    except PermissionError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, _, value = item.decode(errors="replace").partition("=")
        if key in ENV_KEYS:
            env[key] = value
    return env


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.AccessDenied:
        return True  # someone else's process, but it is there
    except psutil.Error:
        return False


def check_pid(pid: int) -> psutil.Process:
    try:
        proc = psutil.Process(pid)
        proc.status()
    except psutil.NoSuchProcess as exc:
        raise NoSuchProcess(f"no process with PID {pid}: check `pgrep -f opendesk`") from exc
    except psutil.AccessDenied as exc:
        raise PermissionDenied(
            f"not allowed to inspect PID {pid}: run deskprof as the target's user or root"
        ) from exc
    return proc


def python_workers(pid: int) -> list[int]:
    """The processes that serve requests: the Python children of a supervisor (uvicorn
    --workers, gunicorn), or the process itself when it has none."""
    proc = check_pid(pid)
    workers = []
    for child in proc.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
            name = child.name()
        except psutil.Error:
            continue
        if "python" in name.lower() and "resource_tracker" not in cmdline:
            workers.append(child.pid)
    return workers or [pid]


def _has_descendant_in(process: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(child.pid in pids for child in process.children(recursive=True))
    except psutil.Error:
        return False


def serving_processes(pid: int, port: int | None) -> list[int]:
    """The processes that answer requests for ``pid``: its descendants listening on
    ``port``, else ``pid`` when it listens, else its Python children (or itself).

    A listener with listening descendants of its own is a supervisor (a launcher such
    as ``mlflow server`` starting ``uvicorn --workers``, whose supervisor holds the
    socket it hands to its workers): its workers serve, it does not."""
    proc = check_pid(pid)
    if port is not None:
        listeners = [p for p in proc.children(recursive=True) if _listens(p, port)]
        pids = {p.pid for p in listeners}
        serving = [p.pid for p in listeners if not _has_descendant_in(p, pids)]
        if serving:
            return sorted(serving)
        if _listens(proc, port):
            return [pid]
    return python_workers(pid)


def _listens(proc: psutil.Process, port: int) -> bool:
    try:
        sockets = proc.net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets)


def url_port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


def wait_for_url(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Until the URL answers any HTTP status; TargetUnreachable after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        if process is not None and process.poll() is not None:
            raise TargetUnreachable(
                f"the launched target exited (code {process.returncode}) before {url} answered"
            )
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if time.monotonic() >= deadline:
            raise TargetUnreachable(
                f"{url} does not answer ({last}); check --url and that the service is running"
            )
        time.sleep(0.2)


@dataclass
class Target:
    """What the session captures."""

    url: str
    pids: list[int]
    command: list[str] | None = None
    process: subprocess.Popen | None = None
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def launched(self) -> bool:
        return self.process is not None

    def all_pids(self) -> list[int]:
        seen = list(self.pids)
        for pid in self.pids:
            try:
                seen.extend(c.pid for c in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
        return sorted(set(seen))

    def working_directory(self) -> Path | None:
        """The first target process's working directory (None when it cannot be read)."""
        for pid in self.pids:
            try:
                return Path(psutil.Process(pid).cwd())
            except (psutil.Error, OSError):
                continue
        return None

    def revision(self) -> tuple[str | None, str]:
        """The target's source revision and where it came from: git in the target's
        working directory (an installed app or a container often has none: None)."""
        from deskprof.bundle.writer import git_revision

        cwd = self.working_directory()
        if cwd is None:
            return None, "unknown (the target's working directory cannot be read)"
        found = git_revision(cwd)
        return found, f"git in {cwd}" if found else f"unknown (no git checkout at {cwd})"

    def read_environment(self) -> None:
        for pid in self.all_pids():
            try:
                for key, value in read_environ(pid).items():
                    self.environ.setdefault(key, value)
            except NoSuchProcess:
                continue

    def alive(self) -> bool:
        """True while any target process runs. A launched target that died is our
        zombie until reaped (``pid_exists`` still says yes): ``poll()`` reaps it."""
        if self.process is not None and self.process.poll() is not None:
            return False
        return any(_running(pid) for pid in self.pids)

    @classmethod
    def attach(cls, url: str, pids: list[int]) -> Target:
        for pid in pids:
            check_pid(pid)
        target = cls(url=url, pids=list(pids))
        target.read_environment()
        return target

    @classmethod
    def launch(
        cls, url: str, command: str, env: dict[str, str], log_path: Path, timeout_s: float = 90
    ) -> Target:
        args = shlex.split(command)
        if not args:
            raise TargetUnreachable("--launch needs a command")
        with log_path.open("w") as log:
            try:
                process = subprocess.Popen(
                    args,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise TargetUnreachable(f"cannot launch {args[0]!r}: not found") from exc
        target = cls(url=url, pids=[process.pid], command=args, process=process)
        try:
            wait_for_url(url, timeout_s, process)
        except TargetUnreachable:
            target.stop()
            raise
        target.read_environment()
        return target

    def stop(self, timeout_s: float = 20) -> None:
        """Stop a target the workbench launched (never one it attached to)."""
        stop_gracefully(self.process, signal.SIGTERM, timeout_s, kill_group=True)


def python_command(command: str) -> bool:
    """Whether ``command`` starts a Python interpreter (memray run can wrap it)."""
    args = shlex.split(command)
    return bool(args) and (Path(args[0]).name.startswith("python") or args[0] == sys.executable)
