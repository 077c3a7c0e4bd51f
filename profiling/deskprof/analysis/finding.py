"""The finding model: what a detector reports, how findings rank, and their JSON.

A finding names one problem at one endpoint with the evidence that shows it and an
estimate of the time a fix would save per request. Findings are ranked by the total time
saved (``estimated_saving_ms x affected_requests``), then by severity, so the first one is
the fix worth doing first.

This module imports no detector and no capture: detectors, renderers and the JSON reader
all depend on it, so it must depend on none of them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deskprof.errors import DeskprofError

KINDS = (
    "n_plus_one",
    "slow_query",
    "missing_index",
    "weak_index",
    "write_contention",
    "uncached_read",
    "deep_pagination",
    "cpu_hotspot",
    "memory_peak",
    "memory_growth",
    "connection_churn",
)
SEVERITIES = ("high", "medium", "low")
_SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
DICT_KEYS = (
    "kind",
    "severity",
    "endpoint",
    "title",
    "evidence",
    "estimated_saving_ms",
    "fix",
    "affected_requests",
)


@dataclass
class Finding:
    """One problem at one endpoint (``""``: the whole service).

    ``evidence`` is a list of JSON-safe dicts (numbers, strings, lists); the first one is
    the summary a one-line renderer shows. ``estimated_saving_ms`` is per affected request;
    ``affected_requests`` is how many requests of the capture it touched."""

    kind: str
    severity: str
    endpoint: str
    title: str
    evidence: list[dict[str, Any]]
    estimated_saving_ms: float
    fix: str
    affected_requests: int = 0

    @property
    def total_saving_ms(self) -> float:
        return float(self.estimated_saving_ms) * max(int(self.affected_requests), 1)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape: kind, severity, endpoint, title, evidence,
        estimated_saving_ms, fix (plus affected_requests)."""
        out = asdict(self)
        out["evidence"] = json_safe(out["evidence"])
        out["estimated_saving_ms"] = round(float(self.estimated_saving_ms), 3)
        return {key: out[key] for key in DICT_KEYS}


@dataclass(frozen=True)
class Thresholds:
    """Every detector's knobs. Defaults follow the tools engineers know (Sentry's N+1
    detector, Dexter's index rule); a test on a small seed scales the time ones down."""

    # N+1: one fingerprint from one call site, repeated inside one request
    n_plus_one_min_repeats: int = 5
    n_plus_one_min_total_ms: float = 50.0  # Sentry's rule, in one request
    # ... or repeated in most of the endpoint's requests, however cheap each one is
    n_plus_one_systematic_share: float = 0.5
    n_plus_one_systematic_requests: int = 5
    # slow query: fingerprint p95
    slow_query_p95_ms: float = 100.0
    slow_query_min_calls: int = 3
    # missing index: EXPLAIN of the slowest SELECT fingerprints
    index_candidates: int = 10
    index_min_table_rows: int = 1000
    index_selectivity: float = 0.1  # rows kept / rows scanned at most this
    index_min_cost_gain: float = 0.5  # Dexter: a hypothetical index must halve the cost
    # weak index: an index lookup reading this many rows per key (ANALYZE on a copy)
    weak_index_min_rows: float = 500.0
    explain_timeout_s: float = 5.0
    explain_analyze: bool = False  # execute the statement (opt-in; never volatile calls)
    # write contention: keyed writes slower when another writer's transaction was open
    contention_min_ratio: float = 3.0  # overlapped median / lone median at least
    contention_max_p: float = 0.01  # Mann-Whitney U, overlapped slower than lone
    contention_min_wait_ms: float = 100.0  # waited over the whole capture
    contention_min_overlapped_ms: float = 1.0  # median of the calls that waited
    # uncached hot read: the same read repeated across requests, no write in between
    uncached_min_requests: int = 5
    uncached_min_ms: float = 10.0  # cacheable DB time per affected request
    # deep pagination
    pagination_min_requests: int = 5
    pagination_count_share: float = 0.8  # pages that also run COUNT(*)
    pagination_deep_offset: int = 500  # rows skipped for a page to count as deep
    # depth unseen (values redacted): the COUNT must cost this much a page, the sign of a
    # table big enough to matter (a COUNT of ten rows takes microseconds)
    pagination_min_count_ms: float = 0.5
    # connection churn
    churn_min_ratio: float = 0.5  # new DBAPI connections per request
    churn_min_requests: int = 5
    # CPU hot spot
    cpu_min_share: float = 0.2  # of the endpoint's on-CPU samples
    cpu_min_samples: int = 20
    # a library's CPU on the service's behalf: a higher bar, since some library always
    # does much of an endpoint's work (serializers, template engines)
    cpu_library_min_share: float = 0.3
    # memory
    memory_peak_min_share: float = 0.25  # of the high-water mark
    memory_peak_min_bytes: int = 1 << 20
    memory_peak_min_rss_share: float = 0.15  # of the processes' RSS at the peak
    memory_growth_min_bytes: int = 10 << 20
    memory_growth_min_r2: float = 0.6
    # severity from the share of the endpoint's median latency a fix would save
    severity_high_share: float = 0.25
    severity_medium_share: float = 0.05
    # ... and, once ranked, from the same figure the ranking uses: the total saving as a
    # share of all the capture's request time
    severity_total_high_share: float = 0.05
    severity_total_medium_share: float = 0.01


class FindingList(list):
    """``list[Finding]``, ranked, plus ``skipped``: the detectors that did not run and why
    (``{"detector", "reason"}``), so "no finding" and "not looked at" differ; and
    ``by_design``: hot spots that are costs paid on purpose (password hashing...), kept
    out of the list but not hidden."""

    def __init__(
        self,
        findings: Iterable[Finding] = (),
        skipped: list[dict] | None = None,
        by_design: Iterable[Finding] = (),
    ):
        super().__init__(findings)
        self.skipped: list[dict[str, str]] = list(skipped or [])
        self.by_design: list[Finding] = list(by_design)


