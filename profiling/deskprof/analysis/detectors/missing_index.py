"""Missing index: EXPLAIN the slowest SELECTs and look for full scans an index would avoid.

A finding needs a sequential scan (PostgreSQL ``Seq Scan``, SQLite ``SCAN t`` without an
index) of a table of at least ``index_min_table_rows`` rows, under either a selective
filter (rows kept / rows scanned at most ``index_selectivity``: measured with ANALYZE,
estimated in a generic plan, unknown on SQLite) or a sort feeding a LIMIT (a top-N an
index would read in order). Candidate index columns are the filter's equality columns,
then its range column or the sort keys. On PostgreSQL with HypoPG installed each
candidate is created hypothetically and the one that cuts the estimated cost by at least
``index_min_cost_gain`` (Dexter's rule: half) is suggested; a scan no candidate improves
enough is not reported. On SQLite each candidate is built on a copy of the database
(:mod:`deskprof.analysis.index_check`) and the statement planned again, and timed before
and after when values were kept: a candidate the planner ignores is not suggested, and
the finding says "verified on a copy" with the times. Without either the suggestion is
marked unverified and the plan is in the evidence.

One finding per endpoint and table: the indexes one endpoint's statements need on one
table come in one migration, so they are listed together (each with its statement and
check in the evidence); an index that serves several endpoints is one finding too.

A sort key that is an expression (``ORDER BY coalesce(a, b)``) gets an expression index
(``CREATE INDEX ON t ((coalesce(a, b)))``): an index on the bare columns leaves such a
plan unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from deskprof.analysis.explain import (
    SeqScan,
    explained_reads,
    hypothetical_costs,
)
from deskprof.analysis.finding import (
    Finding,
    Thresholds,
    combine,
    group_findings,
    severity_for,
)
from deskprof.analysis.index_check import CopyCheck, CopyOnDemand, copy_statement
from deskprof.analysis.sqltext import (
    IDENT,
    NS_PER_MS,
    endpoint_stat,
    endpoint_stats,
    filter_columns,
    top_endpoint,
    typical_ms_per_request,
    where_text,
)
from deskprof.errors import DeskprofError
from deskprof.redact import scrub_sql

MAX_PLAN_CHARS = 2000


_DIRECTION = re.compile(r"\s+(?:asc|desc)?\s*(?:nulls\s+(?:first|last))?\s*$", re.I)
_QUALIFIER = re.compile(r"\b[a-z_][a-z0-9_]*\.(?=[a-z_\"])")


def _sort_columns(keys: list[str], columns: list[str]) -> list[str]:
    """Index elements for the sort keys: a column's name, or ``(expression)`` for a key
    that is an expression of the table's columns (qualifiers dropped)."""
    known = {c.lower() for c in columns}
    out = []
    for key in keys:
        text = _DIRECTION.sub("", key.strip().lower()).strip()
        while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
        if "(" in text:
            expression = _QUALIFIER.sub("", text)
            used = set(IDENT.findall(expression)) & known
            element = f"({expression})"
            if used and element not in out:
                out.append(element)
            continue
        name = text.split()[0].rsplit(".", 1)[-1].strip('"') if text else ""
        if name in known and name not in out:
            out.append(name)
    return out


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _candidates(equality: list[str], other: list[str], sort: list[str]) -> list[list[str]]:
    """Index column lists to try, most specific first (equality, then range or sort)."""
    out: list[list[str]] = []
    for cols in (
        equality + other[:1],
        equality + [c for c in sort if c not in equality],
        equality,
        sort,
        other[:1],
    ):
        if cols and cols not in out:
            out.append(cols)
    return out


def _scan_problem(
    scan: SeqScan, plan_rows: float, filter_text: str, columns: list[str], t: Thresholds
) -> dict[str, Any] | None:
    if plan_rows < t.index_min_table_rows:
        return None
    equality, other = filter_columns(filter_text, scan.table, columns)
    sort = _sort_columns(scan.sort_keys, columns)
    selectivity = None
    if scan.rows_scanned:
        selectivity = (scan.rows_returned or 0.0) / scan.rows_scanned
    elif scan.rows_returned is not None and plan_rows:
        selectivity = scan.rows_returned / plan_rows
    selective = bool(equality or other) and (
        selectivity is None or selectivity <= t.index_selectivity
    )
    top_n = bool(sort) and scan.limited
    if not (selective or top_n):
        return None
    return {
        "equality": equality,
        "other": other,
        "sort": sort,
        "selectivity": None if selectivity is None else round(selectivity, 4),
        "reason": "selective filter" if selective else "sort feeding a LIMIT",
    }


