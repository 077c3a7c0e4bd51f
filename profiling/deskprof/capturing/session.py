"""A capture session: run every source together for a bounded time, write one bundle.

Order of events: validate (URL answers, PIDs exist) → bundle directory with a manifest
that says "partial: in progress" → start sources (system, services, CPU, memory, probe
window) → drive the workload → watch for the end (duration, target exit, disk cap,
Ctrl-C) → stop sources → convert to Parquet → reconcile counts → final manifest.
Whatever stops a capture early, what was captured is kept and the reason written down.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskprof import paths
from deskprof.bundle.manifest import Manifest
from deskprof.bundle.reader import Capture, open_capture
from deskprof.bundle.writer import BundleWriter, host_facts, tool_versions
from deskprof.capturing.signals import Interrupted, StopSignals, signal_name
from deskprof.capturing.sources import AVAILABLE_SOURCES, SOURCE_NAMES, Source, build_sources
from deskprof.capturing.target import Target, wait_for_url
from deskprof.capturing.workload import WorkloadRun, WorkloadSpec, read_workload
from deskprof.errors import DeskprofError, OptionError, TargetUnreachable
from deskprof.redact import redact_url

MIN_CPU_RATE, MAX_CPU_RATE = 1, 1000  # above ~1 kHz py-spy takes a core and skews the target
MIN_DISK_MB = 1.0


@dataclass
class CaptureOptions:
    """Everything ``deskprof capture`` takes; the notebook API takes the same."""

    url: str
    pids: list[int] = field(default_factory=list)
    launch: str | None = None
    duration_s: float = 30.0
    sources: tuple[str, ...] = AVAILABLE_SOURCES
    workload: WorkloadSpec | None = field(default_factory=WorkloadSpec)
    out: Path | None = None
    cpu_rate: int = 100
    memory_mode: str = "full"  # full | aggregate
    keep_parameters: bool = False
    database_url: str | None = None
    redis_url: str | None = None
    max_disk_mb: float = 2048.0
    label: str = ""
    # the target's source revision (a release tag, an image digest); else git in its cwd
    target_revision: str | None = None
    launch_env: dict[str, str] = field(default_factory=dict)
    progress: Callable[[str], None] | None = None

    def validate(self) -> None:
        if not self.sources:
            raise OptionError(
                "{sources} names no source; choose from " + ", ".join(SOURCE_NAMES), "sources"
            )
        unknown = sorted(set(self.sources) - set(SOURCE_NAMES))
        if unknown:
            raise DeskprofError(
                f"unknown source(s): {', '.join(unknown)}; choose from {', '.join(SOURCE_NAMES)}"
            )
        missing = sorted(set(self.sources) - set(AVAILABLE_SOURCES))
        if missing:
            raise OptionError(
                f"source(s) {', '.join(missing)} not available in this version yet; "
                f"use {{sources}} {','.join(AVAILABLE_SOURCES)}",
                "sources",
            )
        if bool(self.pids) == bool(self.launch):
            raise OptionError(
                "give the target either by {pids} (repeatable) or by {launch}", "pids", "launch"
            )
        if not 1 <= self.duration_s <= 6 * 3600:
            raise OptionError("{duration_s} must be between 1 s and 6 h", "duration_s")
        if not MIN_CPU_RATE <= self.cpu_rate <= MAX_CPU_RATE:
            raise OptionError(
                f"{{cpu_rate}} must be between {MIN_CPU_RATE} and {MAX_CPU_RATE} samples/s "
                f"(py-spy's useful range; 100 is the default), got {self.cpu_rate}",
                "cpu_rate",
            )
        if not (math.isfinite(self.max_disk_mb) and self.max_disk_mb >= MIN_DISK_MB):
            raise OptionError(
                f"{{max_disk_mb}} must be at least {MIN_DISK_MB:g} MB (a bundle's manifest and "
                f"tables need room), got {self.max_disk_mb:g}",
                "max_disk_mb",
            )
        if not self.url.startswith(("http://", "https://")):
            raise OptionError(f"{{url}} must be an http(s) URL, got {self.url!r}", "url")
        if self.workload is not None:
            self.workload.validate(self.url)
        for pid in self.pids:
            check_server_pid(pid)


def check_out_dir(path: Path) -> None:
    """The bundle directory must be new or empty, and creatable: one line if not."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is" if parent == path else f"is under {parent}, which is"
            raise OptionError(f"{{out}} {path} {what} a file; choose a directory path", "out")
        if parent.exists():
            break
    if path.is_dir() and any(path.iterdir()):
        raise OptionError(f"{path} already holds files; choose a new {{out}} directory", "out")


