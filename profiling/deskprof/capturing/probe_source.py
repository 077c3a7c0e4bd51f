"""The ``sql`` source: requests, SQL and pool events from the in-process probe.

Two modes, chosen by how the session found its target:

- **launch** (``--launch``): ``launch_env`` gives the command the environment of
  ``deskprof run`` (one function, ``deskprof.probe.bootstrap.launch_environment``), so
  the command and every worker it spawns write ``raw/probe/probe-<pid>.jsonl``.
- **attach** (``--pid``): the target was started under ``deskprof run`` and its
  ``DESKPROF_PROBE_DIR`` (read from ``/proc/<pid>/environ``) says where it writes. The
  source remembers how far each file went, switches the probe on with the control file
  for the capture and puts the switch back as it found it, then reads only what was
  appended and copies it into ``raw/probe/``. A target without a probe is one line and
  a partial bundle, never a failed capture.

Either way only records inside the capture window become the ``requests``, ``queries``
and ``connections`` tables; counts per process (written, dropped, internal errors),
malformed lines and an overhead estimate go into the manifest.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from deskprof.bundle.schema import PROBE_KINDS, TABLES
from deskprof.capturing.source import Source
from deskprof.errors import DeskprofError
from deskprof.probe import control
from deskprof.probe.bootstrap import launch_env_delta
from deskprof.probe.config import ENV_DIR, FLUSH_INTERVAL_S, ProbeConfig
from deskprof.probe.reader import (
    file_offsets,
    file_pid,
    last_stats_before,
    probe_files,
    read_probe_dir,
)
from deskprof.probe.recorder import STATS_INTERVAL_S, STATS_KIND

TIME_COLUMN = {"requests": "start_ns", "queries": "start_ns", "connections": "ts_ns"}
MAX_MALFORMED_LISTED = 20
NO_PROBE = (
    "the target has no probe (no {env} in its environment): start it under "
    "`deskprof run -- <command>` to capture requests and SQL"
)


def records_frame(table: str, records: list[dict[str, Any]]) -> pd.DataFrame:
    """``records`` as the schema's table: exactly its columns and dtypes; a field a
    record lacks gets the column's empty value ("" / 0 / False)."""
    columns = TABLES[table]
    empty = {"int64": 0, "string": "", "bool": False, "float64": float("nan")}
    data = {c.name: [record.get(c.name, empty.get(c.dtype)) for record in records] for c in columns}
    frame = pd.DataFrame(data, columns=[c.name for c in columns])
    for c in columns:
        if c.dtype.startswith("list<"):
            frame[c.name] = pd.Series(
                [list(v) if isinstance(v, list) else [] for v in frame[c.name]],
                index=frame.index,
                dtype=object,
            )
        elif c.dtype == "string":
            frame[c.name] = frame[c.name].fillna("").astype(str).astype("string")
        elif c.dtype == "int64":
            frame[c.name] = pd.to_numeric(frame[c.name], errors="coerce").fillna(0).astype("int64")
        else:
            frame[c.name] = frame[c.name].astype(c.dtype)
    return frame


def in_window(records: list[dict[str, Any]], table: str, start_ns: int, end_ns: int) -> list:
    column = TIME_COLUMN[table]
    return [r for r in records if start_ns <= int(r.get(column) or 0) <= end_ns]


