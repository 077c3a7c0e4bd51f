"""Weak index: the plan uses an index, but one that reads a large share of the table.

``SEARCH tickets USING INDEX ix_status (status=?)`` looks fine in a plan, yet when half
the rows share a status the lookup reads thousands of them to keep a few. SQLite picks
such an index without statistics (it prefers an equality on any column to a range on a
selective one), and a missing-index rule never sees it, since nothing is scanned in full.

Judged on a copy of the database (:mod:`deskprof.analysis.index_check`), where the rows
one lookup by the index's key reads are counted (each value weighted by how often it
occurs). When that is at least ``weak_index_min_rows`` and the statement also filters on
columns the index does not serve, two fixes are tried there. With parameter values kept
the statement is timed: ANALYZE first (the planner, told the selectivity, may choose a
better existing index: the "wrong index chosen" case), then an index on the key's
columns plus the first unserved filter column, each reported when it halves the time.
With values redacted nothing can be timed and a changed plan proves nothing, so only the
new index is reported, when its key selects at least ``MIN_ROWS_RATIO`` times fewer rows
(with what ANALYZE would choose as evidence). SQLite only for now: PostgreSQL keeps
statistics itself, and the missing-index detector reads its plans' row counts.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from deskprof.analysis.explain import (
    IndexSearch,
    Plan,
    explained_reads,
)
from deskprof.analysis.finding import Finding, Thresholds, severity_for
from deskprof.analysis.index_check import CopyCheck, CopyOnDemand, SqliteCopy, copy_statement
from deskprof.analysis.sqltext import (
    NS_PER_MS,
    endpoint_stat,
    endpoint_stats,
    filter_columns,
    top_endpoint,
    typical_ms_per_request,
    where_text,
)
from deskprof.errors import DeskprofError

MIN_ROWS_RATIO = 10.0  # without times: the fix must read this many times fewer rows


def detect_weak_indexes(
    queries: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    database_url: str,
    thresholds: Thresholds | None = None,
    parameters_kept: bool | None = None,
    notes: list[dict[str, str]] | None = None,
) -> list[Finding]:
    """Index lookups of the ``index_candidates`` busiest read fingerprints that read at
    least ``weak_index_min_rows`` rows per key while a better plan exists (module doc)."""
    t = thresholds or Thresholds()
    notes = notes if notes is not None else []
    if not database_url.startswith("sqlite"):
        return []
    stats = endpoint_stats(requests)
    copies = CopyOnDemand(database_url, t.explain_timeout_s, notes, "weak_index")
    findings = []
    walk = explained_reads(
        queries,
        database_url,
        limit=t.index_candidates,
        analyze=False,
        timeout_s=t.explain_timeout_s,
        parameters_kept=parameters_kept,
        notes=notes,
        detector="weak_index",
    )
    try:
        for rows, slowest, plan in walk:
            for search in plan.index_searches:
                finding = _judge(rows, slowest, plan, search, copies, parameters_kept, stats, t)
                if finding is not None:
                    findings.append(finding)
                    break  # one finding per statement
    finally:
        copies.close()
    return findings


def _judge(
    rows: pd.DataFrame,
    slowest: pd.Series,
    plan: Plan,
    search: IndexSearch,
    copies: CopyOnDemand,
    parameters_kept: bool | None,
    stats: pd.DataFrame,
    t: Thresholds,
) -> Finding | None:
    table_rows = plan.table_rows.get(search.table, 0.0)
    prefix = len(search.equality_columns)
    if table_rows < t.index_min_table_rows or not prefix:
        return None
    fp = str(slowest["fingerprint"])
    equality, other = filter_columns(
        where_text(fp), search.table, plan.table_columns.get(search.table, [])
    )
    unserved = [c for c in [*equality, *other] if c not in search.columns]
    copy = copies.get()
    if not unserved or copy is None:
        return None
    text, args, timed = copy_statement(plan, slowest["parameters"], parameters_kept)
    try:
        per_key = copy.rows_per_lookup(search.table, search.equality_columns)
        if per_key < t.weak_index_min_rows:
            return None
        fix = _better_plan(copy, text, args, search, unserved, per_key, timed, t)
    except DeskprofError as exc:
        copies.notes.append(
            {"detector": "weak_index", "statement": plan.statement[:200], "reason": str(exc)}
        )
        return None
    if fix is None:
        return None
    return _finding(rows, fp, plan, search, per_key, fix, stats, t)


def _better_plan(
    copy: SqliteCopy,
    text: str,
    args: list[Any],
    search: IndexSearch,
    unserved: list[str],
    per_key: float,
    timed: bool,
    t: Thresholds,
) -> dict[str, Any] | None:
    """The fix the copy shows better. Timed (values kept): ANALYZE first (the cheapest
    fix, taken when it halves the time), then a new index. Untimed, a plan that merely
    changes proves nothing, so only a new index whose key reads ``MIN_ROWS_RATIO`` times
    fewer rows per lookup, with ANALYZE's plan as evidence."""
    analyzed = copy.analyzed_check(text, args, timed)
    moved = analyzed.uses_index and not any(search.index in line for line in analyzed.plan_after)
    if timed and moved and _faster(analyzed, t):
        return {"how": "analyze", "check": analyzed, "rows_after": None}
    elements = [*search.equality_columns, unserved[0]]
    trial = copy.check(text, args, search.table, elements, timed)
    if not trial.uses_index:
        return None
    if timed:
        return (
            {"how": "index", "check": trial, "elements": elements, "rows_after": None}
            if (_faster(trial, t))
            else None
        )
    rows_after = copy.rows_per_lookup(search.table, elements)
    if rows_after * MIN_ROWS_RATIO > per_key:
        return None
    return {
        "how": "index",
        "check": trial,
        "elements": elements,
        "rows_after": rows_after,
        "plan_after_analyze": analyzed.plan_after if moved else None,
    }


