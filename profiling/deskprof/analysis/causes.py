"""One cause, one finding: fold the findings several detectors made of the same statement.

A slow statement is seen by several detectors at once: ``slow_query`` (it is slow),
``missing_index`` (it scans), ``deep_pagination`` (it is a page far down). Listed side by
side they read as three problems and their savings add up to more time than the
statement took. Here the findings that name the same statement are folded into the one
whose detector explains the cause best (:data:`EXPLAINS`, most specific first); the
others become its evidence (``also_found_by``), and its saving is the largest of their
estimates (they price the same time, so adding them would double count).

Findings about how often a statement runs (``n_plus_one``, ``uncached_read``) are other
causes with other fixes and are not folded. Nor is the part of a ``deep_pagination``
finding that is a cause of its own: a COUNT run on every page costs its time whatever
index the page query gets, so a pagination finding whose page query an index finding
explains keeps that COUNT saving alone (the depth cost is the index's) and says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from deskprof.analysis.finding import SEVERITIES, Finding

# most specific first: the kept finding of a group is the first of these it has
EXPLAINS = ("missing_index", "weak_index", "write_contention", "deep_pagination", "slow_query")
_STATEMENT_KEYS = ("fingerprint", "page_fingerprint")
_INDEX_KINDS = ("missing_index", "weak_index")


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def statements_of(finding: Finding) -> set[str]:
    """The statements (fingerprint texts) a finding is about, from its evidence."""
    out = set()
    for item in finding.evidence:
        if isinstance(item, dict) and "also_found_by" not in item:
            out.update(str(item[key]) for key in _STATEMENT_KEYS if item.get(key))
    return out


def one_per_cause(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` with those of :data:`EXPLAINS` kinds that share a statement folded
    into the most specific one (see module doc); every other finding as it was."""
    findings = list(findings)
    foldable = [f for f in findings if f.kind in EXPLAINS and statements_of(f)]
    foldable.sort(key=lambda f: (EXPLAINS.index(f.kind), -f.estimated_saving_ms))
    kept: list[Finding] = []
    owner: dict[str, Finding] = {}  # statement -> the finding that explains it
    folded: set[int] = set()
    for finding in foldable:
        into = next((owner[s] for s in statements_of(finding) if s in owner), None)
        if into is None:
            kept.append(finding)
            for statement in statements_of(finding):
                owner[statement] = finding
            continue
        if finding.kind == "deep_pagination" and into.kind in _INDEX_KINDS:
            count_ms = float(finding.evidence[0].get("count_saving_ms") or 0.0)
            if count_ms > 0:
                finding.estimated_saving_ms = count_ms
                finding.evidence[0]["page_query_explained_by"] = into.kind
                continue
        folded.add(id(finding))
        into.evidence.append(
            {
                "also_found_by": finding.kind,
                "title": finding.title,
                "estimated_saving_ms": round(float(finding.estimated_saving_ms), 3),
                "fix": finding.fix,
            }
        )
        into.estimated_saving_ms = max(into.estimated_saving_ms, finding.estimated_saving_ms)
        into.affected_requests = max(into.affected_requests, finding.affected_requests)
        into.severity = min(into.severity, finding.severity, key=_severity_rank)
    return [f for f in findings if id(f) not in folded]
