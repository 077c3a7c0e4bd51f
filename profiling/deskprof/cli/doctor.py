"""``deskprof doctor``: can this machine capture? (py-spy, memray, gdb, ptrace)."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from deskprof.tools import INSTALL_HINT, find_tool

NAME = "doctor"
HELP = "check that py-spy, memray, gdb and ptrace permissions are usable here"


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print only problems")


def _version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if out.returncode == 0 and text else None


def checks() -> list[tuple[str, bool, str]]:
    """(what, ok, detail) for each requirement of a capture."""
    results = []
    for name, flag in (("py-spy", "--version"), ("memray", "--version"), ("gdb", "--version")):
        path = find_tool(name)
        version = _version([path, flag]) if path else None
        detail = version or f"{name} not found: {INSTALL_HINT[name]}"
        results.append((name, version is not None, detail))
    scope_file = Path("/proc/sys/kernel/yama/ptrace_scope")
    scope = scope_file.read_text().strip() if scope_file.exists() else "absent"
    ok = scope in ("0", "absent") or _is_root()
    results.append(
        (
            "ptrace",
            ok,
            f"yama ptrace_scope={scope}"
            + ("" if ok else ": attach needs root or `sysctl kernel.yama.ptrace_scope=0`"),
        )
    )
    return results


def _is_root() -> bool:
    return os.geteuid() == 0


def run(args: argparse.Namespace) -> int:
    failed = 0
    for what, ok, detail in checks():
        failed += not ok
        if not ok or not args.quiet:
            print(f"{'ok ' if ok else 'BAD'} {what:<8} {detail}")
    return 1 if failed else 0
