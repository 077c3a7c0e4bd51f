"""The run-time switch: control files in the output directory.

``probe.off`` present → recording off; else ``probe.on`` present → on; else each process
keeps the setting it started with (``enabled=`` / ``deskprof run --off``). Files, not
signals, because a file reaches every worker process of every server sharing the
directory, survives restarts, and needs no PID. Each process's flush thread looks every
0.25 s, so a switch takes effect within a quarter of a second.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

OFF_FILE = "probe.off"
ON_FILE = "probe.on"

State = Literal["on", "off"]


def read_state(out_dir: str | os.PathLike[str]) -> State | None:
    """``"off"``, ``"on"`` or None (no control file: the process's own setting)."""
    if os.path.exists(os.path.join(out_dir, OFF_FILE)):
        return "off"
    if os.path.exists(os.path.join(out_dir, ON_FILE)):
        return "on"
    return None


def set_state(out_dir: str | os.PathLike[str], state: State | None) -> None:
    """Switch every probe writing to ``out_dir``; None removes both files.

    The new file is created before the other is removed: a reader in between sees both,
    and "off" wins, which is the safe side.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if state == "off":
        (directory / OFF_FILE).touch()
        (directory / ON_FILE).unlink(missing_ok=True)
    elif state == "on":
        (directory / ON_FILE).touch()
        (directory / OFF_FILE).unlink(missing_ok=True)
    else:
        (directory / OFF_FILE).unlink(missing_ok=True)
        (directory / ON_FILE).unlink(missing_ok=True)