def check_server_pid(pid: int) -> None:
    """A PID worth capturing: not init, and Python (itself or a child: a supervisor)."""
    if pid <= 1:
        raise OptionError(
            f"{{pids}} {pid} is {'init' if pid == 1 else 'not a process'}: give the PID of the "
            "Python server (its supervisor or a worker); `pgrep -f uvicorn` finds it",
            "pids",
        )
    import psutil

    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
        names = {p.name() for p in family}
        python = any("python" in p.name().lower() or _runs_python(p) for p in family)
    except psutil.NoSuchProcess:
        return  # Target.attach says so in its own words
    except psutil.AccessDenied:
        return  # someone else's process: the sources say what they may not do
    if not python:
        raise DeskprofError(
            f"PID {pid} ({', '.join(sorted(names))}) is not a Python process and starts none: "
            "deskprof profiles Python servers; give the PID of the Python server"
        )


def _runs_python(proc: Any) -> bool:
    import psutil

    try:
        exe = proc.exe()
    except psutil.Error:
        return False
    return "python" in Path(exe).name.lower()


def _bundle_dir(options: CaptureOptions) -> Path:
    if options.out is not None:
        return options.out
    return paths.run_dir("captures", options.label)


@dataclass
class CaptureResult:
    path: Path
    status: str
    partial_reasons: list[str]
    manifest: Manifest
    signal: int | None = None  # the stop signal that ended the capture early, if any

    @property
    def complete(self) -> bool:
        return not self.partial_reasons


