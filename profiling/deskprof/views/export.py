"""A capture in the tools engineers already use: speedscope and Perfetto (Chrome trace).

- :func:`to_speedscope` writes speedscope's JSON file format
  (https://www.speedscope.app/file-format-schema.json): one "sampled" profile per thread
  (or per endpoint), samples in time order, each weighted by its milliseconds, so
  speedscope's time-order, left-heavy and sandwich views all work.
- :func:`to_chrome_trace` writes the Trace Event format Perfetto and chrome://tracing
  open: requests and their SQL as complete ("X") slices on the thread that ran them, and
  optionally the sampled Python stacks as a flame chart on a track beside each thread.
  Timestamps are microseconds since the capture start (``otherData.start_ns`` is that
  start in epoch nanoseconds). Statements are exported with placeholders, never values.
"""

from __future__ import annotations

import json
import os
from itertools import count
from pathlib import Path
from typing import Any

import pandas as pd

from deskprof.errors import DeskprofError
from deskprof.views.figures import endpoint_labels
from deskprof.views.flametree import (
    UNKNOWN_STACK,
    parse_frame,
    sample_endpoints,
    sample_period_ms,
    stack_labels,
)

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
EXPORTER = "deskprof"
STATEMENT_CHARS = 2000


def _write_json(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        json.dump(document, f, separators=(",", ":"), allow_nan=False)
    return out


def speedscope_document(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    *,
    group_by: str = "thread",
    name: str = "deskprof capture",
    rate_hz: float | None = None,
    processes: bool = False,
) -> dict[str, Any]:
    """The speedscope file as a dict. ``group_by="thread"`` gives one profile per
    (pid, thread); ``"endpoint"`` one per endpoint (``"(outside requests)"`` for the rest).
    The heaviest profile opens first."""
    if group_by not in ("thread", "endpoint"):
        raise DeskprofError(f"group_by must be 'thread' or 'endpoint', not {group_by!r}")
    period_ms = sample_period_ms(samples, rate_hz)
    labels = stack_labels(stacks, short_paths=False, processes=processes)
    frames: list[dict[str, Any]] = []
    frame_index: dict[str, int] = {}

    def index(label: str) -> int:
        i = frame_index.get(label)
        if i is None:
            function, file, line = parse_frame(label)
            frame: dict[str, Any] = {"name": function}
            if file:
                frame["file"] = file
            if line is not None:
                frame["line"] = line
            i = frame_index[label] = len(frames)
            frames.append(frame)
        return i

    stack_cache: dict[int, list[int]] = {}

    def stack(stack_id: int) -> list[int]:
        out = stack_cache.get(stack_id)
        if out is None:
            out = stack_cache[stack_id] = [index(f) for f in labels.get(stack_id, (UNKNOWN_STACK,))]
        return out

    ordered = samples.sort_values("ts_ns", kind="stable")
    if group_by == "thread":
        keys = ["pid", "thread_id"]
    else:
        ordered = ordered.assign(endpoint=sample_endpoints(ordered))
        keys = ["endpoint"]
    profiles = []
    for key, group in ordered.groupby(keys, sort=True):
        if group_by == "thread":
            pid, thread_id = key
            thread_name = str(group["thread_name"].iloc[0] or "") if "thread_name" in group else ""
            title = f"pid {pid} · {thread_name or 'thread'} {thread_id}"
        else:
            title = str(key[0] if isinstance(key, tuple) else key) or "(outside requests)"
        weights = (group["n_samples"].to_numpy(dtype="float64") * period_ms).round(6).tolist()
        profiles.append(
            {
                "type": "sampled",
                "name": title,
                "unit": "milliseconds",
                "startValue": 0,
                "endValue": float(round(sum(weights), 6)),
                "samples": [stack(int(s)) for s in group["stack_id"]],
                "weights": weights,
            }
        )
    heaviest = max(range(len(profiles)), key=lambda i: profiles[i]["endValue"], default=0)
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": name,
        "activeProfileIndex": heaviest,
        "exporter": EXPORTER,
    }


def to_speedscope(
    samples: pd.DataFrame, stacks: pd.DataFrame, path: str | os.PathLike[str], **options: Any
) -> Path:
    """Write a ``.speedscope.json`` file (see :func:`speedscope_document` for options);
    open it at speedscope.app or with ``speedscope FILE``. Returns the path."""
    return _write_json(speedscope_document(samples, stacks, **options), path)