def detect_missing_indexes(
    queries: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    database_url: str,
    thresholds: Thresholds | None = None,
    parameters_kept: bool | None = None,
    notes: list[dict[str, str]] | None = None,
) -> list[Finding]:
    """EXPLAIN the ``index_candidates`` SELECT fingerprints with the most total time on
    ``database_url`` and report the full scans an index would avoid (see module doc).
    EXPLAIN failures are appended to ``notes`` and skipped, never raised, except that an
    unreachable database stops the detector after one note."""
    t = thresholds or Thresholds()
    notes = notes if notes is not None else []
    stats = endpoint_stats(requests)
    merged: dict[tuple[str, str], Finding] = {}
    copies = CopyOnDemand(database_url, t.explain_timeout_s, notes, "missing_index")
    walk = explained_reads(
        queries,
        database_url,
        limit=t.index_candidates,
        analyze=t.explain_analyze,
        timeout_s=t.explain_timeout_s,
        parameters_kept=parameters_kept,
        notes=notes,
        detector="missing_index",
    )
    try:
        for rows, slowest, plan in walk:
            _check_plan(
                rows, slowest, plan, database_url, parameters_kept, stats, t, notes, copies, merged
            )
    finally:
        copies.close()
    # one index serving several endpoints, then one endpoint's indexes on one table
    by_index = group_findings(merged.values(), lambda f: f.evidence[0]["suggested_index"])
    per_index = [
        combine(
            group, {"endpoints": sorted({f.endpoint for f in group})} if len(group) > 1 else None
        )
        for group in by_index.values()
    ]
    by_table = group_findings(per_index, lambda f: (f.endpoint, f.evidence[0]["table"]))
    return [_one_table(group) for group in by_table.values()]


def _one_table(group: list[Finding]) -> Finding:
    """The indexes one endpoint's statements need on one table, as one finding: one
    migration adds them, and listed apart they read as several problems."""
    if len(group) == 1:
        return group[0]
    fixes = [f.fix for f in sorted(group, key=lambda f: -f.total_saving_ms)]
    ddls = list(dict.fromkeys(f.evidence[0]["suggested_index"] for f in group))
    table = group[0].evidence[0]["table"]
    merged = combine(group, {"suggested_indexes": ddls})
    merged.title = (
        f"Missing indexes: {len(ddls)} on {table} ({'; '.join(_columns(d) for d in ddls)})"
    )
    merged.fix = "; ".join(fixes)
    return merged


def _columns(ddl: str) -> str:
    return ddl[ddl.find("(") :] if "(" in ddl else ddl


def _check_plan(
    rows: pd.DataFrame,
    slowest: pd.Series,
    plan: Any,
    database_url: str,
    parameters_kept: bool | None,
    stats: pd.DataFrame,
    t: Thresholds,
    notes: list[dict[str, str]],
    copies: CopyOnDemand,
    merged: dict[tuple[str, str], Finding],
) -> None:
    """Merge the findings of one fingerprint's plan (its slowest statement's) in."""
    fp = str(slowest["fingerprint"])
    for scan in plan.seq_scans:
        columns = plan.table_columns.get(scan.table, [])
        filter_text = scan.filter or where_text(fp)
        problem = _scan_problem(scan, plan.table_rows.get(scan.table, 0.0), filter_text, columns, t)
        if problem is None:
            continue
        finding = _finding(
            rows,
            fp,
            scan,
            problem,
            plan,
            database_url,
            slowest,
            parameters_kept,
            stats,
            t,
            notes,
            copies,
        )
        if finding is None:
            continue
        key = (finding.endpoint, finding.evidence[0]["suggested_index"])
        if key in merged:  # another statement of the same requests: savings add up
            merged[key].evidence.append(finding.evidence[0])
            merged[key].estimated_saving_ms += finding.estimated_saving_ms
        else:
            merged[key] = finding


