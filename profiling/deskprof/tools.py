"""Where the external tools are: beside this interpreter first, then PATH.

``DESKPROF_PYSPY``, ``DESKPROF_MEMRAY``, ``DESKPROF_GDB`` and ``DESKPROF_LLDB`` override
the lookup (a staging host may keep them elsewhere; tests point them at nothing to prove
the missing-tool path).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from deskprof.errors import ToolMissing

OVERRIDES = {
    "py-spy": "DESKPROF_PYSPY",
    "memray": "DESKPROF_MEMRAY",
    "gdb": "DESKPROF_GDB",
    "lldb": "DESKPROF_LLDB",
}
INSTALL_HINT = {
    "py-spy": "run `make venv` (py-spy is a project dependency)",
    "memray": "run `make venv` (memray is a project dependency)",
    "gdb": "install gdb (Debian: apt-get install gdb); memray attach needs it",
    "lldb": "install lldb (Debian: apt-get install lldb); memray attach can use it",
}


def find_tool(name: str) -> str | None:
    """The tool's path, or None when it is not there."""
    override = os.environ.get(OVERRIDES.get(name, ""), "")
    if override:
        return override if Path(override).exists() else None
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The tool's path, or ToolMissing with what to do."""
    path = find_tool(name)
    if path is None:
        raise ToolMissing(f"{name} not found: {INSTALL_HINT.get(name, 'install it')}")
    return path


def tool_version(name: str) -> str | None:
    """The first line ``<tool> --version`` prints, or None when the tool is missing or
    says nothing (recorded in manifests and attach-trial cache keys)."""
    path = find_tool(name)
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def package_version(name: str) -> str | None:
    """An installed distribution's version from its metadata, never by importing it:
    importing locust monkey-patches the importing process with gevent."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
