"""``deskprof check DIR --budgets FILE``: fail CI when a capture breaks its budgets.

Exit 0 when every budget holds, 1 with one line per breach, 2 for a usage mistake (a bad
budgets file, a missing bundle). ``--baseline`` adds the relative budgets, judged with
the experiment statistics (see :mod:`deskprof.analysis.budgets`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deskprof.errors import DeskprofError

NAME = "check"
HELP = "check a capture against performance budgets (p95, queries/request...); exit 1 on a breach"
BREACHED = 1


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="DIR", help="capture bundle directory")
    parser.add_argument("--budgets", metavar="FILE", required=True, help="budgets file (TOML)")
    parser.add_argument(
        "--baseline", metavar="DIR", help="baseline capture for the [relative] budgets"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--report", metavar="FILE", help="also write the checks as Markdown")
    parser.add_argument("--verbose", action="store_true", help="list the budgets that held too")


def markdown(result, budgets, bundle: str) -> str:
    """The checks as a Markdown table, breaches first."""
    from deskprof.analysis.budgets import format_value

    lines = [
        f"# Budgets: {'PASS' if result.passed else 'FAIL'}",
        "",
        f"Capture `{bundle}`, budgets `{budgets.source}`: {len(result.checks)} checks, "
        f"{len(result.breaches)} breached.",
        "",
        "| status | endpoint | metric | value | budget |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in sorted(result.checks, key=lambda c: (c.passed, c.endpoint, c.metric)):
        value = c.detail if c.mode == "relative" else format_value(c.metric, c.value)
        limit = f"+{c.limit - 1:.0%}" if c.mode == "relative" else format_value(c.metric, c.limit)
        status = "ok" if c.passed else "**breach**"
        lines.append(f"| {status} | `{c.endpoint}` | {c.metric} | {value} | {limit} |")
    lines += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from deskprof.analysis.budgets import check, load_budgets
    from deskprof.bundle.reader import open_capture

    budgets = load_budgets(args.budgets)
    capture = open_capture(args.bundle)
    baseline = open_capture(args.baseline) if args.baseline else None
    result = check(capture, budgets, baseline)
    if not result.checks:
        raise DeskprofError(
            f"no budget applied to {args.bundle}: no endpoint of it is named in "
            f'{args.budgets} and there is no [endpoints."*"]'
        )
    if args.format == "json":
        body = {
            "passed": result.passed,
            "checks": [c.__dict__ for c in result.checks],
            "notes": result.notes,
        }
        print(json.dumps(body, indent=2, default=str))
    else:
        shown = result.checks if args.verbose else result.breaches
        for item in sorted(shown, key=lambda c: (c.passed, c.endpoint, c.metric)):
            print(item.line())
        for note in result.notes:
            print(f"note: {note}")
        verdict = "PASS" if result.passed else "FAIL"
        print(f"{verdict}: {len(result.checks) - len(result.breaches)} of "
              f"{len(result.checks)} budgets held")  # fmt: skip
    if args.report:
        try:
            Path(args.report).write_text(markdown(result, budgets, args.bundle), encoding="utf-8")
        except OSError as exc:
            raise DeskprofError(f"cannot write {args.report}: {exc.strerror}") from None
    return 0 if result.passed else BREACHED
