"""``deskprof findings DIR``: the ranked problems a capture shows, as text or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deskprof.cli.options import add_app_package
from deskprof.errors import DeskprofError

NAME = "findings"
HELP = "list the problems a capture shows (N+1, missing index, hot spots...), ranked"


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="DIR", help="capture bundle directory")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    parser.add_argument(
        "--explain-database",
        metavar="URL",
        help="database to EXPLAIN the slowest SELECTs on (enables the missing-index detector); "
        "postgresql://... or sqlite:///path",
    )
    parser.add_argument(
        "--explain-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="statement_timeout, more than 0 and at most 3600 s (default 5)",
    )
    parser.add_argument(
        "--explain-analyze",
        action="store_true",
        help="EXPLAIN ANALYZE (executes each SELECT, in a read-only transaction rolled back; "
        "never one that calls a volatile or unknown function). Default: plan only",
    )
    add_app_package(parser)
    parser.add_argument(
        "--min-severity", choices=("low", "medium", "high"), default="low", help="hide milder"
    )


def render_text(
    findings: list[Any], skipped: list[dict[str, str]], by_design: list[Any] = ()
) -> str:
    """The findings as a readable ranked list (the words are finding_text's, shared with
    the reports)."""
    from deskprof.analysis.finding_text import plain_text  # pandas: only when shown

    return plain_text(findings, skipped, list(by_design))


def run(args: argparse.Namespace) -> int:
    from deskprof.analysis import open_capture
    from deskprof.analysis.explain import MAX_TIMEOUT_S
    from deskprof.analysis.finding import Thresholds, at_least, findings_to_json
    from deskprof.analysis.findings import detect_all

    if not 0 < args.explain_timeout <= MAX_TIMEOUT_S:
        raise DeskprofError(
            f"--explain-timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds"
        )
    capture = open_capture(args.bundle)
    found = detect_all(
        capture,
        explain_url=args.explain_database,
        thresholds=Thresholds(
            explain_timeout_s=args.explain_timeout, explain_analyze=args.explain_analyze
        ),
        app_packages=tuple(args.app_package),
    )
    shown = at_least(found, args.min_severity)
    if args.format == "json":
        text = findings_to_json(shown, skipped=found.skipped, by_design=found.by_design) + "\n"
    else:
        text = render_text(shown, found.skipped, found.by_design)
        if not capture.complete:
            text += f"note: partial capture ({'; '.join(capture.partial_reasons)})\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise DeskprofError(f"cannot write {args.out}: {exc.strerror}") from None
        print(f"{len(shown)} finding(s) written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
