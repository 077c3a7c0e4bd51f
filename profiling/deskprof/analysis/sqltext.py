"""What the SQL detectors (and EXPLAIN) share: the tables a statement names, whether
parameter values were kept, and the query and request statistics several detectors use.

These were private helpers of one detector module imported by the others; public here,
in a module that imports no detector, so the detectors depend on it and not on each
other. Plain functions of the contract's DataFrames (``queries`` with ``fingerprint``,
``fingerprint_id``, ``operation`` and ``endpoint``; ``requests`` with ``endpoint``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd

NS_PER_MS = 1e6
WRITES = ("INSERT", "UPDATE", "DELETE")

_NAME = r'(?:"[^"]+"|`[^`]+`|[a-z_][\w$]*)'
_TABLE_AFTER = re.compile(rf"\b(?:join|update|into)\s+({_NAME}(?:\.{_NAME})?)", re.I)
_FROM_LIST = re.compile(
    r"\bfrom\s+(.+?)(?=\bwhere\b|\bgroup\b|\border\b|\blimit\b|\boffset\b|\bjoin\b|\binner\b"
    r"|\bleft\b|\bright\b|\bfull\b|\bcross\b|\bunion\b|\bhaving\b|\breturning\b|\bfor\b|\)|$)",
    re.I | re.S,
)
_NOT_TABLES = frozenset({"select", "lateral", "only", "as", "(", "?", "set"})  # do update set


def tables_in(statement: str) -> list[str]:
    """Tables a statement reads or writes (``FROM a, b``, ``JOIN``, ``UPDATE``, ``INTO``),
    lowercased, schema prefix dropped, in order of appearance. Subqueries are looked into
    as text, so ``IN (SELECT ... FROM t)`` names ``t`` too."""
    found: list[str] = []
    for match in _FROM_LIST.finditer(statement):
        for part in match.group(1).split(","):
            words = part.strip().split()
            if words and words[0].lower() not in _NOT_TABLES and not words[0].startswith("("):
                found.append(words[0])
    found.extend(m.group(1) for m in _TABLE_AFTER.finditer(statement))
    out: list[str] = []
    for name in found:
        name = re.split(r'\.(?=["`a-z_])', name, flags=re.I)[-1].strip('"`').lower()
        if (
            name
            and name not in out
            and name not in _NOT_TABLES
            and re.fullmatch(r"[a-z_][\w$]*", name)
        ):
            out.append(name)
    return out


_TYPE_NAMES = frozenset(
    [
        "int",
        "str",
        "float",
        "bool",
        "None",
        "NoneType",
        "datetime",
        "date",
        "time",
        "timedelta",
        "Decimal",
        "UUID",
        "bytes",
        "bytearray",
        "memoryview",
        "list",
        "dict",
        "tuple",
        "set",
        "Range",
        "Json",
        "Jsonb",
        "Enum",
        "ndarray",
    ]
)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def values_kept(parameters: pd.Series, hint: bool | None = None) -> bool:
    """Whether the ``parameters`` column holds values (``--keep-parameters``) rather than
    type names. ``hint`` (the manifest's ``keep_parameters``) wins when given; otherwise a
    sample is sniffed: only Python type names (``"int"``, ``"str"``...) means redacted, so
    an unusual type name (a custom class) can pass for a value: prefer the hint."""
    if hint is not None:
        return bool(hint)
    for text in parameters.dropna().astype(str).head(500):
        try:
            leaves = _leaves(json.loads(text))
        except ValueError:
            continue
        for leaf in leaves:
            if not isinstance(leaf, str) or leaf not in _TYPE_NAMES:
                return True
    return False


def endpoint_stats(requests: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint: ``requests`` (count) and ``median_ms`` (latency), indexed by endpoint."""
    if requests.empty or "endpoint" not in requests:
        return pd.DataFrame({"requests": [], "median_ms": []})
    grouped = requests.groupby("endpoint")["duration_ns"]
    return pd.DataFrame(
        {"requests": grouped.size(), "median_ms": grouped.median() / NS_PER_MS}
    ).astype(float)


def endpoint_stat(stats: pd.DataFrame, endpoint: str, column: str) -> float:
    """One endpoint's ``column`` of :func:`endpoint_stats` (0 when it has none)."""
    return float(stats[column].get(endpoint, 0.0)) if column in stats else 0.0


def short_site(call_site: str) -> str:
    """``/long/path/opendesk/tickets.py:112`` → ``opendesk/tickets.py:112``."""
    parts = str(call_site).replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else str(call_site)


def top_endpoint(frame: pd.DataFrame) -> str:
    """The endpoint that spends the most time in these rows (``""`` outside requests)."""
    in_requests = frame[frame["endpoint"] != ""]
    if in_requests.empty:
        return ""
    return str(in_requests.groupby("endpoint")["duration_ns"].sum().idxmax())


def read_rows(queries: pd.DataFrame, *, in_requests: bool = False) -> np.ndarray:
    """Positions of the SELECTs that did not fail (and ran inside a request, when
    ``in_requests``), in table order."""
    keep = (queries["operation"] == "SELECT").to_numpy(dtype=bool)
    if "error" in queries:
        keep = keep & (queries["error"].fillna("") == "").to_numpy(dtype=bool)
    if in_requests:
        keep = keep & (queries["request_id"] != "").to_numpy(dtype=bool)
    return np.flatnonzero(keep)


def read_frame(
    queries: pd.DataFrame, columns: list[str] | None = None, *, in_requests: bool = False
) -> pd.DataFrame:
    """The rows of :func:`read_rows`, index kept.

    ``columns`` keeps only those columns: a filter copies every column it keeps, and
    copying a million statement or fingerprint texts costs more than a detector's own
    work (detectors fetch those texts for the few rows they report)."""
    frame = queries if columns is None else queries[[c for c in columns if c in queries]]
    return frame.iloc[read_rows(queries, in_requests=in_requests)]


def explain_targets(queries: pd.DataFrame, limit: int) -> tuple[pd.DataFrame, list[str]]:
    """(the reads that filter or sort, the ``limit`` fingerprint ids of them with the
    most total time): what the EXPLAIN detectors look at, in that order."""
    reads = read_frame(queries)
    reads = reads[reads["fingerprint"].str.contains(r"\b(?:where|order by)\b", regex=True)]
    totals = reads.groupby("fingerprint_id")["duration_ns"].sum().sort_values(ascending=False)
    return reads, [str(fp_id) for fp_id in totals.index[:limit]]


def typical_ms_per_request(rows: pd.DataFrame, requests: int) -> float:
    """A statement's DB time per request at its *median* duration (calls per request x
    median): what an index or a better plan can save. The mean carries stalls (the GIL,
    a busy host, a lock) that a faster plan does not remove."""
    if rows.empty:
        return 0.0
    return float(rows["duration_ns"].median()) * len(rows) / max(requests, 1) / NS_PER_MS


_WHERE = re.compile(r"\bwhere\b(.+?)(?:\bgroup by\b|\border by\b|\blimit\b|\boffset\b|$)", re.S)
IDENT = re.compile(r"[a-z_][a-z0-9_]*")


def where_text(fingerprint: str) -> str:
    """The WHERE clause of a statement (up to GROUP BY, ORDER BY, LIMIT or OFFSET)."""
    match = _WHERE.search(fingerprint.lower())
    return match.group(1) if match else ""


def filter_columns(text: str, table: str, columns: list[str]) -> tuple[list[str], list[str]]:
    """(equality columns, other filter columns) of ``table`` named in a filter text."""
    text = text.lower()
    known = [c.lower() for c in columns]
    named = []
    for word in IDENT.findall(text):
        if word in known and word not in named:
            named.append(word)
    equality = [
        c
        for c in named
        if re.search(rf"\b{c}\b\)?(?:::[a-z ]+?)?\)?\s*=(?!=)", text)
        or re.search(rf"(?<![<>!])=\s*\(?\(?(?:{table}\.)?{c}\b", text)
    ]
    # a column only ever compared with != / NOT IN / IS NOT cannot narrow an index range
    other = [
        c
        for c in named
        if c not in equality
        and (
            not re.search(rf"\b{c}\b\)?\s*(?:!=|<>|is not\b|not in\b|not like\b)", text)
            or re.search(rf"\b{c}\b\)?\s*(?:<=|>=|<(?!>)|>|between\b|like\b|in\b)", text)
        )
    ]
    return equality, other
