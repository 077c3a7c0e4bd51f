"""Prove a memray attach method on a throwaway process before using it on a real one.

Why: debugger injection fails on some hosts (gdb 13.1 on Xeons with AMX cannot write the
CPU's extended state back: "Couldn't write extended state status"; lldb times out), and
when it fails it can kill the process it was injected into (a process in ``time.sleep``
exits with ``OSError: [Errno 514]``). So deskprof never injects into a user's process
with a method this host has not shown to work: each method is first tried on a scratch
Python process of the same interpreter, which must come out tracked, with a readable
file, and alive. The verdict is remembered per host, tool binary, memray and Python
(``~/.cache/deskprof/attach-trials.json``, or ``$DESKPROF_CACHE_DIR``) for a week.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from deskprof.tools import find_tool

CACHE_TTL_S = 7 * 24 * 3600
TRIAL_TIMEOUT_S = 45.0
SCRATCH = "import time\nwhile True:\n    time.sleep(0.05)\n"


@dataclass
class Trial:
    """The verdict on one attach method on this host."""

    method: str  # gdb | lldb | sys.remote_exec
    ok: bool
    detail: str  # what happened, one line
    at: float = 0.0
    cached: bool = False


def methods_for(python_version: tuple[int, int]) -> list[str]:
    """The attach methods worth trying for a target of this Python, best first."""
    methods = ["sys.remote_exec"] if python_version >= (3, 14) else []
    return [*methods, "gdb", "lldb"]


def _cache_path() -> Path:
    root = os.environ.get("DESKPROF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "deskprof"
    )
    return Path(root) / "attach-trials.json"


def _cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _tool_for(method: str) -> str | None:
    if method == "sys.remote_exec":
        return sys.executable if hasattr(sys, "remote_exec") else None
    return find_tool(method)


def cache_key(method: str, python: str) -> str:
    """Everything the verdict depends on: host, kernel, CPU, the tool binary, memray."""
    tool = _tool_for(method) or "-"
    with suppress(OSError):
        tool += f"@{int(os.stat(tool).st_mtime)}"
    try:
        from importlib.metadata import version

        memray_version = version("memray")
    except Exception:
        memray_version = "-"
    # the interpreter as the target's environment names it (a venv's bin/python), not
    # its resolved binary, which every venv on that Python shares
    parts = (method, tool, memray_version, os.path.abspath(python), platform.node())
    return "|".join((*parts, platform.release(), _cpu_model()))


def _load_cache() -> dict[str, dict]:
    with suppress(OSError, ValueError):
        data = json.loads(_cache_path().read_text())
        if isinstance(data, dict):
            return data
    return {}


def _save(key: str, trial: Trial) -> None:
    path = _cache_path()
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load_cache()
        data[key] = {k: v for k, v in asdict(trial).items() if k != "cached"}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)


def prove(method: str, python: str | None = None, *, fresh: bool = False) -> Trial:
    """The (remembered, unless ``fresh``) verdict on ``method`` for ``python``."""
    python = python or sys.executable
    key = cache_key(method, python)
    if not fresh:
        known = _load_cache().get(key)
        if known and time.time() - float(known.get("at", 0)) < CACHE_TTL_S:
            return Trial(known["method"], bool(known["ok"]), known["detail"], known["at"], True)
    trial = run_trial(method, python)
    if trial.ok or "No module named" not in trial.detail:  # a missing module is no verdict
        _save(key, trial)
    return trial


def first_proven(python: str | None = None, python_version: tuple[int, int] | None = None):
    """(the first method that works here or None, every verdict tried)."""
    version = python_version or sys.version_info[:2]
    trials = []
    for method in methods_for(version):
        if _tool_for(method) is None:
            continue
        trial = prove(method, python)
        trials.append(trial)
        if trial.ok:
            return trial, trials
    return None, trials


_GENERIC = ("an unexpected error occurred", "run with --verbose")
_TELLING = ("couldn't", "cannot", "error", "fail", "timed out", "not permitted", "denied")


def failure_line(text: str) -> str:
    """The line of memray's verbose output that says what went wrong (gdb's own words
    when it has them, not memray's "An unexpected error occurred")."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    telling = [
        line
        for line in lines
        if any(w in line.lower() for w in _TELLING) and not any(g in line.lower() for g in _GENERIC)
    ]
    if telling:
        return telling[0][:300]
    return lines[-1][:300] if lines else "no output"


def run_trial(method: str, python: str, rounds: int = 2) -> Trial:
    """Attach ``method`` to a scratch process ``rounds`` times (hosts where injection
    fails now and then exist); every round must track and leave the process alive."""
    trial = Trial(method, False, "not tried", time.time())
    for _ in range(rounds):
        trial = _one_round(method, python)
        if not trial.ok:
            break
    return trial


def _one_round(method: str, python: str) -> Trial:
    """Attach ``method`` to a scratch process for one second; it must track and live."""
    memray = find_tool("memray")
    tool = _tool_for(method)
    if memray is None or tool is None:
        missing = "memray" if memray is None else method
        return Trial(method, False, f"{missing} not found", time.time())
    env = dict(os.environ)
    if method in ("gdb", "lldb"):  # memray runs the debugger from PATH: the one we found
        env["PATH"] = f"{Path(tool).parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix="deskprof-trial-") as tmp:
        output = Path(tmp) / "trial.bin"
        scratch = subprocess.Popen(
            [python, "-c", SCRATCH], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(0.3)
            args = [memray, "attach", "--verbose", "--method", method, "--output", str(output)]
            args += ["--no-compress", "--duration", "1", str(scratch.pid)]
            try:
                done = subprocess.run(
                    args, capture_output=True, text=True, timeout=TRIAL_TIMEOUT_S, env=env,
                    start_new_session=True,
                )  # fmt: skip
                code, text = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired:
                code, text = None, f"timed out after {TRIAL_TIMEOUT_S:g}s"
            except OSError as exc:
                code, text = 1, f"cannot run memray: {exc.strerror}"
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and scratch.poll() is None:
                if output.exists() and output.stat().st_size > 0 and code == 0:
                    time.sleep(1.5)  # the 1 s window ends and memray closes its file
                    break
                time.sleep(0.1)
            if scratch.poll() is not None:
                detail = f"the scratch process died (exit {scratch.returncode})"
                if code != 0:
                    detail += f" after: {failure_line(text)}"
                return Trial(method, False, detail, time.time())
            if code != 0:
                return Trial(method, False, failure_line(text), time.time())
            if not output.exists() or output.stat().st_size == 0:
                return Trial(method, False, "attached but memray wrote nothing", time.time())
            return Trial(method, True, "attached, tracked and detached; process alive", time.time())
        finally:
            scratch.kill()
            with suppress(subprocess.TimeoutExpired):
                scratch.wait(timeout=5)
            if scratch.stderr is not None:
                scratch.stderr.close()
