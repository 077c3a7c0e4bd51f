"""Writing a capture bundle: the manifest and the Parquet tables.

The manifest is written first (status ``partial``, reason "capture in progress") and
rewritten at the end, so a capture that dies half-way still leaves a bundle that says
what it is. Tables are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyarrow.parquet as pq

from deskprof import __version__
from deskprof.bundle.manifest import Manifest
from deskprof.bundle.schema import (
    RAW_DIR,
    STATUS_COMPLETE,
    STATUS_PARTIAL,
)
from deskprof.bundle.stacks import StackTable
from deskprof.tools import package_version, tool_version


def host_facts() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
    }


def tool_versions() -> dict[str, str | None]:
    """deskprof's own version and revision, and the capturing tools' versions."""
    versions: dict[str, str | None] = {
        "deskprof": __version__,
        "deskprof_revision": git_revision(Path(__file__).resolve().parent),
    }
    for name in ("py-spy", "memray", "gdb"):
        versions[name] = tool_version(name)
    for package in ("locust", "pandas", "pyarrow"):
        versions[package] = package_version(package)
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
    manifest: Manifest = field(default_factory=Manifest)

    def __post_init__(self) -> None:
        self.raw = self.path / RAW_DIR
        self.raw.mkdir(parents=True, exist_ok=True)
        self.write_manifest()

    def warn(self, message: str) -> None:
        if message not in self.manifest.warnings:
            self.manifest.warnings.append(message)

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
        self.manifest.counts[name] = len(frame)

    def write_stacks(self, stacks: StackTable) -> None:
        """The ``stacks`` and ``frames`` tables of every source's shared stack table."""
        stack_rows, frame_rows = stacks.to_arrow()
        for name, table in (("frames", frame_rows), ("stacks", stack_rows)):
            target = self.path / f"{name}.parquet"
            tmp = target.with_suffix(".parquet.tmp")
            pq.write_table(table, tmp)
            tmp.replace(target)
            self.manifest.counts[name] = table.num_rows

    def write_manifest(self) -> None:
        self.manifest.write(self.path)

    def finish(self, partial_reasons: list[str]) -> None:
        self.manifest.partial_reasons = list(partial_reasons)
        self.manifest.status = STATUS_PARTIAL if partial_reasons else STATUS_COMPLETE
        self.write_manifest()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