class CaptureSession:
    """Runs one capture; ``run()`` returns the result, raising only for user mistakes
    found before anything started (and even then the bundle says why)."""

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options
        self.writer: BundleWriter | None = None
        self.target: Target | None = None
        self.sources: list[Source] = []
        self.workload: WorkloadRun | None = None
        self.partial: list[str] = []
        self.signals = StopSignals()

    def say(self, message: str) -> None:
        if self.options.progress:
            self.options.progress(message)

    # --- setup -----------------------------------------------------------------------

    def _open_bundle(self) -> BundleWriter:
        o = self.options
        path = _bundle_dir(o)
        check_out_dir(path)
        try:
            writer = BundleWriter(path)
        except OSError as exc:
            raise OptionError(
                f"cannot write the bundle at {path}: {exc.strerror or exc}; choose a writable "
                "{out} directory",
                "out",
            ) from None
        m = writer.manifest
        m.host, m.tools = host_facts(), tool_versions()
        m.options = {
            "url": o.url,
            "duration_s": o.duration_s,
            "sources": list(o.sources),
            "cpu_rate_hz": o.cpu_rate,
            "memory_mode": o.memory_mode,
            "keep_parameters": o.keep_parameters,
            "max_disk_mb": o.max_disk_mb,
            "label": o.label,
        }
        m.workload = o.workload.describe() if o.workload else None
        writer.write_manifest()
        return writer

    def _resolve_target(self, writer: BundleWriter) -> Target:
        o = self.options
        if o.launch:
            env = dict(o.launch_env)
            for source in self.sources:
                env.update(source.launch_env(writer.raw))
            command = o.launch
            for source in self.sources:
                command = source.wrap_launch(command, writer.raw)
            self.say(f"launching: {command}")
            return Target.launch(o.url, command, env, writer.raw / "target.log")
        target = Target.attach(o.url, o.pids)
        wait_for_url(o.url, 5.0)
        return target

    def _describe_target(self, writer: BundleWriter, target: Target) -> None:
        o = self.options
        revision, revision_source = (
            (o.target_revision, "given") if o.target_revision else target.revision()
        )
        writer.manifest.target = {
            "url": target.url,
            "pids": target.pids,
            "all_pids": target.all_pids(),
            "launched": target.launched,
            "command": target.command,
            "opendesk_fixes": target.environ.get("OPENDESK_FIXES", ""),
            "database": redact_url(target.environ.get("OPENDESK_DATABASE_URL", "")),
            "revision": revision,
            "revision_source": revision_source,
        }

    # --- the run -----------------------------------------------------------------------

    def run(self) -> CaptureResult:
        o = self.options
        o.validate()
        self.writer = writer = self._open_bundle()
        with self.signals:
            try:
                try:
                    if o.pids:  # a wrong PID is the user's mistake: say so before anything
                        Target.attach(o.url, o.pids)
                    self.sources = build_sources(o)
                    self.target = self._resolve_target(writer)
                except DeskprofError as exc:
                    writer.finish([f"not started: {exc}"])
                    raise
                except KeyboardInterrupt as exc:
                    self.signals.shield()
                    writer.finish([f"not started: interrupted ({signal_name(exc)})"])
                    raise
                self._describe_target(writer, self.target)
                self._capture(writer, self.target)
            finally:
                self.signals.shield()
                if self.target is not None and self.target.launched:
                    self.target.stop()
        return CaptureResult(
            writer.path, writer.manifest.status, self.partial, writer.manifest,
            self.signals.received,
        )  # fmt: skip

    def _capture(self, writer: BundleWriter, target: Target) -> None:
        o = self.options
        started_ns = time.time_ns()
        writer.manifest.start_ns = started_ns
        writer.manifest.clock = {"kind": "epoch_ns", "anchors": {}}
        try:
            for source in self.sources:
                try:
                    source.start(target, writer)
                except DeskprofError as exc:
                    self.partial.append(f"{source.name}: {exc}")
                    writer.warn(f"{source.name} did not start: {exc}")
            # sources can take seconds to start (an attach trial): the window the user
            # asked for is counted from here, when they all run and the load begins
            writer.manifest.clock["sources_ready_ns"] = time.time_ns()
            writer.write_manifest()
            if o.workload is not None:
                self.workload = WorkloadRun(
                    o.workload, o.url, o.duration_s, writer.raw / "workload"
                )
                self.workload.start()
            stop_reason = self._watch(writer, target, writer.manifest.clock["sources_ready_ns"])
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: stop, keep what we have
            elapsed = (time.time_ns() - started_ns) / 1e9
            stop_reason = f"interrupted ({signal_name(exc)}) after {elapsed:.1f}s"
        self.signals.shield()  # from here on nothing may interrupt stopping and writing
        if stop_reason:
            self.partial.append(stop_reason)
        self.say("stopping the sources and writing the bundle")
        self._stop_all()
        ended_ns = time.time_ns()
        writer.manifest.end_ns = ended_ns
        writer.manifest.duration_s = (ended_ns - started_ns) / 1e9
        self._collect(writer, started_ns, ended_ns)
        writer.finish(self.partial)
        self.say(
            f"bundle {writer.path} ({writer.manifest.status}"
            + (f": {'; '.join(self.partial)}" if self.partial else "")
            + ")"
        )

    def _watch(self, writer: BundleWriter, target: Target, started_ns: int) -> str | None:
        """Wait for the end (``duration_s`` after ``started_ns``, when the sources were
        ready); return why it ended early, or None."""
        o = self.options
        deadline = time.monotonic() + o.duration_s
        cap = o.max_disk_mb * 1024 * 1024
        last_report = 0.0
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(0.5, remaining))
            elapsed = (time.time_ns() - started_ns) / 1e9
            if not target.alive():
                return f"target exited after {elapsed:.1f}s"
            used = writer.size_bytes() + sum(source.pending_bytes() for source in self.sources)
            if used > cap:
                return (
                    f"disk cap of {o.max_disk_mb:g} MB reached after {elapsed:.1f}s "
                    f"({used / 1e6:.1f} MB in the bundle or held by its sources)"
                )
            if time.monotonic() - last_report >= 2:
                last_report = time.monotonic()
                self.say(f"capturing {elapsed:5.1f}/{o.duration_s:g} s")
        return None

    def _stop_all(self) -> None:
        if self.workload is not None:
            self.workload.stop()
        for source in reversed(self.sources):
            try:
                source.stop()
            except Exception as exc:  # stopping must go on for the others
                self.partial.append(f"{source.name}: failed to stop cleanly ({exc})")

    def _collect(self, writer: BundleWriter, started_ns: int, ended_ns: int) -> None:
        if self.workload is not None:
            frame = read_workload(writer.raw / "workload")
            writer.write_table("workload", frame)
        context: dict[str, Any] = {"start_ns": started_ns, "end_ns": ended_ns}
        for source in self.sources:
            try:
                reasons = source.collect(writer, context)
            except DeskprofError as exc:
                reasons = [str(exc)]
            self.partial.extend(f"{source.name}: {r}" for r in reasons)
        writer.manifest.integrity = reconcile(writer)


