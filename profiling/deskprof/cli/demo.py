"""``deskprof demo``: the newcomer's tour (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deskprof.demo import DemoOptions, run_demo

NAME = "demo"
HELP = (
    "start the reference OpenDesk, capture it before and after its fixes, run one "
    "experiment, write data/findings/demo.html"
)


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    defaults = DemoOptions()
    parser.add_argument(
        "--size",
        default=defaults.size,
        help=f"data set: small, medium, demo or large (default {defaults.size})",
    )
    parser.add_argument(
        "--capture-seconds",
        type=float,
        default=defaults.capture_s,
        help=f"length of each capture (default {defaults.capture_s:g})",
    )
    parser.add_argument(
        "--trial-seconds",
        type=float,
        default=defaults.trial_s,
        help=f"length of each experiment trial (default {defaults.trial_s:g})",
    )
    parser.add_argument(
        "--blocks",
        type=int,
        default=defaults.blocks,
        help=f"ABBA blocks of the experiment (default {defaults.blocks})",
    )
    parser.add_argument(
        "--users", type=int, default=defaults.users, help="virtual users during captures"
    )
    parser.add_argument(
        "--workload",
        default=defaults.workload,
        help=f"workload of the captures: a built-in scenario or a locustfile "
        f"(default {defaults.workload})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help=f"experiment load, requests per second, open loop (default {defaults.rate:g})",
    )
    parser.add_argument(
        "--findings-dir",
        type=Path,
        default=defaults.findings_dir,
        help="where demo.html and demo.md go (default data/findings)",
    )
    parser.add_argument("--name", default=defaults.name, help="report file name (default demo)")


def run(args: argparse.Namespace) -> int:
    result = run_demo(
        DemoOptions(
            size=args.size,
            capture_s=args.capture_seconds,
            trial_s=args.trial_seconds,
            blocks=args.blocks,
            users=args.users,
            workload=args.workload,
            rate=args.rate,
            findings_dir=args.findings_dir,
            name=args.name,
        )
    )
    print(
        f"\nThe report: {result.html.resolve()}\n"
        f"  (Markdown: {result.markdown.resolve()})\n"
        f"  open it in a browser: xdg-open {result.html}  (no network, no Python needed)\n"
        f"Captures: {result.baseline}  and  {result.fixed}\n"
        f"Experiment: {result.experiment.path}\n"
        f"Notebooks: make lab   (then open notebooks/00_start_here.ipynb)\n"
        f"The demo took {result.seconds / 60:.1f} min.",
        file=sys.stderr,
    )
    print(result.html)
    return 0 if result.experiment.complete else 1
