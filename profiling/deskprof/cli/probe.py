"""``deskprof probe on|off|reset|status --dir DIR``: the probe's run-time switch.

``on``/``off`` write a control file in the probe directory; every process writing there
(every worker of every server started with ``deskprof run --out DIR`` or
``install(out_dir=DIR)``) follows within a quarter of a second, without a restart.
``reset`` removes the control files: each process goes back to how it was started.
``status`` shows the switch and, per process, what its last ``probe_stats`` line says.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from deskprof.errors import DeskprofError
from deskprof.probe import control
from deskprof.probe.config import ENV_DIR
from deskprof.probe.reader import file_pid, probe_files, probe_stats

NAME = "probe"
HELP = "switch the in-process probe on or off at run time, or show what it has written"


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("on", "off", "reset", "status"))
    parser.add_argument(
        "--dir",
        metavar="DIR",
        default=os.environ.get(ENV_DIR),
        help=f"the probe output directory (default: ${ENV_DIR})",
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def status_lines(directory: Path) -> list[str]:
    state = control.read_state(directory)
    switch = {
        "on": f"ON ({control.ON_FILE} present)",
        "off": f"OFF ({control.OFF_FILE} present)",
        None: "as each process was started (no control file)",
    }[state]
    lines = [f"probe in {directory}: {switch}"]
    stats = probe_stats(directory)
    files = {pid: f for f in probe_files(directory) if (pid := file_pid(f)) is not None}
    if not files:
        lines.append("no process has written anything yet")
    now = time.time_ns()
    for pid in sorted(files):
        s = stats.get(pid, {})
        age = f"{(now - s['ts_ns']) / 1e9:.0f}s ago" if "ts_ns" in s else "never"
        lines.append(
            f"pid {pid:>7}  {'running' if _alive(pid) else 'exited ':<7}  "
            f"written {s.get('written', '?'):>8}  dropped {s.get('dropped', '?'):>6}  "
            f"errors {s.get('errors', '?'):>4}  recording {'yes' if s.get('active') else 'no '}  "
            f"stats {age:>8}  file {_size(files[pid].stat().st_size)}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    if not args.dir:
        raise DeskprofError(f"which probe directory? give --dir DIR (or set {ENV_DIR})")
    directory = Path(args.dir)
    if args.action == "status":
        if not directory.is_dir():
            raise DeskprofError(f"no probe directory at {directory}")
        print("\n".join(status_lines(directory)))
        return 0
    try:
        control.set_state(directory, None if args.action == "reset" else args.action)
    except OSError as exc:
        raise DeskprofError(f"cannot switch the probe in {directory}: {exc}") from exc
    if args.action == "reset":
        print(f"probe in {directory}: control files removed; processes use their start setting")
    else:
        print(
            f"probe in {directory}: {args.action.upper()}; running processes follow within 0.25 s"
        )
    return 0
