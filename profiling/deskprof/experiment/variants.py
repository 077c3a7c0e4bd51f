"""What is compared: a baseline and a candidate, each one of three kinds.

- **launch**: a command and its environment (``OPENDESK_FIXES=eager_loading``), started
  on a free loopback port, waited for, stopped after. Run under the in-process probe by
  default, so queries and DB time per request are measured too.
- **change**: a change applied to and reverted on a running target (``python -m opendesk
  migrate indexes apply`` / ``... revert``, or two Python callables). Entering the arm
  applies it, leaving reverts it; it is reverted once before the first trial (so the
  other arm is measured without it) and after the last.
- **url**: an already running service (staging before/after a deploy: two URLs).

``Variant`` is the declaration; ``Arm`` is the live thing the runner sends load to.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskprof.capturing.target import Target, wait_for_url
from deskprof.errors import DeskprofError, TargetUnreachable
from deskprof.probe.bootstrap import probe_environment

OPENDESK_SERVE = "{python} -m opendesk serve --port {port}"
Change = str | Callable[[], Any]


@dataclass
class Variant:
    """One arm's declaration. Build with ``Variant.launch``, ``.change`` or ``.running``."""

    kind: str  # launch | change | url
    name: str = ""
    url: str = ""
    command: str = OPENDESK_SERVE
    env: dict[str, str] = field(default_factory=dict)
    apply: Change | None = None
    revert: Change | None = None
    pids: list[int] = field(default_factory=list)
    probe: bool = True  # launch only: run under the deskprof probe

    @classmethod
    def launch(
        cls,
        env: dict[str, str] | None = None,
        *,
        command: str = OPENDESK_SERVE,
        name: str = "",
        probe: bool = True,
    ) -> Variant:
        """Start ``command`` (``{port}`` and ``{python}`` are filled in) with ``env``."""
        env = dict(env or {})
        label = name or ",".join(f"{k}={v}" for k, v in env.items()) or command
        return cls("launch", name=label, command=command, env=env, probe=probe)

    @classmethod
    def change(
        cls,
        url: str,
        apply: Change,
        revert: Change,
        *,
        name: str = "",
        pids: list[int] | None = None,
    ) -> Variant:
        """The running target at ``url`` with ``apply`` done (``revert`` undoes it)."""
        label = name or (apply if isinstance(apply, str) else getattr(apply, "__name__", "change"))
        return cls("change", name=label, url=url, apply=apply, revert=revert, pids=pids or [])

    @classmethod
    def running(cls, url: str, *, name: str = "", pids: list[int] | None = None) -> Variant:
        """An already running service; ``pids`` (optional) give CPU and RSS."""
        return cls("url", name=name or url, url=url, pids=list(pids or []))

    @classmethod
    def parse(cls, text: str, *, launch: str = OPENDESK_SERVE) -> Variant:
        """The CLI's spelling: ``http(s)://...`` (running), ``env:K=V[,K=V]`` (launch
        ``launch`` with that environment; ``env:OPENDESK_FIXES=a,b`` keeps the comma list)
        or ``cmd:COMMAND`` (launch that command)."""
        if text.startswith(("http://", "https://")):
            return cls.running(text)
        if text.startswith("env:"):
            return cls.launch(_parse_env(text[4:]), command=launch)
        if text.startswith("cmd:") and text[4:].strip():
            return cls.launch(command=text[4:].strip())
        raise DeskprofError(
            f"cannot read variant {text!r}: give a URL (http://127.0.0.1:8000), "
            "env:OPENDESK_FIXES=eager_loading or cmd:'COMMAND --port {port}'"
        )

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.kind == "launch":
            out.update(command=self.command, env=self.env, probe=self.probe)
        else:
            out["url"] = self.url
        if self.kind == "change":
            out.update(apply=_change_name(self.apply), revert=_change_name(self.revert))
        if self.pids:
            out["pids"] = self.pids
        return out


def _parse_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    key = ""
    for part in text.split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip()
            if not key:
                break
            env[key] = value
        elif key:  # OPENDESK_FIXES=a,b: a comma list belongs to the last key
            env[key] += "," + part
        else:
            break
    else:
        if env:
            return env
    raise DeskprofError(f"cannot read environment {text!r}: write env:NAME=VALUE[,NAME=VALUE]")


def _change_name(change: Change | None) -> str | None:
    if change is None or isinstance(change, str):
        return change
    return getattr(change, "__qualname__", repr(change))


