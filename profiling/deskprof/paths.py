"""Where deskprof writes: one data directory, and one way to name a new run directory.

Captures, experiments, probe output and findings used to be named in five places with
three time formats, mostly relative to the working directory (a notebook kernel runs in
``notebooks/``, so its captures landed in ``notebooks/data/``). Every run directory is
now absolute, under :func:`data_dir`, named ``<UTC time>-<label>``.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

#: what each kind of run directory holds, under the data directory
KINDS = ("captures", "experiments", "probe", "findings")


def data_dir() -> Path:
    """``DESKPROF_DATA_DIR`` (or ``OPENDESK_DATA_DIR``, which the reference service uses),
    else ``data/`` of the checkout deskprof runs from, else ``./data``; always absolute."""
    for variable in ("DESKPROF_DATA_DIR", "OPENDESK_DATA_DIR"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "profiling").is_dir():
        return checkout / "data"
    return (Path.cwd() / "data").resolve()


def slug(label: str) -> str:
    """``label`` as a file-name part: lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", (label or "").lower()).strip("-")


def run_dir(kind: str, label: str = "") -> Path:
    """A new directory name ``<data dir>/<kind>/<UTC time>-<label>`` (not created); the
    time has microseconds, so two runs started in the same second do not collide."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; one of {', '.join(KINDS)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"{stamp}-{slug(label)}" if slug(label) else stamp
    return data_dir() / kind / name
