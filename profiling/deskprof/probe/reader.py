"""Read a probe output directory back (standard library only).

The capture session turns the result into Parquet with pandas; notebooks and tests can
use the dicts directly. A process killed mid-write can leave a half line at the end of
its file: such lines are skipped and reported, never fatal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from deskprof.errors import BundleError
from deskprof.probe.recorder import STATS_KIND
from deskprof.schema import PROBE_KINDS

FILE_GLOB = "probe-*.jsonl"


def probe_files(path: str | os.PathLike[str]) -> list[Path]:
    directory = Path(path)
    if not directory.is_dir():
        raise BundleError(f"no probe output directory at {directory}")
    return sorted(directory.glob(FILE_GLOB))


def read_probe_dir(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Records by kind: ``requests``, ``queries``, ``connections`` (always present),
    ``probe_stats`` (the last stats line of each pid) and ``malformed`` (lines that are
    not JSON records: ``{"file", "line"}``). Records keep their ``kind`` key."""
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in PROBE_KINDS}
    stats: dict[int, dict[str, Any]] = {}
    malformed: list[dict[str, Any]] = []
    for file in probe_files(path):
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    record = json.loads(raw)
                    kind = record["kind"]
                except (ValueError, KeyError, TypeError):
                    if raw.strip():
                        malformed.append({"file": file.name, "line": number})
                    continue
                if kind == STATS_KIND:
                    stats[int(record.get("pid", 0))] = record
                else:
                    out.setdefault(kind, []).append(record)
    out[STATS_KIND] = [stats[pid] for pid in sorted(stats)]
    out["malformed"] = malformed
    return out


def probe_stats(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """The last ``probe_stats`` line of each pid: written, dropped, errors, active, ts_ns."""
    return {int(s["pid"]): s for s in read_probe_dir(path)[STATS_KIND]}
