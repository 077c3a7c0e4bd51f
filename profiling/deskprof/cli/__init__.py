"""The ``deskprof`` command: one module per verb, listed in ``COMMANDS``.

Each verb module has ``NAME``, ``HELP``, ``prepare_parser(parser)`` and
``run(args) -> int``. Adding a verb is one new module and one line here.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from deskprof import __version__
from deskprof.cli import (
    capture,
    check,
    demo,
    doctor,
    experiment,
    findings,
    probe,
    report,
    run,
)
from deskprof.cli.options import message
from deskprof.errors import DeskprofError

COMMANDS: list[ModuleType] = [
    capture, doctor, run, probe, experiment, findings, check, report, demo
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deskprof",
        description="CPU, memory and SQL of an OpenDesk service, tied to the endpoint that "
        "caused them, and proof with statistics that a fix made it faster.",
        epilog="A tour of everything: deskprof demo. Typical use: deskprof capture → "
        "deskprof findings → deskprof experiment → deskprof report. "
        "`deskprof VERB --help` for each.",
    )
    parser.add_argument("--version", action="version", version=f"deskprof {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        verb = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.prepare_parser(verb)
        verb.set_defaults(run=module.run, flags=getattr(module, "FLAGS", {}))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DeskprofError as exc:
        print(f"deskprof: {message(exc, args.flags)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        from deskprof.capturing.signals import exit_code, signal_name

        print(f"deskprof: interrupted ({signal_name(exc)})", file=sys.stderr)
        return exit_code(getattr(exc, "signum", None))