def run_change(change: Change, what: str, timeout_s: float = 1800) -> None:
    """Run an apply/revert command (or callable); one-line DeskprofError if it fails."""
    if callable(change):
        try:
            change()
        except Exception as exc:
            raise DeskprofError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
        return
    args = shlex.split(change)
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise DeskprofError(f"{what}: command not found: {args[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DeskprofError(f"{what}: {change!r} did not finish in {timeout_s:g}s") from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DeskprofError(f"{what}: {change!r} exited {done.returncode}: {last[0]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Arm:
    """A variant made live: where to send load, which PIDs to watch, how to switch."""

    role: str  # baseline | candidate
    variant: Variant
    url: str
    target: Target | None = None
    probe_dir: Path | None = None
    pids: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.variant.name

    def enter(self) -> None:
        if self.variant.kind == "change" and self.variant.apply is not None:
            run_change(self.variant.apply, f"{self.role} apply")

    def leave(self) -> None:
        if self.variant.kind == "change" and self.variant.revert is not None:
            run_change(self.variant.revert, f"{self.role} revert")

    def all_pids(self) -> list[int]:
        if self.target is not None:
            return self.target.all_pids()
        return list(self.pids)

    def alive(self) -> bool:
        return self.target is None or self.target.alive()

    def stop(self) -> None:
        if self.target is not None and self.target.launched:
            self.target.stop()


def _indexes_fix(env: dict[str, str]) -> bool:
    fixes = {f.strip() for f in env.get("OPENDESK_FIXES", "none").split(",")}
    return bool(fixes & {"all", "indexes"})


def check_pair(baseline: Variant, candidate: Variant) -> None:
    """Refuse combinations that cannot measure what they claim, before anything starts."""
    for variant in (baseline, candidate):
        if variant.kind not in ("launch", "change", "url"):
            raise DeskprofError(f"unknown variant kind {variant.kind!r}")
        if variant.kind != "launch" and not variant.url.startswith(("http://", "https://")):
            raise DeskprofError(f"variant {variant.name!r} needs an http(s) URL")
        if variant.kind == "change" and (variant.apply is None or variant.revert is None):
            raise DeskprofError(f"variant {variant.name!r} needs both --apply and --revert")
    if baseline.kind == candidate.kind == "launch":
        envs = [{**os.environ, **v.env} for v in (baseline, candidate)]
        serve = all(
            "opendesk serve" in v.command and "--no-migrate" not in v.command
            for v in (baseline, candidate)
        )
        same_db = envs[0].get("OPENDESK_DATABASE_URL") == envs[1].get("OPENDESK_DATABASE_URL")
        if serve and same_db and _indexes_fix(envs[0]) != _indexes_fix(envs[1]):
            # serve matches the migration to its fixes at start: the second would win
            raise DeskprofError(
                "baseline and candidate differ in the indexes fix but share one database; "
                "compare it with --apply/--revert on one running target, or give each arm "
                "its own OPENDESK_DATABASE_URL"
            )


def start_arm(role: str, variant: Variant, workdir: Path, progress: Callable[[str], None]) -> Arm:
    """Launch (or reach) the variant; TargetUnreachable in one line if it does not answer."""
    if variant.kind != "launch":
        try:
            wait_for_url(variant.url, 10.0)
        except TargetUnreachable as exc:
            why = str(exc).partition("(")[2].partition(")")[0] or "no answer"
            raise TargetUnreachable(
                f"{role} {variant.url} does not answer ({why}): check the URL and that the "
                "service is running"
            ) from exc
        return Arm(role, variant, variant.url, pids=list(variant.pids))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = variant.command.replace("{port}", str(port)).replace(
        "{python}", shlex.quote(sys.executable)
    )
    env = {**os.environ, **variant.env}
    probe_dir = None
    if variant.probe:
        probe_dir = workdir / f"probe-{role}"
        env = probe_environment(env, out=probe_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    progress(f"{role}: launching {command} ({variant.name})")
    try:
        target = Target.launch(url, command, env, workdir / f"{role}.log", timeout_s=120)
    except TargetUnreachable as exc:
        log = workdir / f"{role}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        said = f" (its last line: {tail[0]})" if tail else ""
        raise TargetUnreachable(f"{role} did not start: {exc}{said}; log: {log}") from exc
    return Arm(role, variant, url, target=target, probe_dir=probe_dir)
