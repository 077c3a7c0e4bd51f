"""Capture to capture: what a fix (or a deploy) changed.

Given the findings of two captures, which were fixed (in the first, not the second), which
are new, and which remain (with their saving before and after); and per endpoint, how
latency, queries and DB time per request moved. Findings are matched by cause, not by
title (a title carries numbers that change): kind, endpoint and the subject the detector
names (the suggested index, the loop's function, the statement, the hot function).

Per-endpoint deltas are descriptive (the two captures' medians and p95s side by side); to
say "faster" with a confidence interval, run an experiment, or ``deskprof check`` with a
relative budget, which compares time windows with the experiment statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deskprof.analysis.finding import Finding

# the evidence key that names what a finding is about, by preference
_SUBJECTS = (
    "suggested_index",
    "call_function",
    "page_fingerprint",
    "index",
    "fingerprint",
    "function",
    "library",
)
FINDING_COLUMNS = [
    "status",
    "kind",
    "endpoint",
    "title",
    "total_saving_ms_before",
    "total_saving_ms_after",
]
ENDPOINT_COLUMNS = [
    "endpoint",
    "requests_before",
    "requests_after",
    "p50_ms_before",
    "p50_ms_after",
    "p50_change",
    "p95_ms_before",
    "p95_ms_after",
    "p95_change",
    "queries_per_request_before",
    "queries_per_request_after",
    "db_ms_per_request_before",
    "db_ms_per_request_after",
]


def cause_key(finding: Finding | dict[str, Any]) -> tuple[str, str, str]:
    """(kind, endpoint, subject): the same cause in two captures has the same key."""
    if isinstance(finding, dict):
        kind, endpoint, evidence = finding["kind"], finding["endpoint"], finding["evidence"]
    else:
        kind, endpoint, evidence = finding.kind, finding.endpoint, finding.evidence
    first = evidence[0] if evidence and isinstance(evidence[0], dict) else {}
    subject = next((str(first[key]) for key in _SUBJECTS if first.get(key)), "")
    return str(kind), str(endpoint), subject


@dataclass
class CaptureComparison:
    """``fixed``/``new``: findings of one side only; ``remaining``: (before, after)
    pairs; ``endpoints``: one row per endpoint of either capture (see ENDPOINT_COLUMNS)."""

    fixed: list[Finding]
    new: list[Finding]
    remaining: list[tuple[Finding, Finding]]
    endpoints: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> str:
        return f"{len(self.fixed)} fixed, {len(self.new)} new, {len(self.remaining)} remaining"

    def findings_table(self) -> pd.DataFrame:
        """One row per finding of either side: status, kind, endpoint, title and the
        total saving (ms over its capture) before and after."""
        rows = [("fixed", f, None) for f in self.fixed]
        rows += [("remaining", a, b) for a, b in self.remaining]
        rows += [("new", None, f) for f in self.new]
        out = []
        for status, before, after in rows:
            shown = after or before
            out.append(
                {
                    "status": status,
                    "kind": shown.kind,
                    "endpoint": shown.endpoint,
                    "title": shown.title,
                    "total_saving_ms_before": before.total_saving_ms if before else math.nan,
                    "total_saving_ms_after": after.total_saving_ms if after else math.nan,
                }
            )
        return pd.DataFrame(out, columns=FINDING_COLUMNS)


def compare_findings(before: list[Finding], after: list[Finding]) -> CaptureComparison:
    """Fixed, new and remaining findings, matched by :func:`cause_key`, in each list's
    ranked order."""
    after_by_key: dict[tuple[str, str, str], Finding] = {}
    for finding in after:
        after_by_key.setdefault(cause_key(finding), finding)
    before_keys = {cause_key(f) for f in before}
    fixed, remaining = [], []
    for finding in before:
        match = after_by_key.get(cause_key(finding))
        if match is None:
            fixed.append(finding)
        else:
            remaining.append((finding, match))
    new = [f for f in after if cause_key(f) not in before_keys]
    return CaptureComparison(fixed, new, remaining)


def endpoint_deltas(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`deskprof.analysis.endpoints.summarise_endpoints` tables side by side;
    ``*_change`` is after / before - 1 (NaN where an endpoint is on one side only)."""
    keep = ["requests", "p50_ms", "p95_ms", "queries_per_request", "db_ms_per_request"]
    merged = pd.merge(
        before.set_index("endpoint")[keep],
        after.set_index("endpoint")[keep],
        left_index=True,
        right_index=True,
        how="outer",
        suffixes=("_before", "_after"),
    ).reset_index()
    for metric in ("p50_ms", "p95_ms"):
        merged[f"{metric[:3]}_change"] = merged[f"{metric}_after"] / merged[f"{metric}_before"] - 1
    return merged[ENDPOINT_COLUMNS].sort_values(
        "requests_before", ascending=False, na_position="last"
    )


def compare_captures(
    before: Any,
    after: Any,
    *,
    findings_before: list[Finding] | None = None,
    findings_after: list[Finding] | None = None,
    **detect: Any,
) -> CaptureComparison:
    """The comparison of two captures (opened captures or bundle paths). Findings are
    detected with ``detect_all(**detect)`` unless given (a report passes those it has)."""
    from deskprof.analysis.endpoints import endpoint_summary
    from deskprof.analysis.findings import as_capture, detect_all

    before, after = as_capture(before), as_capture(after)
    if findings_before is None:
        findings_before = detect_all(before, **detect)
    if findings_after is None:
        findings_after = detect_all(after, **detect)
    result = compare_findings(list(findings_before), list(findings_after))
    result.endpoints = endpoint_deltas(endpoint_summary(before), endpoint_summary(after))
    return result
