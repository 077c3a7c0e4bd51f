"""Deep ``OFFSET`` pagination with a ``COUNT(*)`` on every page.

What the evidence can be depends on what the probe kept. The statement shape is always
there: a page query is a SELECT with ``LIMIT`` and ``OFFSET`` that is not a keyset seek
(``(sort_key, id) < (?, ?)``), and its companion is a ``SELECT count(...)`` of the same
table in the same request. The page depth (the OFFSET value) is known only when the
capture kept parameter values (``--keep-parameters``) or the OFFSET is a literal; then
"latency grows with depth" is tested (Spearman rank correlation of duration and offset).
With values redacted, the detector fires on the count-on-every-page shape only when the
COUNT costs at least ``pagination_min_count_ms`` a page (evidence of a table large enough
to matter: a COUNT of a 10-row table takes microseconds), and says that depth was not
seen. With depth known, pages that never reach ``pagination_deep_offset`` rows are not
deep, whatever else they do. (SQLAlchemy's SQLite dialect writes ``OFFSET ?`` even for page
1, so the shape alone cannot tell page 1 from page 50.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds, combine, group_findings, severity_for
from deskprof.analysis.sqltext import (
    NS_PER_MS,
    endpoint_stat,
    endpoint_stats,
    read_frame,
    read_rows,
    tables_in,
    values_kept,
)

_KEYSET = re.compile(r"\)\s*[<>]=?\s*\(\s*\?")
_OFFSET = re.compile(
    r"\boffset\s+(?:(?P<literal>\d+)\b|(?P<named>%\((?P<name>[^)]+)\)s|:(?P<colon>\w+))"
    r"|\$(?P<dollar>\d+)|(?P<positional>\?|%s))",
    re.I,
)
_POSITIONAL = re.compile(r"\?|%s")


def is_page_query(fp: str) -> bool:
    """A SELECT that pages with LIMIT/OFFSET (not a keyset seek)."""
    text = f" {fp.lower()} "
    return " limit " in text and " offset " in text and not _KEYSET.search(text)


def offset_value(statement: str, parameters: str) -> int | None:
    """The OFFSET of one execution: a literal in the statement, or the bound value when
    parameters were kept (positional ``?``/``%s``, ``%(name)s``, ``:name`` or ``$n``);
    None when it was redacted or cannot be found."""
    matches = list(_OFFSET.finditer(statement or ""))
    if not matches:
        return None
    match = matches[-1]  # the last OFFSET is the outer query's
    if match.group("literal"):
        return int(match.group("literal"))
    try:
        values = json.loads(parameters)
    except (TypeError, ValueError):
        return None
    value: Any = None
    if match.group("positional") and isinstance(values, list):
        index = len(_POSITIONAL.findall(statement[: match.start("positional")]))
        value = values[index] if index < len(values) else None
    elif match.group("dollar") and isinstance(values, list):
        index = int(match.group("dollar")) - 1
        value = values[index] if 0 <= index < len(values) else None
    elif isinstance(values, dict):
        value = values.get(match.group("name") or match.group("colon") or "")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _offsets(
    cache: dict[tuple[str, str], int | None], statements: pd.Series, parameters: pd.Series
) -> list[int | None]:
    """:func:`offset_value` per row, computed once per distinct (statement, parameters)
    pair: with values redacted, a page query has a handful of those over thousands of
    executions. Pairs are found by integer codes, not by hashing every row's text."""
    s_codes, s_texts = pd.factorize(statements, use_na_sentinel=False)
    p_codes, p_texts = pd.factorize(parameters, use_na_sentinel=False)
    pairs, inverse = np.unique(
        s_codes.astype(np.int64) * max(len(p_texts), 1) + p_codes, return_inverse=True
    )
    values = []
    for pair in pairs:
        key = (s_texts[pair // max(len(p_texts), 1)], p_texts[pair % max(len(p_texts), 1)])
        if key not in cache:
            cache[key] = offset_value(*key)
        values.append(cache[key])
    return [values[i] for i in inverse.ravel()]


_ORDER = re.compile(r"\border by\s+(.+?)(?:\s+limit\b|\s+offset\b|$)", re.S)


def keyset_fix(page_fingerprint: str) -> str:
    """The keyset cursor for this page query, in its own sort columns: ``ORDER BY
    tickets.created_at DESC`` pages with ``WHERE (tickets.created_at, tickets.id) <
    (:last_created_at, :last_id)``."""
    match = _ORDER.search(page_fingerprint)
    keys = [k.strip() for k in match.group(1).split(",")] if match else []
    columns = [k.split()[0] for k in keys if k and "(" not in k]
    descending = bool(keys) and keys[0].lower().endswith("desc")
    if not columns or len(columns) != len(keys):
        columns = ["sort_key", "id"]
    table = columns[0].rsplit(".", 1)[0] if "." in columns[0] else ""
    tie = f"{table}.id" if table else "id"
    if tie not in columns:
        columns.append(tie)
    last = ", ".join(f":last_{c.rsplit('.', 1)[-1]}" for c in columns)
    direction = " DESC" if descending else ""
    cursor = (
        f"WHERE ({', '.join(columns)}) {'<' if descending else '>'} ({last}) "
        f"ORDER BY {', '.join(c + direction for c in columns)} LIMIT n"
    )
    return (
        f"Page with a keyset cursor ({cursor}) instead of OFFSET: each page reads only its "
        "rows, and the client passes the last row's values back. Cache the total (or show "
        "an estimate) instead of counting on every page."
    )


def detect_deep_pagination(
    queries: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
    parameters_kept: bool | None = None,
) -> list[Finding]:
    """One finding per endpoint and page query that pages by OFFSET and either runs a
    COUNT of the same table on at least ``pagination_count_share`` of its pages, or (depth
    known) reaches ``pagination_deep_offset`` rows with latency that grows with depth.
    Saving = the COUNT's time per page plus, when depth is known and latency grows, the
    page query's time above its shallowest pages."""
    t = thresholds or Thresholds()
    columns = ["endpoint", "fingerprint_id", "request_id", "parameters", "duration_ns", "_row"]
    positions = read_rows(queries, in_requests=True)
    if not len(positions):
        return []
    # each distinct fingerprint's text, read from its first row (not copied for every row)
    codes, fp_ids = pd.factorize(queries["fingerprint_id"].iloc[positions])
    first = np.full(len(fp_ids), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    fps = [str(fp) for fp in queries["fingerprint"].iloc[positions[first]]]
    text_of = dict(zip(fp_ids, fps, strict=True))
    id_of = {fp: i for i, fp in text_of.items()}
    page_ids = [i for i, fp in text_of.items() if is_page_query(fp)]
    count_ids = [i for i, fp in text_of.items() if fp.lower().startswith("select count(")]
    if not page_ids:
        return []
    kept = values_kept(queries["parameters"].iloc[positions], parameters_kept)
    # only page and count rows matter from here on: keep just those, by fingerprint_id (the
    # texts are long; a page's statement is read for the page rows only)
    relevant = queries["fingerprint_id"].isin(page_ids + count_ids).to_numpy(dtype=bool)
    narrow = queries[[c for c in [*columns, "operation", "error"] if c in queries]]
    narrow = narrow.assign(_row=np.arange(len(queries)))
    reads = read_frame(narrow[relevant], columns, in_requests=True)
    offset_of: dict[tuple[str, str], int | None] = {}
    stats = endpoint_stats(requests)
    findings = []
    for (endpoint, fp_id), pages in reads[reads["fingerprint_id"].isin(page_ids)].groupby(
        ["endpoint", "fingerprint_id"], sort=False
    ):
        fp = text_of[fp_id]
        page_requests = set(pages["request_id"])
        n_requests = len(page_requests)
        if n_requests < t.pagination_min_requests:
            continue
        tables = set(tables_in(fp))
        companion_ids = [i for i in count_ids if tables & set(tables_in(text_of[i]))]
        companions = reads[
            reads["fingerprint_id"].isin(companion_ids) & reads["request_id"].isin(page_requests)
        ]
        count_fp, count_share, count_ms = "", 0.0, 0.0
        if not companions.empty:
            share = companions.groupby("fingerprint_id")["request_id"].nunique() / n_requests
            share.index = [text_of[i] for i in share.index]
            share = share.sort_index()  # ties go to the first text, as grouped by text
            count_fp = str(share.idxmax())
            count_share = float(share.max())
            chosen = companions[companions["fingerprint_id"] == id_of[count_fp]]
            count_ms = float(chosen["duration_ns"].sum()) / n_requests / NS_PER_MS
        counts_every_page = count_share >= t.pagination_count_share

        statements = queries["statement"].iloc[pages["_row"].to_numpy()]
        offsets = pd.Series(
            _offsets(offset_of, statements, pages["parameters"]),
            index=pages.index,
            dtype="Float64",
        )
        depth: dict[str, Any] = {"depth_known": bool(offsets.notna().any())}
        grows, depth_excess_ms = False, 0.0
        if depth["depth_known"]:
            known = pages[offsets.notna()].assign(offset=offsets.dropna().astype(int))
            max_offset = int(known["offset"].max())
            depth.update(max_offset=max_offset, pages_seen=len(known))
            if known["offset"].nunique() >= 3 and known["duration_ns"].nunique() >= 2:
                from scipy import stats as scipy_stats  # seconds to import: only when needed

                rho, p_value = scipy_stats.spearmanr(known["offset"], known["duration_ns"])
                grows = bool(rho >= 0.3 and p_value <= 0.05)
                depth.update(spearman_rho=round(float(rho), 3), p_value=float(p_value))
            shallow = known[known["offset"] == known["offset"].min()]["duration_ns"].median()
            deep = known[known["offset"] >= t.pagination_deep_offset]["duration_ns"]
            if len(deep):
                depth["deep_page_median_ms"] = round(float(deep.median()) / NS_PER_MS, 3)
                depth["first_page_median_ms"] = round(float(shallow) / NS_PER_MS, 3)
            if grows:
                excess = (known["duration_ns"] - shallow).clip(lower=0).sum()
                depth_excess_ms = float(excess) / n_requests / NS_PER_MS
            if max_offset < t.pagination_deep_offset or not (grows or counts_every_page):
                continue
        else:
            depth["note"] = (
                "page depth not seen: parameter values were redacted; re-capture with "
                "--keep-parameters to test whether latency grows with depth"
                if not kept
                else "OFFSET value not found in the statement or its parameters"
            )
            if not counts_every_page or count_ms < t.pagination_min_count_ms:
                continue
        count_saving_ms = count_ms if counts_every_page else 0.0
        saving = count_saving_ms + depth_excess_ms
        median_ms = endpoint_stat(stats, endpoint, "median_ms")
        evidence = {
            "endpoint": endpoint,
            "page_fingerprint": fp,
            "page_requests": n_requests,
            "page_query_median_ms": round(float(pages["duration_ns"].median()) / NS_PER_MS, 3),
            "count_fingerprint": count_fp,
            "share_of_pages_with_count": round(count_share, 3),
            "count_ms_per_page": round(count_ms, 3),
            "latency_grows_with_depth": grows,
            "count_saving_ms": round(count_saving_ms, 3),
            "depth_saving_ms": round(depth_excess_ms, 3),
            **depth,
        }
        what = []
        if grows:
            what.append("latency grows with page depth")
        if counts_every_page:
            what.append("COUNT(*) on every page")
        findings.append(
            Finding(
                kind="deep_pagination",
                severity=severity_for(saving, median_ms, t),
                endpoint=endpoint,
                title=f"OFFSET pagination: {' and '.join(what)}",
                evidence=[evidence],
                estimated_saving_ms=saving,
                fix=keyset_fix(fp),
                affected_requests=n_requests,
            )
        )
    by_endpoint = group_findings(findings, lambda f: f.endpoint)  # one endpoint, one finding
    return [
        combine(group, {"page_queries": len(group)} if len(group) > 1 else None)
        for group in by_endpoint.values()
    ]
