"""Writing a capture bundle: the manifest and the Parquet tables.

The manifest is written first (status ``partial``, reason "capture in progress") and
rewritten at the end, so a capture that dies half-way still leaves a bundle that says
what it is. Tables are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyarrow.parquet as pq

from deskprof import __version__
from deskprof.capture.stacks import StackTable
from deskprof.schema import MANIFEST, RAW_DIR, SCHEMA_VERSION, STATUS_COMPLETE, STATUS_PARTIAL
from deskprof.tools import find_tool


def host_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
    }


def tool_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"deskprof": __version__}
    for name in ("py-spy", "memray", "gdb"):
        path = find_tool(name)
        version = None
        if path:
            try:
                out = subprocess.run(
                    [path, "--version"], capture_output=True, text=True, timeout=10, check=False
                )
                version = (out.stdout or out.stderr).strip().splitlines()[0]
            except (OSError, subprocess.TimeoutExpired, IndexError):
                version = None
        versions[name] = version
    # versions from package metadata, not imports: importing locust monkey-patches the
    # capturing process with gevent, which must stay inside the load generator's process
    for package in ("locust", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_revision(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=cwd,
        )
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class BundleWriter:
    """Owns one bundle directory while a capture runs."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.raw = self.path / RAW_DIR
        self.raw.mkdir(parents=True, exist_ok=True)
        self.manifest.setdefault("schema_version", SCHEMA_VERSION)
        self.manifest.setdefault("created_ns", time.time_ns())
        self.manifest.setdefault("status", STATUS_PARTIAL)
        self.manifest.setdefault("partial_reasons", ["capture in progress"])
        self.manifest.setdefault("warnings", [])
        self.manifest.setdefault("counts", {})
        self.write_manifest()

    def warn(self, message: str) -> None:
        if message not in self.manifest["warnings"]:
            self.manifest["warnings"].append(message)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        if name == "stacks" and "frames" in frame.columns:  # label lists: store by frame id
            table = StackTable()
            for frames in frame.sort_values("stack_id")["frames"]:
                table.intern(tuple(frames))
            self.write_stacks(table)
            return
        target = self.path / f"{name}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(target)
        self.manifest["counts"][name] = len(frame)

    def write_stacks(self, stacks: StackTable) -> None:
        """The ``stacks`` and ``frames`` tables of every source's shared stack table."""
        stack_rows, frame_rows = stacks.to_arrow()
        for name, table in (("frames", frame_rows), ("stacks", stack_rows)):
            target = self.path / f"{name}.parquet"
            tmp = target.with_suffix(".parquet.tmp")
            pq.write_table(table, tmp)
            tmp.replace(target)
            self.manifest["counts"][name] = table.num_rows

    def write_manifest(self) -> None:
        target = self.path / MANIFEST
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str, sort_keys=True))
        tmp.replace(target)

    def finish(self, partial_reasons: list[str]) -> None:
        self.manifest["partial_reasons"] = partial_reasons
        self.manifest["status"] = STATUS_PARTIAL if partial_reasons else STATUS_COMPLETE
        self.write_manifest()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
