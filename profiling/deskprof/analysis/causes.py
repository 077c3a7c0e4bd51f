"""One cause, one finding: fold the findings several detectors made of the same statement.

A slow statement is seen by several detectors at once: ``slow_query`` (it is slow),
``missing_index`` (it scans), ``deep_pagination`` (it is a page far down). Listed side by
side they read as three problems and their savings add up to more time than the
statement took. Here the findings that name the same statement are folded into the one
whose detector explains the cause best (:data:`EXPLAINS`, most specific first); the
others become its evidence (``also_found_by``), and its saving is the largest of their
estimates (they price the same time, so adding them would double count).

Findings about how often a statement runs (``n_plus_one``, ``uncached_read``) are other
causes with other fixes and are not folded, with one exception: an ``uncached_read``
whose reads are all a pagination finding's COUNTs (the total recounted on every page) is
that finding's, whose fix caches the total. A ``deep_pagination`` finding keeps what no
index finding explains: the depth cost is the index's when an index finding names the
page query, the COUNT's when it names the COUNT (a COUNT that scans a table is slow
because of the scan, not because it runs on every page); with nothing left it folds.
"""

from __future__ import annotations

from collections.abc import Iterable

from deskprof.analysis.finding import Finding, more_severe

# most specific first: the kept finding of a group is the first of these it has
EXPLAINS = ("missing_index", "weak_index", "write_contention", "deep_pagination", "slow_query")
_STATEMENT_KEYS = ("fingerprint", "page_fingerprint")
_INDEX_KINDS = ("missing_index", "weak_index")


def statements_of(finding: Finding) -> set[str]:
    """The statements (fingerprint texts) a finding is about, from its evidence."""
    out = set()
    for item in finding.evidence:
        if isinstance(item, dict) and "also_found_by" not in item:
            out.update(str(item[key]) for key in _STATEMENT_KEYS if item.get(key))
    return out


def one_per_cause(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` with those of :data:`EXPLAINS` kinds that share a statement folded
    into the most specific one, a pagination finding reduced to what no index finding
    explains, and a cache finding about a pagination's COUNTs folded into it (see the
    module doc); every other finding as it was."""
    findings = list(findings)
    foldable = [f for f in findings if f.kind in EXPLAINS and statements_of(f)]
    foldable.sort(key=lambda f: (EXPLAINS.index(f.kind), -f.estimated_saving_ms))
    owner: dict[str, Finding] = {}  # statement -> the finding that explains it
    folded: set[int] = set()
    for finding in foldable:
        if finding.kind == "deep_pagination":
            into = _pagination_left(finding, owner)
        else:
            into = next((owner[s] for s in statements_of(finding) if s in owner), None)
        if into is None:
            for statement in statements_of(finding):
                owner.setdefault(statement, finding)
            continue
        folded.add(id(finding))
        _fold(finding, into)
    for finding in findings:
        into = _counting_pagination(finding, findings, folded)
        if into is not None:
            folded.add(id(finding))
            _fold(finding, into)
    return [f for f in findings if id(f) not in folded]


def _fold(finding: Finding, into: Finding) -> None:
    into.evidence.append(
        {
            "also_found_by": finding.kind,
            "title": finding.title,
            "estimated_saving_ms": round(float(finding.estimated_saving_ms), 3),
            "fix": finding.fix,
        }
    )
    if finding.estimated_saving_ms > into.estimated_saving_ms:  # the larger estimate stands
        into.estimated_saving_ms = finding.estimated_saving_ms
        first = into.evidence[0]
        first["saving_basis"] = (
            f"the larger estimate of the same time, {finding.kind}'s: "
            f"{finding.evidence[0].get('saving_basis', '')}"
        ).rstrip(": ")
    into.affected_requests = max(into.affected_requests, finding.affected_requests)
    into.severity = more_severe(into.severity, finding.severity)


def _pagination_left(finding: Finding, owner: dict[str, Finding]) -> Finding | None:
    """Reduce a pagination finding to the cost no index finding explains (a page query an
    index makes cheap has no depth cost left; a COUNT it makes cheap, no count cost);
    the index finding to fold it into when nothing is left, else None."""
    pages = [e for e in finding.evidence if isinstance(e, dict) and e.get("page_fingerprint")]
    explainer, left, total = None, 0.0, 0.0
    for row in pages:
        count_ms, depth_ms = (
            float(row.get("count_saving_ms") or 0),
            float(row.get("depth_saving_ms") or 0),
        )
        total += count_ms + depth_ms
        for part, statement, ms in (
            ("count", row.get("count_fingerprint"), count_ms),
            ("page", row["page_fingerprint"], depth_ms),
        ):
            by = owner.get(str(statement)) if statement else None
            if by is not None and by.kind in _INDEX_KINDS:
                explainer = explainer or by
                row[f"{part}_query_explained_by"] = by.kind
            else:
                left += ms
    if explainer is None:
        return None
    if left <= 0:
        return explainer
    if total > 0:
        finding.estimated_saving_ms *= left / total
    return None


def _counting_pagination(
    finding: Finding, findings: list[Finding], folded: set[int]
) -> Finding | None:
    """The pagination finding whose COUNTs are every read of this cache finding (the
    total recounted on every page: the pagination fix caches it), or None."""
    if finding.kind != "uncached_read":
        return None
    reads = statements_of(finding)
    for other in findings:
        if other.kind != "deep_pagination" or id(other) in folded:
            continue
        if other.endpoint != finding.endpoint:
            continue
        counts = {str(e.get("count_fingerprint")) for e in other.evidence if isinstance(e, dict)}
        if reads and reads <= counts:
            return other
    return None
