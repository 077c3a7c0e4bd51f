"""Findings in words: the one place that says what a finding, a list of findings and a
detector that did not run read like.

The command line (``deskprof findings``), the Markdown report and the HTML report used to
phrase the same finding three ways; now each takes the pieces made here and only adds its
markup (the HTML template escapes them). A finding may be a
:class:`~deskprof.analysis.finding.Finding` or its ``to_dict()`` shape (a report holds the
redacted dicts). Standard library only, so the command line can import it cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deskprof.analysis.background import is_background

ALL_ENDPOINTS = "(all endpoints)"
NO_FINDINGS = "No findings: none of the detectors that ran fired on this capture."
SUMMARY_VALUE_CHARS = 90
# evidence keys a one-line summary leaves out: shown elsewhere, or too long for a line
_NOT_SUMMARISED = frozenset({"endpoint", "plan", "candidates_tried", "fingerprint_id"})


@dataclass(frozen=True)
class FindingText:
    """The words of one ranked finding; a renderer arranges and marks them up."""

    rank: int
    severity: str  # "high", "medium", "low": for a style or an attribute
    kind: str
    endpoint: str  # "" for the whole service (``where`` says so in words)
    where: str
    saving: str
    title: str
    evidence: str  # one-line summary of the first evidence row
    fix: str

    @property
    def severity_label(self) -> str:
        return self.severity.upper()


def heading(count: int) -> str:
    """The title over a ranked list of ``count`` findings."""
    return f"Findings ({count}), most total time saved first"


def evidence_summary(evidence: list[dict[str, Any]]) -> str:
    """``key=value; ...`` of the first evidence row (the summary one), long values cut."""
    first = evidence[0] if evidence else {}
    keep = []
    for key, value in first.items():
        if key in _NOT_SUMMARISED or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else format_number(value, key)
        text = text if text or isinstance(value, str) else str(value)
        if len(text) > SUMMARY_VALUE_CHARS:
            text = text[: SUMMARY_VALUE_CHARS - 3] + "..."
        keep.append(f"{key}={text}")
    return "; ".join(keep)


def format_number(value: Any, column: str = "") -> str:
    """A number for reading: thousands separators, never an exponent (``1.64e+03`` was
    how reports printed 1,640), three significant digits below 100; a column named
    ``*share`` or ``*_change`` is a percentage."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else str(value)
    if column.endswith("share") or column.endswith("_change"):
        return f"{value:+.1%}" if column.endswith("_change") else f"{value:.1%}"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1):
        return f"{value:,.0f}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:,.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    digits = max(3, 2 - math.floor(math.log10(magnitude)))  # three significant digits
    return f"{value:.{digits}f}"


def format_ms(ms: float) -> str:
    """``850 ms``, ``12.5 ms``, ``14.2 s``: a duration with its unit."""
    return f"{ms / 1000:,.1f} s" if abs(ms) >= 10_000 else f"{format_number(float(ms))} ms"


def saving_text(
    estimated_saving_ms: float,
    affected_requests: int = 0,
    unit: str = "request",
    basis: str = "",
) -> str:
    """``≈ 1.2 s in total (12.5 ms per request x 96 requests)``: the total first, since
    that is what the list is ranked by; work outside requests counts its statements
    (``unit="run"``). No saving: says so, and why when the evidence does."""
    ms = float(estimated_saving_ms or 0.0)
    if ms <= 0:
        return "no time saving estimated" + (f" ({basis})" if basis else "")
    per = f"{format_ms(ms)} per {unit}"
    if not affected_requests:
        return f"≈ {per}"
    total = ms * int(affected_requests)
    return f"≈ {format_ms(total)} in total ({per} x {int(affected_requests):,} {unit}s)"


def _basis(data: Mapping[str, Any]) -> str:
    evidence = data.get("evidence") or []
    first = evidence[0] if evidence and isinstance(evidence[0], Mapping) else {}
    return str(first.get("saving_basis") or "")


def finding_text(finding: Any, rank: int) -> FindingText:
    """The words of ``finding`` (a Finding or its dict) at position ``rank`` (from 1)."""
    data: Mapping[str, Any] = finding if isinstance(finding, Mapping) else finding.to_dict()
    endpoint = str(data.get("endpoint") or "")
    return FindingText(
        rank=rank,
        severity=str(data.get("severity", "")),
        kind=str(data.get("kind", "")),
        endpoint=endpoint,
        where=endpoint or ALL_ENDPOINTS,
        saving=saving_text(
            data.get("estimated_saving_ms") or 0.0,
            data.get("affected_requests") or 0,
            "run" if is_background(endpoint) else "request",
            _basis(data),
        ),
        title=str(data.get("title", "")),
        evidence=evidence_summary(list(data.get("evidence") or [])),
        fix=str(data.get("fix", "")),
    )


def findings_text(findings: list[Any]) -> list[FindingText]:
    """:func:`finding_text` of each finding, ranked from 1 in the order given."""
    return [finding_text(f, rank) for rank, f in enumerate(findings, start=1)]


def skip_line(skip: Mapping[str, str]) -> str:
    """A detector that did not run, or one statement a detector could not check."""
    if skip.get("statement"):
        return f"not checked: {skip['detector']}: {skip['statement']}: {skip['reason']}"
    return f"not run: {skip['detector']}: {skip['reason']}"


def by_design_line(finding: Any) -> str:
    """One line for a cost paid on purpose: where, what, and what may be tuned."""
    data: Mapping[str, Any] = finding if isinstance(finding, Mapping) else finding.to_dict()
    where = str(data.get("endpoint") or ALL_ENDPOINTS)
    title = str(data.get("title", "")).removeprefix("CPU hot spot: ")
    return f"{where}: {title}. {data.get('fix', '')}"


def _more(finding: Any) -> str:
    data = finding if isinstance(finding, Mapping) else finding.to_dict()
    rows = len(data.get("evidence") or [])
    return f" (1 of {rows} rows; --format json shows all)" if rows > 1 else ""


def plain_text(
    findings: list[Any], skipped: list[Mapping[str, str]], by_design: list[Any] = ()
) -> str:
    """The findings as a readable ranked list, then the costs paid on purpose, then what
    was not run or not checked (the command line's text output)."""
    lines = [heading(len(findings)) + ":", ""] if findings else [NO_FINDINGS]
    for t, f in zip(findings_text(findings), findings, strict=True):
        lines += [
            f"{t.rank}. [{t.severity_label}] {t.kind} · {t.where} · {t.saving}",
            f"   {t.title}",
            f"   evidence{_more(f)}: {t.evidence}",
            f"   fix: {t.fix}",
            "",
        ]
    lines += [f"by design (not a finding): {by_design_line(f)}" for f in by_design]
    lines += [skip_line(skip) for skip in skipped]
    return "\n".join(lines).rstrip() + "\n"