class _Threads:
    """Small, stable track ids: Python's thread idents are 64-bit addresses, which trace
    viewers do not all accept as tids. A thread's OS id (``native_thread_id`` from the
    requests table) is used when known, else a synthetic id; the track's name keeps the
    original ident."""

    def __init__(self, requests: pd.DataFrame) -> None:
        self.native: dict[tuple[int, int], int] = {}
        if {"native_thread_id", "thread_id", "pid"} <= set(requests.columns):
            for pid, ident, native in (
                requests[["pid", "thread_id", "native_thread_id"]]
                .drop_duplicates()
                .itertuples(index=False)
            ):
                if native:
                    self.native[(int(pid), int(ident))] = int(native)
        self.ids: dict[tuple[int, int, str], int] = {}
        self.names: dict[tuple[int, int], str] = {}
        self._next = count(1 << 24)

    def tid(self, pid: int, ident: int, track: str = "") -> int:
        key = (pid, ident, track)
        tid = self.ids.get(key)
        if tid is None:
            native = None if track else self.native.get((pid, ident))
            tid = self.ids[key] = native if native is not None else next(self._next)
            self.names[(pid, tid)] = f"thread {ident}" + (f" · {track}" if track else "")
        return tid

    def metadata(self) -> list[dict[str, Any]]:
        out = []
        for pid in sorted({pid for pid, _ in self.names}):
            out.append(
                {
                    "ph": "M",
                    "name": "process_name",
                    "pid": pid,
                    "tid": 0,
                    "args": {"name": f"worker {pid}"},
                }
            )
        for (pid, tid), name in sorted(self.names.items()):
            out.append(
                {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}
            )
        return out


def _free_lane(open_ends: list[list[int]], begin: int, end: int) -> int:
    """The first lane (a stack of open slices' ends) this slice nests in; opens it there."""
    for lane, stack in enumerate(open_ends):
        while stack and stack[-1] <= begin:
            stack.pop()
        if not stack or end <= stack[-1]:
            stack.append(end)
            return lane
    open_ends.append([end])
    return len(open_ends) - 1


def _on_lanes(
    slices: list[tuple[int, int, int, int, dict[str, Any]]], threads: _Threads, start_ns: int
) -> list[dict[str, Any]]:
    """Complete events must nest on a track, but an asyncio worker serves overlapping
    requests on one thread. Each slice goes on its thread's first lane where it either
    starts after everything open has ended or fits inside the innermost open slice; lane 0
    is the thread's own track, further lanes are tracks named after it."""
    out: list[dict[str, Any]] = []
    slices.sort(key=lambda s: (s[0], s[1], s[2], -s[3]))
    lanes: dict[tuple[int, int], list[list[int]]] = {}
    for pid, ident, begin, end, event in slices:
        open_ends = lanes.setdefault((pid, ident), [])
        lane = _free_lane(open_ends, begin, end)
        track = "" if lane == 0 else f"concurrent lane {lane}"
        event.update(
            ph="X",
            pid=pid,
            tid=threads.tid(pid, ident, track),
            ts=_us(begin, start_ns),
            dur=round((end - begin) / 1000.0, 3),
        )
        out.append(event)
    return out


def _us(ns: Any, start_ns: int) -> float:
    return round((int(ns) - start_ns) / 1000.0, 3)


def _stack_slices(
    samples: pd.DataFrame, stacks: pd.DataFrame, threads: _Threads, start_ns: int
) -> list[dict[str, Any]]:
    """Runs of sampled stacks → nested X slices per thread, as a flame chart: a frame
    stays open while consecutive runs share it, and everything closes at a gap."""
    labels = stack_labels(stacks, processes=False)
    events: list[dict[str, Any]] = []
    ordered = samples.sort_values(["pid", "thread_id", "ts_ns"], kind="stable")
    for (pid, ident), group in ordered.groupby(["pid", "thread_id"], sort=False):
        track = (int(pid), threads.tid(int(pid), int(ident), "py-spy stacks"))
        open_frames: list[tuple[str, int]] = []
        last_end = None
        for ts, end, stack_id in group[["ts_ns", "end_ns", "stack_id"]].itertuples(index=False):
            frames = labels.get(int(stack_id), (UNKNOWN_STACK,))
            if last_end is not None and ts > last_end:
                _close(open_frames, 0, last_end, track, start_ns, events)
            shared = 0
            while (
                shared < len(open_frames)
                and shared < len(frames)
                and open_frames[shared][0] == frames[shared]
            ):
                shared += 1
            _close(open_frames, shared, int(ts), track, start_ns, events)
            open_frames.extend((f, int(ts)) for f in frames[shared:])
            last_end = max(int(end), int(ts))
        if last_end is not None:
            _close(open_frames, 0, last_end, track, start_ns, events)
    return events