def reconcile(writer: BundleWriter) -> dict[str, Any]:
    """Requests the load generator sent vs the probe saw; queries the probe saw vs what
    pg_stat_statements counted. Each part is there only when both of its tables are."""
    from deskprof.bundle.reader import read_columns

    out: dict[str, Any] = {}
    probe = writer.manifest.source("sql")
    workload_path = writer.path / "workload.parquet"
    requests_path = writer.path / "requests.parquet"
    if workload_path.exists() and requests_path.exists():
        sent = read_columns(writer.path, "workload", ["request_id", "status"])
        seen = read_columns(writer.path, "requests", ["request_id"])
        answered = sent[sent["status"] > 0]
        matched = answered["request_id"].isin(seen["request_id"]).sum()
        out["requests"] = {
            "workload_sent": len(sent),
            "workload_answered": len(answered),
            "probe_seen": len(seen),
            "matched": int(matched),
            "unmatched_answered": int(len(answered) - matched),
            # logins, health checks, other clients: requests without a workload record
            "probe_only": int((~seen["request_id"].isin(sent["request_id"])).sum()),
            "probe_dropped": int(probe.get("dropped", 0)),
        }
    if (writer.path / "samples.parquet").exists():
        out["samples"] = sample_attribution(writer)
    queries_path = writer.path / "queries.parquet"
    statements_path = writer.path / "db_statements.parquet"
    if queries_path.exists() and statements_path.exists():
        queries = read_columns(writer.path, "queries", ["query_id", "error"])
        server_calls = int(read_columns(writer.path, "db_statements", ["calls"])["calls"].sum())
        succeeded = int((queries["error"] == "").sum())
        out["queries"] = {
            "probe_seen": len(queries),
            "probe_succeeded": succeeded,
            "pg_stat_statements_calls": server_calls,
            "ratio_probe_to_server": round(succeeded / server_calls, 4) if server_calls else None,
            "probe_dropped": int(probe.get("dropped", 0)),
            "note": "the server also counts statements from other clients during the window "
            "(and the capture's own statistics queries); failed statements are not counted "
            "by pg_stat_statements",
        }
    return out


def sample_attribution(writer: BundleWriter) -> dict[str, Any]:
    """How the CPU samples were attributed, by weight: to the request whose task ran
    (``task``), by the handler on the stack (``stack``), by the request on that thread at
    that time (``time``), or not (``none``); the analysis says the same per sample."""
    samples = Capture(writer.path, writer.manifest).samples

    def by_method(rows: Any) -> dict[str, Any]:
        weights = rows.groupby("attributed_by")["n_samples"].sum()
        counts: dict[str, Any] = {key or "none": int(value) for key, value in weights.items()}
        for key in ("task", "stack", "time", "none"):
            counts.setdefault(key, 0)
        return counts

    out = by_method(samples)
    out["on_cpu"] = by_method(samples[samples["state"] == "cpu"])
    out["note"] = (
        "attributed_by per sample: task > stack > time (see deskprof.analysis.attribution)"
    )
    return out


def capture(**kwargs: Any) -> Capture:
    """Notebook entry point: ``capture(url=..., pids=[...], duration_s=30)``; returns
    the bundle opened (``deskprof.findings(deskprof.capture(...))`` works). The CLI
    runs :class:`CaptureSession` itself, for the stop signal and exit code."""
    kwargs.setdefault("progress", lambda line: print(line, file=sys.stderr))
    workload = kwargs.pop("workload", "mixed")
    users, rate = kwargs.pop("users", 10), kwargs.pop("rate", 0.0)
    if isinstance(workload, str):
        kwargs["workload"] = WorkloadSpec(scenario=workload, users=users, rate=rate)
    elif workload is None:
        kwargs["workload"] = None
    else:
        kwargs["workload"] = workload
    if "out" in kwargs and kwargs["out"] is not None:
        kwargs["out"] = Path(kwargs["out"])
    result = CaptureSession(CaptureOptions(**kwargs)).run()
    return open_capture(result.path)


__all__ = [
    "CaptureOptions",
    "CaptureResult",
    "CaptureSession",
    "Interrupted",
    "TargetUnreachable",
    "capture",
]