def _finding(
    rows: pd.DataFrame,
    fp: str,
    scan: SeqScan,
    problem: dict[str, Any],
    plan: Any,
    database_url: str,
    slowest: pd.Series,
    parameters_kept: bool | None,
    stats: pd.DataFrame,
    t: Thresholds,
    notes: list[dict[str, str]],
    copies: CopyOnDemand,
) -> Finding | None:
    existing = [[c.lower() for c in ix] for ix in plan.table_indexes.get(scan.table, [])]
    candidates = [
        cols
        for cols in _candidates(problem["equality"], problem["other"], problem["sort"])
        if not any(ix[: len(cols)] == cols for ix in existing)  # the planner chose the scan
    ]
    if not candidates:
        return None
    verified, cost_before, cost_after, tried = "", None, None, {}
    chosen = candidates[0]
    gain = None
    if plan.backend == "postgresql":
        try:
            costs = hypothetical_costs(
                database_url,
                plan.statement,
                slowest["parameters"],
                [(scan.table, cols) for cols in candidates],
                timeout_s=t.explain_timeout_s,
                parameters_kept=parameters_kept,
            )
        except DeskprofError as exc:
            notes.append(
                {
                    "detector": "missing_index",
                    "statement": plan.statement[:200],
                    "reason": f"HypoPG: {exc}",
                }
            )
            costs = None
        if costs is not None:
            cost_before, tried = costs
            best_ddl = min(tried, key=tried.__getitem__)
            cost_after = tried[best_ddl]
            gain = 1.0 - cost_after / cost_before if cost_before else 0.0
            if gain < t.index_min_cost_gain:
                return None  # Dexter's rule: not worth an index
            chosen = candidates[list(tried).index(best_ddl)]
            verified = "hypopg"
    copy_check: CopyCheck | None = None
    if plan.backend == "sqlite" and copies.get() is not None:
        found = _try_on_copy(copies, plan, slowest, scan.table, candidates, parameters_kept, t)
        if found is None:
            return None  # the planner uses none of them: the advice would not fit
        chosen, copy_check = found
        verified = "sqlite copy"
        if copy_check.before_ms is not None and copy_check.after_ms is not None:
            cost_before, cost_after = copy_check.before_ms, copy_check.after_ms
            gain = 1.0 - cost_after / cost_before if cost_before else 0.0
    endpoint = top_endpoint(rows)
    at_endpoint = rows[rows["endpoint"] == endpoint] if endpoint else rows
    affected = int(at_endpoint["request_id"].nunique()) if endpoint else len(rows)
    per_request_ms = float(at_endpoint["duration_ns"].sum()) / max(affected, 1) / NS_PER_MS
    typical_ms = typical_ms_per_request(at_endpoint, affected)
    if gain is not None and verified == "sqlite copy":
        share, basis = gain, "time on a copy of the database, before and after the index"
    elif gain is not None:
        share, basis = gain, "HypoPG estimated cost reduction"
    elif problem["selectivity"] is not None:
        share, basis = 1.0 - problem["selectivity"], "share of scanned rows the filter discards"
    elif verified:
        share, basis = (
            0.5,
            "assumed half (the copy's plan uses the index; not timed: values redacted)",
        )
    else:
        share, basis = 0.5, "assumed half (SQLite: no row counts, not verified)"
    saving = typical_ms * share
    ddl = f"CREATE INDEX ON {scan.table} ({', '.join(chosen)})"
    evidence = {
        "fingerprint": fp,
        "table": scan.table,
        "table_rows": int(plan.table_rows.get(scan.table, 0)),
        "reason": problem["reason"],
        "filter": scrub_sql(scan.filter),  # EXPLAIN shows bound values in filters
        "sort_keys": scan.sort_keys,
        "selectivity": problem["selectivity"],
        "suggested_index": ddl,
        "verified_with": verified,
        "cost_before": cost_before,
        "cost_after": cost_after,
        "candidates_tried": tried,
        "plan": scrub_sql(plan.text())[:MAX_PLAN_CHARS],
        "plan_kind": "analyzed" if plan.analyzed else ("generic" if plan.generic else "estimated"),
        "plan_note": plan.note,
        "plan_with_index": copy_check.plan_after if copy_check else None,
        "db_ms_per_request": round(per_request_ms, 3),
        "typical_db_ms_per_request": round(typical_ms, 3),  # at the median: the saving's base
        "saving_basis": basis,
    }
    if verified == "hypopg":
        check = f" (HypoPG: estimated cost {cost_before:.0f} -> {cost_after:.0f})"
    elif verified and cost_before is not None:
        check = f" (verified on a copy: {cost_before:.2f} ms -> {cost_after:.2f} ms)"
    elif verified:
        check = " (verified on a copy: the plan uses it; not timed, values were redacted)"
    else:
        check = " (not verified: install HypoPG on PostgreSQL to check it hypothetically)"
    return Finding(
        kind="missing_index",
        severity=severity_for(saving, endpoint_stat(stats, endpoint, "median_ms"), t),
        endpoint=endpoint,
        title=f"Missing index: full scan of {scan.table} ({problem['reason']})",
        evidence=[evidence],
        estimated_saving_ms=saving,
        fix=ddl + check,
        affected_requests=affected,
    )


def _try_on_copy(
    copies: CopyOnDemand,
    plan: Any,
    slowest: pd.Series,
    table: str,
    candidates: list[list[str]],
    parameters_kept: bool | None,
    t: Thresholds,
) -> tuple[list[str], CopyCheck] | None:
    """The first candidate the planner uses on the copy and, when the statement can be
    timed (values kept), that halves its time (Dexter's rule, measured); None if none."""
    copy = copies.get()
    if copy is None:
        return None
    text, args, timed = copy_statement(plan, slowest["parameters"], parameters_kept)
    for elements in candidates:
        try:
            check = copy.check(text, args, table, elements, timed)
        except DeskprofError as exc:
            copies.notes.append(
                {"detector": "missing_index", "statement": plan.statement[:200], "reason": str(exc)}
            )
            return None
        if not check.uses_index:
            continue
        measured = timed and check.before_ms and check.after_ms is not None
        if measured and 1.0 - check.after_ms / check.before_ms < t.index_min_cost_gain:
            continue
        return elements, check
    return None