def severity_for(saving_ms: float, endpoint_ms: float, thresholds: Thresholds) -> str:
    """``high`` when a fix saves at least a quarter of the endpoint's median request,
    ``medium`` from 5 %, else ``low`` (shares tunable). Scale-free, so a small test data
    set and a large staging one rank alike."""
    if not endpoint_ms or endpoint_ms <= 0 or not math.isfinite(endpoint_ms):
        return "medium" if saving_ms > 0 else "low"
    share = saving_ms / endpoint_ms
    if share >= thresholds.severity_high_share:
        return "high"
    if share >= thresholds.severity_medium_share:
        return "medium"
    return "low"


def group_findings(
    findings: Iterable[Finding], key: Callable[[Finding], Hashable]
) -> dict[Hashable, list[Finding]]:
    """Findings by ``key``, groups and their members in first-seen order (for
    :func:`combine`)."""
    groups: dict[Hashable, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(key(finding), []).append(finding)
    return groups


def more_severe(a: str, b: str) -> str:
    """The more severe of two severities (an unknown one counts as the mildest)."""
    return min(a, b, key=lambda s: _SEVERITY_RANK.get(s, len(SEVERITIES)))


def combine(findings: list[Finding], summary: dict[str, Any] | None = None) -> Finding:
    """One finding of several about one cause seen in different requests (one index for
    two endpoints' queries, one endpoint's page queries): the costliest kept, the others'
    evidence appended, total savings and affected requests added, so the per-request
    saving is the total over all of them. ``summary`` updates the first evidence row."""
    ordered = sorted(findings, key=lambda f: -f.total_saving_ms)
    main = ordered[0]
    if len(ordered) == 1:
        return main
    total = sum(f.total_saving_ms for f in ordered)
    main.affected_requests = sum(max(int(f.affected_requests), 1) for f in ordered)
    main.estimated_saving_ms = total / main.affected_requests
    for other in ordered[1:]:
        main.evidence.extend(other.evidence)
        main.severity = more_severe(main.severity, other.severity)
    main.evidence[0].update(summary or {})
    return main


def grade(
    findings: Iterable[Finding], request_ms_total: float, thresholds: Thresholds
) -> list[Finding]:
    """Severity from the figure findings are ranked by: a finding's total saving as a
    share of all the capture's request time (``severity_total_*_share``), so a HIGH is
    never ranked below a LOW. A finding with no time estimate is LOW (its
    ``saving_basis`` says why: not measured, or a cost paid by design), except memory,
    whose severity is about bytes (capped at medium). With no request time (no requests
    table) the detectors' severities stand."""
    out = list(findings)
    if request_ms_total <= 0:
        return out
    for finding in out:
        if finding.estimated_saving_ms <= 0:
            if not finding.kind.startswith("memory"):
                finding.severity = "low"
            elif finding.severity == "high":
                finding.severity = "medium"
            continue
        share = finding.total_saving_ms / request_ms_total
        if share >= thresholds.severity_total_high_share:
            finding.severity = "high"
        elif share >= thresholds.severity_total_medium_share:
            finding.severity = "medium"
        else:
            finding.severity = "low"
        first = finding.evidence[0] if finding.evidence else None
        if isinstance(first, dict):
            first["share_of_all_request_time"] = round(share, 4)  # every endpoint's
    return out


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """Most total time saved first, then the more severe, then by kind and endpoint (so
    the order is stable)."""
    return sorted(
        findings,
        key=lambda f: (
            -f.total_saving_ms,
            _SEVERITY_RANK.get(f.severity, len(SEVERITIES)),
            f.kind,
            f.endpoint,
            f.title,
        ),
    )


def at_least(findings: Iterable[Finding], min_severity: str) -> list[Finding]:
    """The findings of ``min_severity`` or worse."""
    if min_severity not in _SEVERITY_RANK:
        raise DeskprofError(
            f"unknown severity {min_severity!r}; choose one of {', '.join(SEVERITIES)}"
        )
    limit = _SEVERITY_RANK[min_severity]
    return [f for f in findings if _SEVERITY_RANK.get(f.severity, 99) <= limit]


def json_safe(value: Any) -> Any:
    """Numbers, strings, lists and dicts only: numpy scalars become Python ones, NaN and
    infinities become None, anything else its string."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def findings_to_json(
    findings: Iterable[Finding],
    *,
    skipped: list[dict] | None = None,
    by_design: Iterable[Finding] | None = None,
) -> str:
    """The findings as a JSON document: ``{"findings": [...], "skipped": [...],
    "by_design": [...]}``."""
    if skipped is None:
        skipped = getattr(findings, "skipped", [])
    if by_design is None:
        by_design = getattr(findings, "by_design", [])
    body = {
        "findings": [f.to_dict() for f in findings],
        "skipped": json_safe(skipped),
        "by_design": [f.to_dict() for f in by_design],
    }
    return json.dumps(body, indent=2, sort_keys=False)


def write_json(findings: Iterable[Finding], path: str | os.PathLike[str]) -> Path:
    """Write :func:`findings_to_json` to ``path`` (atomically) and return the path."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(findings_to_json(findings) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def findings_from_json(text: str) -> list[Finding]:
    """Read back what :func:`findings_to_json` wrote (for reports built from a file)."""
    body = json.loads(text)
    rows = body["findings"] if isinstance(body, dict) else body
    return [
        Finding(**{k: row.get(k, 0 if k == "affected_requests" else "") for k in DICT_KEYS})
        for row in rows
    ]
