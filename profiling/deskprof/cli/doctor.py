"""``deskprof doctor``: can this machine capture? Each answer comes from a real trial.

Looking for binaries is not enough: on some hosts gdb is installed, ptrace is allowed and
``memray attach`` still fails on every process (or kills it). So the doctor starts
scratch Python processes and tries, one line per method: py-spy dump, memray's Tracker in
a process of its own (what the probe does under ``deskprof run``), and each attach method
(gdb, lldb, sys.remote_exec on Python 3.14+). Attach verdicts are stored where captures
read them (``deskprof.capturing.attach_trial``), so a capture never tries a method the
doctor saw fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deskprof.capturing.attach_trial import SCRATCH, failure_line, methods_for, prove
from deskprof.tools import INSTALL_HINT, find_tool

NAME = "doctor"
HELP = "try py-spy, memray in-process and each memray attach method on scratch processes"

INPROCESS_TRIAL = """
import sys, memray
with memray.Tracker(sys.argv[1], file_format=memray.FileFormat.AGGREGATED_ALLOCATIONS):
    kept = [bytearray(64 * 1024) for _ in range(16)]
reader = memray.FileReader(sys.argv[1])
print(sum(r.size for r in reader.get_high_watermark_allocation_records()))
"""


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only what does not work")
    parser.add_argument(
        "--cached", action="store_true", help="reuse remembered attach verdicts (default: retry)"
    )


def check_pyspy() -> tuple[bool, str]:
    pyspy = find_tool("py-spy")
    if pyspy is None:
        return False, f"py-spy not found: {INSTALL_HINT['py-spy']}"
    scratch = subprocess.Popen([sys.executable, "-c", SCRATCH], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        try:
            out = subprocess.run(
                [pyspy, "dump", "--pid", str(scratch.pid)],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False, "py-spy dump timed out on a scratch process"
        if out.returncode == 0 and "<module>" in out.stdout:
            return True, "py-spy dump read a scratch process's stack"
        text = failure_line(out.stdout + out.stderr)
        if "permission" in text.lower() or "not permitted" in text.lower():
            text += ": run as root or the target's user, or sysctl kernel.yama.ptrace_scope=0"
        return False, f"py-spy dump failed: {text}"
    finally:
        scratch.kill()
        scratch.wait()


def check_inprocess() -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="deskprof-doctor-") as tmp:
        try:
            out = subprocess.run(
                [sys.executable, "-c", INPROCESS_TRIAL, str(Path(tmp) / "t.bin")],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False, "memray.Tracker timed out in a scratch process"
    words = out.stdout.strip().splitlines()
    if out.returncode == 0 and words and words[-1].isdigit() and int(words[-1]) >= 1 << 20:
        return True, (
            "memray.Tracker tracked a scratch process from inside: memory works for targets "
            "started under `deskprof run` or `--launch` (no debugger)"
        )
    return False, f"memray.Tracker failed: {failure_line(out.stdout + out.stderr)}"


def check_ptrace() -> tuple[bool, str]:
    scope_file = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope = scope_file.read_text().strip() if scope_file.exists() else "absent"
    ok = scope in ("0", "absent") or os.geteuid() == 0
    advice = "" if ok else ": attach needs root or `sysctl kernel.yama.ptrace_scope=0`"
    return ok, f"yama ptrace_scope={scope}{advice}"


def checks(*, fresh: bool = True) -> list[tuple[str, bool, str, bool]]:
    """(what, works, detail, required) for each way of capturing."""
    results = [("py-spy", *check_pyspy(), True), ("memray", *check_inprocess(), True)]
    results.append(("ptrace", *check_ptrace(), False))
    for method in methods_for(sys.version_info[:2]):
        label = f"attach:{method}"
        if method == "sys.remote_exec" and not hasattr(sys, "remote_exec"):
            continue
        if method != "sys.remote_exec" and find_tool(method) is None:
            results.append((label, False, f"{method} not found: {INSTALL_HINT[method]}", False))
            continue
        trial = prove(method, fresh=fresh)
        detail = trial.detail if trial.ok else f"fails here: {trial.detail}; not used on targets"
        results.append((label, trial.ok, detail, False))
    return results


def run(args: argparse.Namespace) -> int:
    results = checks(fresh=not args.cached)
    for what, ok, detail, _required in results:
        if not ok or not args.quiet:
            print(f"{'ok ' if ok else 'NO '} {what:<20} {detail}")
    attach = [
        what.split(":", 1)[1] for what, ok, _, _ in results if what.startswith("attach:") and ok
    ]
    memory_inside = next(ok for what, ok, _, _ in results if what == "memray")
    summary = []
    if memory_inside:
        summary.append("memory: in-process (deskprof run / --launch)")
    summary.append(
        f"memory by attach: {', '.join(attach)}"
        if attach
        else "memory by attach: no method works here; start services under `deskprof run`"
    )
    print("-> " + "; ".join(summary))
    return 1 if any(not ok and required for _, ok, _, required in results) else 0