def _faster(check: CopyCheck, t: Thresholds) -> bool:
    """Whether the fix halved the statement's time on the copy (Dexter's rule)."""
    if check.before_ms is None or check.after_ms is None:
        return False
    return check.before_ms > 0 and 1.0 - check.after_ms / check.before_ms >= t.index_min_cost_gain


def _finding(
    rows: pd.DataFrame,
    fp: str,
    plan: Plan,
    search: IndexSearch,
    per_key: float,
    fix: dict[str, Any],
    stats: pd.DataFrame,
    t: Thresholds,
) -> Finding:
    check: CopyCheck = fix["check"]
    endpoint = top_endpoint(rows)
    at_endpoint = rows[rows["endpoint"] == endpoint] if endpoint else rows
    affected = int(at_endpoint["request_id"].nunique()) if endpoint else len(at_endpoint)
    per_request_ms = float(at_endpoint["duration_ns"].sum()) / max(affected, 1) / NS_PER_MS
    typical_ms = typical_ms_per_request(at_endpoint, affected)
    table_rows = plan.table_rows.get(search.table, 0.0)
    after_rows = fix["rows_after"]
    if check.before_ms and check.after_ms is not None:
        share = 1.0 - check.after_ms / check.before_ms
        basis = "time on a copy of the database, before and after the fix"
        measured = f"verified on a copy: {check.before_ms:.2f} ms -> {check.after_ms:.2f} ms"
    else:
        after = max(after_rows or 0.0, 1.0)
        share = 1.0 - after / per_key
        basis = "rows read per lookup on a copy, before and after (values were redacted)"
        measured = f"verified on a copy: about {per_key:,.0f} -> {after:,.0f} rows per lookup"
    saving = typical_ms * max(share, 0.0)
    if fix["how"] == "analyze":
        chosen = next((line for line in check.plan_after if "INDEX" in line), "another plan")
        remedy = (
            f"Run ANALYZE (or PRAGMA optimize when connections close) so the planner knows "
            f"{search.index} is not selective; with statistics it chooses: {chosen} ({measured})"
        )
        title = f"Wrong index chosen: {search.index} reads about {per_key:,.0f} rows per lookup"
    else:
        ddl = f"CREATE INDEX ON {search.table} ({', '.join(fix['elements'])})"
        remedy = f"{ddl} ({measured})"
        title = f"Weak index: {search.index} reads about {per_key:,.0f} rows per lookup"
    evidence = {
        "fingerprint": fp,
        "table": search.table,
        "table_rows": int(table_rows),
        "index": search.index,
        "index_condition": search.condition,
        "rows_per_key": round(per_key, 1),
        "rows_per_key_after": None if after_rows is None else round(after_rows, 1),
        "fix_kind": fix["how"],
        "plan_after_analyze": fix.get("plan_after_analyze"),
        "before_ms": check.before_ms,
        "after_ms": check.after_ms,
        "plan": check.plan_before,
        "plan_after_fix": check.plan_after,
        "db_ms_per_request": round(per_request_ms, 3),
        "typical_db_ms_per_request": round(typical_ms, 3),  # at the median: the saving's base
        "saving_basis": basis,
    }
    return Finding(
        kind="weak_index",
        severity=severity_for(saving, endpoint_stat(stats, endpoint, "median_ms"), t),
        endpoint=endpoint,
        title=title,
        evidence=[evidence],
        estimated_saving_ms=saving,
        fix=remedy,
        affected_requests=affected,
    )
