"""Run every detector on a capture: ``detect_all(capture)`` → ranked findings.

``detect_all`` runs each detector of :data:`~deskprof.analysis.detectors.DETECTORS` whose
required tables the bundle has; a detector whose input is empty (or that needs a database
to EXPLAIN against and has none) is skipped and the skip is recorded in the result's
``skipped`` list (never an error), so a SQL-only capture still gets its SQL findings.

The finding model lives in :mod:`deskprof.analysis.finding` and the words in
:mod:`deskprof.analysis.finding_text`; their names are re-exported here because notebooks
and scripts import ``Finding``, ``Thresholds``, ``KINDS``... from this module.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from deskprof.analysis.causes import one_per_cause
from deskprof.analysis.detectors import DETECTORS
from deskprof.analysis.finding import (
    DICT_KEYS,
    KINDS,
    SEVERITIES,
    Finding,
    FindingList,
    Thresholds,
    at_least,
    findings_from_json,
    findings_to_json,
    grade,
    json_safe,
    rank,
    severity_for,
    write_json,
)
from deskprof.analysis.finding_text import skip_line
from deskprof.analysis.stackframes import app_packages as app_packages_of
from deskprof.errors import DeskprofError

__all__ = [
    "DICT_KEYS",
    "KINDS",
    "SEVERITIES",
    "Finding",
    "FindingList",
    "Thresholds",
    "at_least",
    "detect_all",
    "findings_from_json",
    "findings_to_json",
    "json_safe",
    "rank",
    "severity_for",
    "skip_line",
    "write_json",
]


def _table(capture: Any, name: str) -> pd.DataFrame:
    frame = getattr(capture, name, None)
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()


def as_capture(capture: Any) -> Any:
    """An opened capture from what a notebook may pass: a bundle path, a capture
    result (its ``path``) or an opened capture. Anything else is a mistake, said in one
    line: it used to give 0 findings ("no queries") without a word."""
    from deskprof.bundle.reader import open_capture

    if isinstance(capture, str | os.PathLike):
        return open_capture(capture)
    if any(hasattr(capture, name) for name in ("requests", "queries", "samples")):
        return capture
    path = getattr(capture, "path", None)
    if isinstance(path, str | os.PathLike):
        return open_capture(path)
    raise DeskprofError(
        f"findings() takes an opened capture or a bundle directory, not a "
        f"{type(capture).__name__}; pass deskprof.open_capture(path)"
    )


def detect_all(
    capture: Any,
    *,
    explain_url: str | None = None,
    thresholds: Thresholds | None = None,
    app_packages: tuple[str, ...] = (),
) -> FindingList:
    """Run every detector that has its inputs on ``capture`` (a :class:`Capture` or any
    object with the contract's DataFrame attributes) and return the ranked findings.

    ``explain_url`` is a database to run EXPLAIN against (the capture's own or a copy):
    without it the missing-index detector is skipped. The result's ``skipped`` says which
    detectors did not run and why. ``app_packages`` names top-level packages that are the
    service's own code besides those of its request handlers (see
    :func:`deskprof.analysis.stackframes.app_packages`)."""
    capture = as_capture(capture)
    manifest = getattr(capture, "manifest", None) or {}
    cpu_rate = getattr(capture, "cpu_rate_hz", None)
    skipped: list[dict[str, str]] = []
    # every run option a detector may declare (Detector.options), from the capture or call
    options: dict[str, Any] = {
        "parameters_kept": (manifest.get("options") or {}).get("keep_parameters"),
        "notes": skipped,
        "app_packages": app_packages_of(_table(capture, "requests"), app_packages),
    }
    if explain_url:
        options["database_url"] = explain_url
    if cpu_rate:
        options["rate_hz"] = float(cpu_rate)
    thresholds = thresholds or Thresholds()
    found: list[Finding] = []
    for detector in DETECTORS:
        empty = [name for name in detector.requires if _table(capture, name).empty]
        if empty:
            skipped.append(
                {"detector": detector.name, "reason": f"no {', '.join(empty)} in this capture"}
            )
            continue
        if detector.needs_explain and not explain_url:
            skipped.append(
                {
                    "detector": detector.name,
                    "reason": "no database to EXPLAIN against (pass --explain-database)",
                }
            )
            continue
        kwargs = {key: options[key] for key in detector.options if key in options}
        frames = [_table(capture, name) for name in detector.reads]
        found.extend(detector.load()(*frames, thresholds=thresholds, **kwargs))
    requests = _table(capture, "requests")
    request_ms = float(requests["duration_ns"].sum()) / 1e6 if "duration_ns" in requests else 0.0
    ranked = rank(grade(one_per_cause(found), request_ms, thresholds))
    kept: list[Finding] = []
    paid: list[Finding] = []  # costs paid on purpose: listed apart, not as findings
    for finding in ranked:
        by_design = bool(finding.evidence and finding.evidence[0].get("by_design"))
        (paid if by_design else kept).append(finding)
    return FindingList(kept, skipped, paid)