class ProbeSource(Source):
    name = "sql"

    def __init__(self, options: Any) -> None:
        self.options = options
        self.mode = "attach"
        self.directory: Path | None = None
        self.offsets: dict[str, int] = {}
        self.baseline: dict[int, dict[str, Any]] = {}
        self.previous_state: control.State | None = None
        self.switched = False
        self.started = False
        self.stopped_ns = 0

    # --- launch mode ---------------------------------------------------------------------

    def config(self, out_dir: Path) -> ProbeConfig:
        return ProbeConfig(out_dir=str(out_dir), keep_parameters=self.options.keep_parameters)

    def launch_env(self, raw_dir: Any) -> dict[str, str]:
        """What ``deskprof run`` would set, so the launched command and its workers
        write into ``raw/probe/`` (only the keys that differ from the environment)."""
        self.mode = "launch"
        self.directory = Path(raw_dir) / "probe"
        self.directory.mkdir(parents=True, exist_ok=True)
        return launch_env_delta(self.config(self.directory.resolve()), self.options.launch_env)

    # --- the window ----------------------------------------------------------------------

    def start(self, target: Any, writer: Any) -> None:
        if self.mode == "launch":
            self.started = True
            return
        directory = target.environ.get(ENV_DIR)
        if not directory:
            raise DeskprofError(NO_PROBE.format(env=ENV_DIR))
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise DeskprofError(
                f"the target's probe directory {directory} does not exist (or is not "
                "visible from here): run the capture on the target's host, as its user"
            )
        if self.options.keep_parameters:
            writer.warn(
                "sql: --keep-parameters cannot change a running probe: parameter values are "
                "kept only if the target was started with `deskprof run --keep-parameters`"
            )
        self.offsets = file_offsets(self.directory)
        for file in probe_files(self.directory):
            pid = file_pid(file)
            stats = last_stats_before(file, self.offsets.get(file.name, 0))
            if pid is not None and stats is not None:
                self.baseline[pid] = stats
        self.previous_state = control.read_state(self.directory)
        if self.previous_state != "on":
            try:
                control.set_state(self.directory, "on")
            except OSError as exc:
                raise DeskprofError(
                    f"cannot switch the probe on in {directory}: {exc.strerror}; "
                    "run the capture as the target's user"
                ) from exc
            self.switched = True
            time.sleep(2 * FLUSH_INTERVAL_S)  # every process looks each flush interval
        self.started = True

    def pending_bytes(self) -> int:
        """Attach mode: what the target's probe appended since the start (copied into
        ``raw/probe/`` at the end); launch mode writes inside the bundle already."""
        if self.mode != "attach" or not self.started or self.directory is None:
            return 0
        now = file_offsets(self.directory)
        return sum(max(0, size - self.offsets.get(name, 0)) for name, size in now.items())

    def stop(self) -> None:
        if not self.started or self.directory is None:
            return
        self.stopped_ns = time.time_ns()
        if self.switched:
            with contextlib.suppress(OSError):  # reported in collect(): the switch stays on
                control.set_state(self.directory, self.previous_state)
        self._wait_for_flush()

    def _wait_for_flush(self) -> None:
        """Until every process has written what it buffered before the end: at least two
        flush intervals, and until each file's last stats line is newer than the end
        (stats are written at most once a second), for at most one stats interval more."""
        assert self.directory is not None
        time.sleep(2 * FLUSH_INTERVAL_S)
        deadline = time.monotonic() + STATS_INTERVAL_S + FLUSH_INTERVAL_S
        while time.monotonic() < deadline:
            fresh = True
            for file in probe_files(self.directory):
                try:
                    stats = last_stats_before(file, file.stat().st_size)
                except OSError:
                    continue
                if stats is None or int(stats.get("ts_ns", 0)) < self.stopped_ns:
                    fresh = False
                    break
            if fresh:
                return
            time.sleep(FLUSH_INTERVAL_S / 2)

    # --- tables and manifest ---------------------------------------------------------------

    def collect(self, writer: Any, context: dict[str, Any]) -> list[str]:
        if not self.started or self.directory is None:
            return []  # start() failed and the session already said why
        start_ns, end_ns = context["start_ns"], context["end_ns"]
        reasons: list[str] = []
        read = read_probe_dir(self.directory, self.offsets)
        tables = {kind: in_window(read[kind], kind, start_ns, end_ns) for kind in PROBE_KINDS}
        for kind in PROBE_KINDS:
            writer.write_table(kind, records_frame(kind, tables[kind]))
        if self.mode == "attach":
            self._copy_window(writer.raw / "probe", tables, read[STATS_KIND])
        processes = self._process_counts(read[STATS_KIND], tables)
        summary = {
            "mode": self.mode,
            "directory": str(self.directory),
            "keep_parameters": bool(self.options.keep_parameters)
            if self.mode == "launch"
            else "as the target was started",
            "window": "records whose start (requests, queries) or time (connections) "
            "falls between start_ns and end_ns",
            "processes": processes,
            "written": sum(p["written"] for p in processes.values()),
            "dropped": sum(p["dropped"] for p in processes.values()),
            "errors": sum(p["errors"] for p in processes.values()),
            "malformed_lines": len(read["malformed"]),
            "malformed": read["malformed"][:MAX_MALFORMED_LISTED],
        }
        if self.mode == "attach":
            summary["switch"] = {
                "before": self.previous_state or "none (each process's start setting)",
                "switched_on_for_capture": self.switched,
                "restored": self._restored(),
            }
        writer.manifest.sources["sql"] = summary
        self._warn(writer, summary, reasons, tables)
        overhead = writer.manifest.overhead
        overhead["sql"] = self._overhead(tables, start_ns, end_ns)
        return reasons

    def _restored(self) -> bool:
        if not self.switched or self.directory is None:
            return True
        return control.read_state(self.directory) == self.previous_state

    def _process_counts(
        self, stats: list[dict[str, Any]], tables: dict[str, list[dict[str, Any]]]
    ) -> dict[str, dict[str, Any]]:
        """Per pid: what the probe says it wrote/dropped/failed during the capture (its
        counters minus those before the capture) and what fell in the window."""
        out: dict[str, dict[str, Any]] = {}
        for record in stats:
            pid = int(record.get("pid", 0))
            before = self.baseline.get(pid, {})
            out[str(pid)] = {
                key: int(record.get(key, 0)) - int(before.get(key, 0))
                for key in ("written", "dropped", "errors")
            } | {"recording_at_end": bool(record.get("active"))}
        for kind, records in tables.items():
            for record in records:
                entry = out.setdefault(
                    str(record.get("pid", 0)),
                    {"written": 0, "dropped": 0, "errors": 0, "recording_at_end": None},
                )
                entry[f"{kind}_in_window"] = entry.get(f"{kind}_in_window", 0) + 1
        return out

    def _warn(
        self,
        writer: Any,
        summary: dict[str, Any],
        reasons: list[str],
        tables: dict[str, list[dict[str, Any]]],
    ) -> None:
        if summary["dropped"]:
            writer.warn(
                f"sql: the probe dropped {summary['dropped']} records (buffer or file cap "
                "full): requests and queries tables are incomplete; see sources.sql.processes"
            )
        if summary["errors"]:
            writer.warn(
                f"sql: {summary['errors']} internal probe errors (counted, never raised into "
                "the target); see the target's log for the first few"
            )
        if summary["malformed_lines"]:
            writer.warn(
                f"sql: {summary['malformed_lines']} unreadable probe lines skipped "
                "(a process killed mid-write leaves a torn last line)"
            )
        if self.switched and not summary["switch"]["restored"]:
            writer.warn(
                f"sql: could not put the probe switch in {self.directory} back to "
                f"{self.previous_state or 'no control file'}: fix with `deskprof probe "
                f"{self.previous_state or 'reset'} --dir {self.directory}`"
            )
        if not summary["processes"]:
            reasons.append(
                "the probe wrote nothing: is the target a FastAPI/Starlette or Flask app "
                "using SQLAlchemy, started under `deskprof run`?"
            )
        elif not tables["requests"] and self.options.workload is not None:
            writer.warn("sql: the probe saw no requests during the capture")

    def _copy_window(
        self,
        raw_probe: Path,
        tables: dict[str, list[dict[str, Any]]],
        stats: list[dict[str, Any]],
    ) -> None:
        """Attach mode: the captured part of the target's files, kept in the bundle."""
        raw_probe.mkdir(parents=True, exist_ok=True)
        by_pid: dict[int, list[dict[str, Any]]] = {}
        for records in tables.values():
            for record in records:
                by_pid.setdefault(int(record.get("pid", 0)), []).append(record)
        for record in stats:
            by_pid.setdefault(int(record.get("pid", 0)), []).append(record)
        for pid, records in by_pid.items():
            with (raw_probe / f"probe-{pid}.jsonl").open("w", encoding="utf-8") as out:
                for record in records:
                    out.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _overhead(
        self, tables: dict[str, list[dict[str, Any]]], start_ns: int, end_ns: int
    ) -> dict[str, Any]:
        """Records per second per process, times the measured cost of one record."""
        from deskprof.probe.cost import measure

        seconds = max(1e-9, (end_ns - start_ns) / 1e9)
        try:
            cost = measure()
        except Exception as exc:  # an estimate must never cost the capture
            return {"error": f"could not measure the per-record cost: {exc!r}"}
        per_kind_us = {
            "requests": cost["request_us"] + cost["write_us"],
            "queries": cost["query_us"] + cost["write_us"],
            "connections": cost["pool_event_us"] + cost["write_us"],
        }
        pids = {int(r.get("pid", 0)) for records in tables.values() for r in records}
        busiest = 0.0
        for pid in pids:
            cpu_us = sum(
                per_kind_us[kind] * sum(1 for r in tables[kind] if int(r.get("pid", 0)) == pid)
                for kind in PROBE_KINDS
            )
            busiest = max(busiest, cpu_us / 1e6 / seconds)
        requests = tables["requests"]
        result: dict[str, Any] = {
            "per_record_us": cost,
            "records_per_s": {k: round(len(v) / seconds, 1) for k, v in tables.items()},
            "probe_cpu_fraction_busiest_process": round(busiest, 5),
            "how": "records per second of the busiest process x per-record cost measured on "
            "this host (deskprof.probe.cost); CPU the probe adds to that process",
        }
        if requests:
            durations = sorted(int(r.get("duration_ns", 0)) for r in requests)
            median_ns = durations[len(durations) // 2]
            per_request_us = per_kind_us["requests"] + sum(
                per_kind_us[kind] * len(tables[kind]) / len(requests)
                for kind in ("queries", "connections")
            )
            result["per_request_us"] = round(per_request_us, 1)
            if median_ns > 0:
                result["fraction_of_median_request"] = round(per_request_us * 1000 / median_ns, 5)
        return result
