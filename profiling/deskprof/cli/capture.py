"""``deskprof capture``: CPU, memory, requests and SQL from a running OpenDesk, one bundle.

Exit codes: 0 complete bundle; 1 partial bundle (kept, with the reason in its manifest
and on the terminal); 2 a mistake in the command; 128 + the signal when stopped by one
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; bundle kept, partial).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deskprof.capturing.memory import MODES
from deskprof.capturing.session import CaptureOptions, CaptureSession
from deskprof.capturing.signals import exit_code
from deskprof.capturing.sources import AVAILABLE_SOURCES, SOURCE_NAMES
from deskprof.capturing.workload import WorkloadSpec
from deskprof.cli.options import defaults
from deskprof.workloads import SCENARIOS

NAME = "capture"
HELP = "capture CPU, memory, requests and SQL from a running (or launched) OpenDesk"

#: option keyword (``CaptureOptions``, ``WorkloadSpec``) → the flag that sets it
FLAGS = {
    "url": "--url",
    "pids": "--pid",
    "launch": "--launch",
    "duration_s": "--duration",
    "sources": "--sources",
    "cpu_rate": "--cpu-rate",
    "memory_mode": "--memory-mode",
    "max_disk_mb": "--max-disk-mb",
    "out": "--out",
    "label": "--label",
    "target_revision": "--target-revision",
    "users": "--users",
    "rate": "--rate",
    "allow_remote": "--allow-remote-load",
}
_CAPTURE = defaults(CaptureOptions)
_LOAD = defaults(WorkloadSpec)


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target")
    target.add_argument("--url", required=True, help="the target's base URL")
    target.add_argument(
        "--pid", type=int, action="append", default=[], help="a target PID (repeatable)"
    )
    target.add_argument(
        "--launch", metavar="COMMAND", help="start this command instrumented, stop it after"
    )
    what = parser.add_argument_group("what and how long")
    what.add_argument(
        "--duration",
        type=float,
        default=_CAPTURE["duration_s"],
        help=f"seconds (default {_CAPTURE['duration_s']:g})",
    )
    what.add_argument(
        "--sources",
        default=",".join(AVAILABLE_SOURCES),
        help=f"comma list of {', '.join(SOURCE_NAMES)} (default: {','.join(AVAILABLE_SOURCES)})",
    )
    what.add_argument(
        "--cpu-rate",
        type=int,
        default=_CAPTURE["cpu_rate"],
        help=f"py-spy samples/s (default {_CAPTURE['cpu_rate']})",
    )
    what.add_argument(
        "--memory-mode",
        choices=list(MODES),
        default=_CAPTURE["memory_mode"],
        help="memray: every allocation (temporal view) or aggregated (smaller files)",
    )
    what.add_argument(
        "--keep-parameters",
        action="store_true",
        help="keep SQL parameter values (for EXPLAIN); redacted to their types by default",
    )
    load = parser.add_argument_group("workload")
    load.add_argument(
        "--workload",
        default="mixed",
        help=f"built-in scenario ({', '.join(SCENARIOS)}), a locustfile path, or 'none'",
    )
    load.add_argument(
        "--users", type=int, default=_LOAD["users"], help="closed loop: concurrent users"
    )
    load.add_argument(
        "--rate",
        type=float,
        default=_LOAD["rate"],
        help="open loop: requests per second (overrides users)",
    )
    load.add_argument(
        "--allow-remote-load",
        action="store_true",
        help="allow load against a non-loopback URL (a staging host you own)",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, help="bundle directory (default data/captures/<time>)")
    out.add_argument("--label", default="", help="a short name for the bundle directory")
    out.add_argument(
        "--max-disk-mb",
        type=float,
        default=_CAPTURE["max_disk_mb"],
        help=f"stop at this bundle size (default {_CAPTURE['max_disk_mb']:g})",
    )
    out.add_argument(
        "--target-revision",
        metavar="REV",
        help="the target's source revision (a tag, a commit, an image digest) for the "
        "manifest; default: git in the target's working directory, when it has one",
    )
    out.add_argument("--database-url", help="for server statistics (default: the target's env)")
    out.add_argument("--redis-url", help="for Redis INFO deltas (default: the target's env)")


def options_from(args: argparse.Namespace) -> CaptureOptions:
    workload = None
    if args.workload.lower() != "none":
        workload = WorkloadSpec(
            scenario=args.workload,
            users=args.users,
            rate=args.rate,
            allow_remote=args.allow_remote_load,
        )
    return CaptureOptions(
        url=args.url,
        pids=args.pid,
        launch=args.launch,
        duration_s=args.duration,
        sources=tuple(s.strip() for s in args.sources.split(",") if s.strip()),
        workload=workload,
        out=args.out,
        cpu_rate=args.cpu_rate,
        memory_mode=args.memory_mode,
        keep_parameters=args.keep_parameters,
        database_url=args.database_url,
        redis_url=args.redis_url,
        max_disk_mb=args.max_disk_mb,
        label=args.label,
        target_revision=args.target_revision,
        progress=lambda line: print(f"deskprof: {line}", file=sys.stderr, flush=True),
    )


def run(args: argparse.Namespace) -> int:
    result = CaptureSession(options_from(args)).run()
    print(result.path)
    if result.complete:
        return 0
    print(
        f"deskprof: partial capture kept in {result.path}: {'; '.join(result.partial_reasons)}",
        file=sys.stderr,
    )
    return exit_code(result.signal) if result.signal else 1
