"""Read a probe output directory back (standard library only).

The capture session turns the result into Parquet with pandas; notebooks and tests can
use the dicts directly. A process killed mid-write can leave a half line at the end of
its file: such lines are skipped and reported as ``malformed``, never fatal.

A capture attached to a long-running server reads only what was appended since it
started: ``file_offsets()`` at the start, ``read_probe_dir(path, offsets)`` at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deskprof.bundle.schema import PROBE_KINDS
from deskprof.errors import BundleError
from deskprof.probe.recorder import STATS_KIND

FILE_GLOB = "probe-*.jsonl"
TAIL_BYTES = 256 * 1024  # how far back from an offset the last stats line is looked for


def probe_files(path: str | os.PathLike[str]) -> list[Path]:
    directory = Path(path)
    if not directory.is_dir():
        raise BundleError(f"no probe output directory at {directory}")
    return sorted(directory.glob(FILE_GLOB))


def file_pid(file: Path) -> int | None:
    """The pid in ``probe-<pid>.jsonl``; None for a name that does not fit."""
    try:
        return int(file.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return None


def file_offsets(path: str | os.PathLike[str]) -> dict[str, int]:
    """Size of each probe file now (file name → bytes): where a later read starts."""
    offsets = {}
    for file in probe_files(path):
        try:
            offsets[file.name] = file.stat().st_size
        except FileNotFoundError:
            continue
    return offsets


def read_probe_dir(
    path: str | os.PathLike[str], offsets: Mapping[str, int] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Records by kind: ``requests``, ``queries``, ``connections`` (always present),
    ``probe_stats`` (the last stats line of each pid) and ``malformed`` (lines that are
    not JSON records, a torn last line included: ``{"file", "line", "offset"}``).

    ``offsets`` (file name → byte offset) skips what each file held before; files not in
    it are read whole. Records keep their ``kind`` key.
    """
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PROBE_KINDS}
    stats: dict[int, dict[str, Any]] = {}
    malformed: list[dict[str, Any]] = []
    for file in probe_files(path):
        start = (offsets or {}).get(file.name, 0)
        with file.open("rb") as handle:
            handle.seek(start)
            position = start
            for number, raw in enumerate(handle, start=1):
                where = position
                position += len(raw)
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("torn last line")
                    record = json.loads(raw)
                    kind = record["kind"]
                except (ValueError, KeyError, TypeError):
                    if raw.strip():
                        malformed.append({"file": file.name, "line": number, "offset": where})
                    continue
                if kind == STATS_KIND:
                    stats[int(record.get("pid", 0))] = record
                elif kind in out:
                    out[kind].append(record)
                else:
                    malformed.append({"file": file.name, "line": number, "offset": where})
    out[STATS_KIND] = [stats[pid] for pid in sorted(stats)]
    out["malformed"] = malformed
    return out


def last_stats_before(file: Path, offset: int) -> dict[str, Any] | None:
    """The last ``probe_stats`` line that ends at or before ``offset`` (looked for in the
    last ``TAIL_BYTES``): the counters a capture starting at ``offset`` subtracts."""
    start = max(0, offset - TAIL_BYTES)
    with file.open("rb") as handle:
        handle.seek(start)
        chunk = handle.read(offset - start)
    for raw in reversed(chunk.split(b"\n")):
        if STATS_KIND.encode() not in raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("kind") == STATS_KIND:
            return record
    return None


def probe_stats(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """The newest counters of each pid (written, dropped, errors, active, ts_ns): its last
    ``probe_stats`` line, or its ``probe-<pid>.stats`` side file when that is newer (it is
    rewritten in place, so it still tells on a disk too full for another line)."""
    stats = {int(s["pid"]): s for s in read_probe_dir(path)[STATS_KIND]}
    for file in Path(path).glob("probe-*.stats"):
        try:
            record = json.loads(file.read_bytes().strip() or b"null")
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("kind") != STATS_KIND:
            continue
        pid = int(record.get("pid", 0))
        if int(record.get("ts_ns", 0)) > int(stats.get(pid, {}).get("ts_ns", 0)):
            stats[pid] = record
    return stats
