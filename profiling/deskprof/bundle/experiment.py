"""The experiment result format, beside the capture bundle's: how a result directory is
laid out, written and read. What the numbers mean is :mod:`deskprof.experiment.result`.

A result is a directory::

    result.json        status, verdict table, configuration (deskprof revision, machine,
                       variants, workload, design, threshold)
    trials.parquet     one row per trial and endpoint (the unit the statistics use)
    requests.parquet   every measured request (trial, arm, name, latency...), for ECDFs
    raw/               load generator logs, probe output, target logs

The verdict table is stored in ``result.json`` too, so a colleague without deskprof can
read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deskprof.bundle.reader import read_parquet
from deskprof.errors import BundleError

RESULT_FILE = "result.json"
TRIALS_FILE = "trials.parquet"
REQUESTS_FILE = "requests.parquet"
RESULT_VERSION = 1
VERDICT_COLUMNS = [
    "endpoint",
    "metric",
    "baseline",
    "candidate",
    "ratio",
    "ci_low",
    "ci_high",
    "p_value",
    "verdict",
    "n_baseline",
    "n_candidate",
    "warnings",
]
_NUMERIC = ["baseline", "candidate", "ratio", "ci_low", "ci_high", "p_value"]


@dataclass
class ResultFiles:
    """A result directory as read: ``document`` is ``result.json``."""

    directory: Path
    document: dict[str, Any]
    trials: pd.DataFrame
    requests: pd.DataFrame
    verdicts: pd.DataFrame


def write_result(
    target: Path,
    *,
    trials: pd.DataFrame,
    requests: pd.DataFrame,
    verdicts: pd.DataFrame,
    status: str,
    partial_reasons: list[str],
    config: dict[str, Any],
) -> None:
    """Tables first, ``result.json`` last and atomically: a directory with a readable
    ``result.json`` has its tables."""
    target.mkdir(parents=True, exist_ok=True)
    trials.to_parquet(target / TRIALS_FILE, index=False)
    requests.to_parquet(target / REQUESTS_FILE, index=False)
    document = {
        "version": RESULT_VERSION,
        "status": status,
        "partial_reasons": partial_reasons,
        "verdicts": _json_records(verdicts),
        "config": config,
    }
    tmp = target / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target / RESULT_FILE)


def read_result(path: str | Path) -> ResultFiles:
    """An experiment directory (or its ``result.json``), checked and read."""
    directory = Path(path)
    if directory.name == RESULT_FILE:
        directory = directory.parent
    manifest = directory / RESULT_FILE
    if not manifest.is_file():
        raise BundleError(f"no experiment result at {directory} (missing {RESULT_FILE})")
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{manifest} is not valid JSON ({exc.msg}): truncated?") from exc
    if not isinstance(document, dict) or document.get("version") != RESULT_VERSION:
        version = document.get("version") if isinstance(document, dict) else None
        raise BundleError(f"{manifest}: unknown result version {version!r}")
    trials_path = directory / TRIALS_FILE
    if not trials_path.is_file():
        raise BundleError(f"{directory} has {RESULT_FILE} but no {TRIALS_FILE}")
    requests_path = directory / REQUESTS_FILE
    verdicts = pd.DataFrame(document.get("verdicts", []), columns=VERDICT_COLUMNS)
    verdicts[_NUMERIC] = verdicts[_NUMERIC].astype(float)
    return ResultFiles(
        directory=directory,
        document=document,
        trials=read_parquet(trials_path, whole="the result directory").to_pandas(),
        requests=(
            read_parquet(requests_path, whole="the result directory").to_pandas()
            if requests_path.is_file()
            else pd.DataFrame()
        ),
        verdicts=verdicts,
    )


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.to_dict(orient="records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = None  # JSON has no NaN
            elif isinstance(value, np.integer):
                record[key] = int(value)
    return records
