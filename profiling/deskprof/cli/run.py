"""``deskprof run [options] -- COMMAND...``: run an unmodified app with the probe in it.

Like ``opentelemetry-instrument``: the probe's ``sitecustomize`` directory goes first on
``PYTHONPATH``, so every Python process the command starts (uvicorn's spawned workers
included) loads the probe's import hooks, which instrument SQLAlchemy, Starlette/FastAPI
and Flask as the application imports them. Settings travel in ``DESKPROF_PROBE_*``
environment variables.

Then deskprof *becomes* the command (``exec``): same PID, so the command receives SIGINT
and SIGTERM itself, its exit code is deskprof's, and a capture that attaches to the PID
it launched attaches to the server, not to a wrapper.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from deskprof.errors import DeskprofError
from deskprof.probe import bootstrap
from deskprof.probe.config import DEFAULT_MAX_BYTES, ENV_DIR, parse_size

NAME = "run"
HELP = "run a FastAPI/Starlette or Flask + SQLAlchemy command with the probe, unmodified"


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=f"where each process writes probe-<pid>.jsonl (default: ${ENV_DIR}, "
        "else data/probe/<UTC time>)",
    )
    parser.add_argument(
        "--keep-parameters",
        action="store_true",
        help="store query parameter values (default: only their types)",
    )
    parser.add_argument(
        "--sqlcommenter",
        action="store_true",
        help="append /*request_id=...,route=...*/ to each statement sent to the database",
    )
    parser.add_argument(
        "--off",
        action="store_true",
        help="start switched off (switch on with `deskprof probe on --dir DIR`)",
    )
    parser.add_argument(
        "--max-bytes",
        metavar="SIZE",
        default=None,
        help=f"cap per process file, e.g. 64M or 1G (default {DEFAULT_MAX_BYTES // 1024**2}M)",
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="the command to run, after `--`",
    )


def probe_environment(args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """``env`` plus what the probe in the command's processes needs: ``deskprof run``'s
    options, given to :func:`deskprof.probe.bootstrap.probe_environment`."""
    max_bytes = None
    if args.max_bytes is not None:
        try:
            max_bytes = parse_size(args.max_bytes)
        except ValueError as exc:
            raise DeskprofError(f"--max-bytes: {exc}") from exc
    return bootstrap.probe_environment(
        env,
        out=args.out,
        keep_parameters=args.keep_parameters,
        sqlcommenter=args.sqlcommenter,
        off=args.off,
        max_bytes=max_bytes,
    )


def resolve_command(command: list[str], env: dict[str, str]) -> str:
    """The executable ``command[0]`` names, as exec would find it; one-line error if none."""
    name = command[0]
    if os.sep in name:
        if os.path.isfile(name) and os.access(name, os.X_OK):
            return name
        raise DeskprofError(f"command not found or not executable: {name}", exit_code=127)
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None:
        raise DeskprofError(f"command not found: {name} (not on PATH)", exit_code=127)
    return found


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise DeskprofError("no command given: deskprof run [options] -- COMMAND [ARGS...]")
    env = probe_environment(args, dict(os.environ))
    executable = resolve_command(command, env)
    state = "off (switch on: deskprof probe on --dir DIR)" if args.off else "on"
    print(f"deskprof: probe {state}, writing to {env[ENV_DIR]}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "posix":  # no exec that keeps the PID: run as a child
        return _run_child(executable, command, env)
    try:
        os.execve(executable, command, env)
    except OSError as exc:
        raise DeskprofError(f"cannot run {command[0]}: {exc.strerror}", exit_code=126) from exc
    return 0  # not reached


def _run_child(executable: str, command: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen([executable, *command[1:]], env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # the child got the console's Ctrl-C too: wait for it
            continue


def main(argv: list[str] | None = None) -> int:
    """``python -m deskprof.cli.run`` (before the verb is registered in ``deskprof``)."""
    parser = argparse.ArgumentParser(prog="deskprof run", description=HELP)
    prepare_parser(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except DeskprofError as exc:
        print(f"deskprof: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