def _close(
    open_frames: list[tuple[str, int]],
    down_to: int,
    at_ns: int,
    track: tuple[int, int],
    start_ns: int,
    events: list[dict[str, Any]],
) -> None:
    """Ends the open frames above depth ``down_to`` at ``at_ns`` as X slices."""
    while len(open_frames) > down_to:
        name, began = open_frames.pop()
        events.append(
            {
                "name": name,
                "cat": "stack",
                "ph": "X",
                "pid": track[0],
                "tid": track[1],
                "ts": _us(began, start_ns),
                "dur": round((at_ns - began) / 1000.0, 3),
                "_depth": len(open_frames),
            }
        )


def chrome_trace_events(
    requests: pd.DataFrame,
    queries: pd.DataFrame,
    samples: pd.DataFrame | None = None,
    stacks: pd.DataFrame | None = None,
    *,
    start_ns: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The trace's events (metadata first, then by start time, outer slices before the
    slices they contain) and the epoch-ns start their ``ts`` counts from."""
    with_samples = samples is not None and stacks is not None and len(samples) > 0
    if start_ns is None:
        starts = [int(f["start_ns"].min()) for f in (requests, queries) if len(f)]
        if with_samples:
            starts.append(int(samples["ts_ns"].min()))
        if not starts:
            raise DeskprofError("nothing to export: no requests, queries or samples")
        start_ns = min(starts)
    threads = _Threads(requests)
    slices: list[tuple[int, int, int, int, dict[str, Any]]] = []
    if len(requests):
        names = endpoint_labels(requests)
        for row, name in zip(requests.itertuples(index=False), names, strict=True):
            args = {"request_id": row.request_id, "status": int(row.status), "handler": row.handler}
            if row.error:
                args["error"] = row.error
            end = int(row.start_ns) + max(int(row.duration_ns), 0)
            event = {"name": name, "cat": "request", "args": args}
            slices.append((int(row.pid), int(row.thread_id), int(row.start_ns), end, event))
    if len(queries):
        has_fingerprint = "fingerprint" in queries.columns
        for row in queries.itertuples(index=False):
            statement = str(row.statement)
            title = str(row.fingerprint) if has_fingerprint else statement
            args = {
                "statement": statement[:STATEMENT_CHARS],
                "rowcount": int(row.rowcount),
                "call_site": row.call_site,
                "request_id": row.request_id,
            }
            if row.error:
                args["error"] = row.error
            end = int(row.start_ns) + max(int(row.duration_ns), 0)
            event = {"name": title[:120], "cat": "sql", "args": args, "_depth": 1}
            slices.append((int(row.pid), int(row.thread_id), int(row.start_ns), end, event))
    events = _on_lanes(slices, threads, start_ns)
    if with_samples:
        events.extend(_stack_slices(samples, stacks, threads, start_ns))
    # Outer before inner: by start, longer first, then stack depth (a frame and its only
    # callee can share start and duration exactly).
    order = sorted((e["ts"], -e["dur"], e.pop("_depth", 0), i) for i, e in enumerate(events))
    return threads.metadata() + [events[i] for *_, i in order], start_ns


def to_chrome_trace(
    requests: pd.DataFrame,
    queries: pd.DataFrame,
    samples: pd.DataFrame | None,
    stacks: pd.DataFrame | None,
    path: str | os.PathLike[str],
    *,
    start_ns: int | None = None,
) -> Path:
    """Write a Chrome Trace Event JSON file (open it at ui.perfetto.dev or
    chrome://tracing). Pass ``samples=None`` to leave the stack tracks out. Returns the
    path."""
    events, start = chrome_trace_events(requests, queries, samples, stacks, start_ns=start_ns)
    document = {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"exporter": EXPORTER, "start_ns": str(start), "ts": "µs since start_ns"},
    }
    return _write_json(document, path)
