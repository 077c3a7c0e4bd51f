"""``deskprof report``: captures and experiments → one shareable HTML or Markdown file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deskprof.cli.options import add_app_package
from deskprof.reporting import FORMATS, report

NAME = "report"
HELP = "write a self-contained HTML (or Markdown) report of captures and experiments"


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="CAPTURE_OR_EXPERIMENT",
        help="capture bundle or experiment result directories, one report section each",
    )
    parser.add_argument("--out", type=Path, required=True, help="the file to write")
    parser.add_argument(
        "--format", choices=FORMATS, help="html (default, self-contained) or md (Markdown)"
    )
    parser.add_argument("--title", default="deskprof findings", help="the report's title")
    parser.add_argument(
        "--explain-database",
        metavar="URL",
        help="database to EXPLAIN slow SELECTs on (enables the missing-index finding)",
    )
    add_app_package(parser)


def run(args: argparse.Namespace) -> int:
    path = report(
        list(args.inputs),
        args.out,
        format=args.format,
        title=args.title,
        explain_url=args.explain_database,
        app_packages=tuple(args.app_package),
    )
    size_kb = path.stat().st_size / 1024
    print(path)
    print(f"deskprof: report written to {path} ({size_kb:,.0f} KB)", file=sys.stderr)
    return 0
