"""EXPLAIN a captured statement, safely, on PostgreSQL or SQLite.

What can run on a staging database, and what guards it (a captured statement is text
from a log: treat it as hostile):

- **Plain EXPLAIN by default**: the statement is planned, never executed. ``EXPLAIN
  ANALYZE`` (which executes it) only when the caller opts in (``analyze=True``,
  ``--explain-analyze``), and even then never for a statement that calls a volatile or
  unknown function (``pg_terminate_backend``, ``dblink_exec``, ``nextval``, a user
  function that writes...): PostgreSQL's own catalogue (``pg_proc.provolatile``) decides,
  and the plan says why ANALYZE was not run.
- **One statement per call, by protocol**: every PostgreSQL command goes through the
  extended query protocol (a binary cursor), which refuses several statements in one
  text ("cannot insert multiple commands into a prepared statement") whatever a
  tokenizer thought the text was; sqlite3 refuses them too. The SELECT check below is a
  second line, not the guard.
- A READ ONLY transaction that is always rolled back, and ``statement_timeout`` (default
  5 s, never rounded to zero, i.e. never off; SQLite: a progress handler on a read-only
  connection).

Use a read-only role on a replica for ``--explain-database`` all the same.

Parameter values: a captured statement has placeholders, and the probe keeps only the
parameter *types* unless the capture ran with ``--keep-parameters``. With values (and
``analyze``), PostgreSQL runs ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)``. Without them
nothing can be executed, so we ask for the **generic plan** (the one PostgreSQL would cache for any
values): ``EXPLAIN (GENERIC_PLAN)`` on PostgreSQL 16+, and on older servers ``PREPARE``
plus ``plan_cache_mode = force_generic_plan`` and ``EXPLAIN EXECUTE`` with NULLs (the
values are never looked at in a forced generic plan). Its row counts are the planner's
estimates, not measurements, and :attr:`Plan.note` says so. SQLite's ``EXPLAIN QUERY
PLAN`` never runs the query; without values it binds NULLs (its plan does not depend on
them).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from sqlalchemy.engine import URL, make_url

from deskprof.analysis.fingerprint import fingerprint, operation
from deskprof.analysis.sqltext import explain_targets, values_kept
from deskprof.errors import DeskprofError, first_line

MAX_TIMEOUT_S = 3600.0
# Call-like words that are SQL syntax, not functions in pg_proc (so not "unknown")
_SYNTAX_CALLS = frozenset(
    {
        "in",
        "exists",
        "values",
        "any",
        "all",
        "some",
        "coalesce",
        "nullif",
        "greatest",
        "least",
        "cast",
        "row",
        "array",
        "extract",
        "position",
        "substring",
        "trim",
        "overlay",
        "over",
        "filter",
        "within",
        "as",
        "and",
        "or",
        "not",
        "on",
        "using",
        "from",
        "select",
        "join",
        "where",
        "lateral",
        "case",
        "when",
        "then",
        "else",
        "end",
        "is",
        "like",
        "ilike",
        "similar",
        "between",
        "by",
        "group",
        "order",
        "partition",
        "rows",
        "range",
        "window",
        "union",
        "intersect",
        "except",
        "distinct",
        "having",
        "limit",
        "offset",
        "interval",
        "collate",
        "at",
        "zone",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
        "grouping",
        "cube",
        "rollup",
        "sets",
        "tablesample",
        "for",
        "with",
        "recursive",
        "treat",
        "xmlelement",
        "xmlforest",
        "xmlparse",
        "xmlpi",
        "xmlroot",
        "xmlserialize",
        "xmlexists",
        "normalize",
    }
)
_CALL = re.compile(r"(?<![\w.$])([a-z_][\w$]*)\s*\(")
REDACTED_NOTE = (
    "parameters were redacted; re-capture with --keep-parameters for EXPLAIN ANALYZE. "
    "This is the generic plan (estimated rows, nothing executed)"
)
_PLACEHOLDER = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?P<pct>%%)|%\((?P<name>[^)]+)\)s|(?P<fmt>%s)"
    r"|(?P<qmark>\?)|\$(?P<num>\d+)|(?<![:\w]):(?P<colon>[A-Za-z_]\w*)|%"
)


@dataclass
class SeqScan:
    """A full scan of ``table`` in a plan, with what sits above it."""

    table: str
    filter: str = ""
    rows_returned: float | None = None  # actual (ANALYZE) or estimated
    rows_scanned: float | None = None  # actual only: returned + removed by filter
    sort_keys: list[str] = field(default_factory=list)  # a Sort above this scan
    limited: bool = False  # a Limit above this scan


@dataclass
class IndexSearch:
    """A lookup of ``table`` through ``index`` (SQLite ``SEARCH t USING INDEX ix (a=?)``):
    ``condition`` is what the index serves, ``a=?`` or ``a=? AND b>?``."""

    table: str
    index: str
    condition: str

    @property
    def equality_columns(self) -> list[str]:
        """The index columns the lookup fixes with ``=`` (its key prefix)."""
        terms = [term.strip() for term in re.split(r"\s+AND\s+", self.condition)]
        return [term.split("=", 1)[0].lower() for term in terms if re.fullmatch(r"\w+=\?", term)]

    @property
    def columns(self) -> list[str]:
        """Every column the condition names."""
        return [c.lower() for c in re.findall(r"(\w+)\s*(?:[<>=]|IN\b)", self.condition)]


@dataclass
class Plan:
    """What :func:`explain` returns. ``plan`` is PostgreSQL's JSON plan (the top node) or
    SQLite's query plan rows; ``table_rows`` and ``table_columns`` describe the tables the
    plan scans in full, so a caller can judge "large" and name index columns."""

    backend: str  # postgresql | sqlite
    statement: str
    plan: Any
    analyzed: bool
    generic: bool
    total_cost: float | None = None
    execution_ms: float | None = None
    note: str = ""
    seq_scans: list[SeqScan] = field(default_factory=list)
    table_rows: dict[str, float] = field(default_factory=dict)
    table_columns: dict[str, list[str]] = field(default_factory=dict)
    table_indexes: dict[str, list[list[str]]] = field(default_factory=dict)  # their columns
    index_searches: list[IndexSearch] = field(default_factory=list)  # SQLite only
    index_names: dict[str, list[str]] = field(default_factory=dict)  # per table, as indexes

    def text(self) -> str:
        """The plan as indented lines, the way ``EXPLAIN`` prints it."""
        if self.backend == "sqlite":
            return "\n".join(f"{'  ' * depth}{detail}" for depth, detail in _sqlite_tree(self.plan))
        return "\n".join(_pg_lines(self.plan, 0))


# --- statement checks and placeholders -------------------------------------------------


def check_select(statement: str) -> None:
    """Refuse anything but one read-only SELECT, with a one-line reason."""
    fp = fingerprint(statement)
    if not fp:
        raise DeskprofError("nothing to EXPLAIN: the statement is empty")
    if ";" in fp:
        raise DeskprofError("EXPLAIN takes one statement; this text holds several")
    op = operation(fp)
    if op != "SELECT":
        raise DeskprofError(
            f"refusing to EXPLAIN a {op} statement: only SELECT is explained (EXPLAIN ANALYZE "
            "executes the statement)"
        )
    if re.search(r"\binto\b", fp) or re.search(r"\bfor (?:update|share|no key|key)\b", fp):
        raise DeskprofError("refusing to EXPLAIN SELECT ... INTO / FOR UPDATE: it writes or locks")


def rewrite_placeholders(statement: str, style: str) -> tuple[str, list[int | str]]:
    """Rewrite the driver's placeholders (``?``, ``%s``, ``%(name)s``, ``:name``, ``$n``)
    as ``style`` and return the text plus the key (position or name) of each value to bind.

    ``"format"`` (psycopg ``%s``, literal ``%`` doubled) and ``"qmark"`` (sqlite3 ``?``)
    bind one value per occurrence; ``"dollar"`` numbers distinct values ``$1..$n`` (a name
    used twice is one number) for ``PREPARE``."""
    keys: list[int | str] = []
    slots: dict[int | str, int] = {}
    position = 0
    # a psycopg statement (%s, %(name)s) has every literal % doubled, strings included
    percent_source = bool(re.search(r"%\(|%s", statement))

    def percents(text: str) -> str:
        if style == "format":
            return text if percent_source else text.replace("%", "%%")
        return text.replace("%%", "%") if percent_source else text

    def replace(match: re.Match[str]) -> str:
        nonlocal position
        if not any(match.group(g) for g in ("name", "fmt", "qmark", "num", "colon")):
            return percents(match.group())  # %%, a quoted string or identifier
        key: int | str
        if match.group("num"):
            key = int(match.group("num")) - 1
        elif match.group("name") or match.group("colon"):
            key = match.group("name") or match.group("colon")
        else:
            key = position
            position += 1
        if style != "dollar":
            keys.append(key)
            return "%s" if style == "format" else "?"
        if key not in slots:
            slots[key] = len(slots) + 1
            keys.append(key)
        return f"${slots[key]}"

    return _PLACEHOLDER.sub(replace, statement), keys


def parse_parameters(parameters: Any) -> Any:
    """The ``queries.parameters`` JSON (or already-parsed values); executemany rows → first."""
    if isinstance(parameters, str):
        try:
            parameters = json.loads(parameters) if parameters.strip() else None
        except ValueError as exc:
            raise DeskprofError(f"parameters are not the probe's JSON: {exc}") from None
    return parameters


def bind_values(parameters: Any, keys: list[int | str]) -> list[Any]:
    """The values for ``keys`` (placeholder positions or names) from the captured
    parameters; one line naming the first missing one."""
    out = []
    for key in keys:
        try:
            out.append(parameters[key])
        except (KeyError, IndexError, TypeError):
            raise DeskprofError(
                f"the captured parameters have no value for placeholder {key!r}; "
                "pass the parameters recorded with this statement"
            ) from None
    return out


# --- the entry point -------------------------------------------------------------------


def check_timeout(timeout_s: float) -> float:
    """A statement timeout that is really one: positive, finite, at most an hour."""
    if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s)):
        raise DeskprofError(f"the EXPLAIN timeout must be a number of seconds, got {timeout_s!r}")
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise DeskprofError(
            f"the EXPLAIN timeout must be more than 0 and at most {MAX_TIMEOUT_S:g} s, "
            f"got {timeout_s:g}"
        )
    return float(timeout_s)


def timeout_ms(timeout_s: float) -> int:
    """``statement_timeout`` in whole milliseconds, rounded up: 0 would switch it off."""
    return max(1, math.ceil(check_timeout(timeout_s) * 1000))


def explain(
    database_url: str,
    statement: str,
    parameters: Any = None,
    *,
    analyze: bool = False,
    timeout_s: float = 5.0,
    parameters_kept: bool | None = None,
) -> Plan:
    """EXPLAIN one SELECT on ``database_url`` (``postgresql://...`` or ``sqlite:///...``).

    ``parameters`` is what the probe stored (JSON text or parsed): values when the capture
    kept them, else types (then the plan is generic and ``Plan.note`` says why).
    ``analyze`` opts in to executing it (PostgreSQL, with values, only when every function
    it calls is immutable or stable). Raises :class:`DeskprofError` for a non-SELECT, an
    unreachable database, a timeout or a statement the database rejects."""
    check_timeout(timeout_s)
    check_select(statement)
    values = parse_parameters(parameters)
    kept = values is not None and (
        parameters_kept
        if parameters_kept is not None
        else values_kept(_series([json.dumps(values)]))
    )
    try:
        url = make_url(database_url)
    except Exception:
        raise DeskprofError(f"not a database URL: {database_url!r}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _explain_sqlite(url, statement, values if kept else None, timeout_s=timeout_s)
    if backend in ("postgresql", "postgres"):
        return _explain_pg(
            url, statement, values if kept else None, analyze=analyze, timeout_s=timeout_s
        )
    raise DeskprofError(f"EXPLAIN supports PostgreSQL and SQLite, not {backend!r}")


def _series(items: list[str]) -> Any:
    return pd.Series(items, dtype=object)


# --- rendering --------------------------------------------------------------------------


def _pg_lines(node: Any, depth: int) -> Iterator[str]:
    if not isinstance(node, dict):
        return
    label = node.get("Node Type", "?")
    if node.get("Relation Name"):
        label += f" on {node['Relation Name']}"
    if node.get("Index Name"):
        label += f" using {node['Index Name']}"
    cost = f"cost={node.get('Startup Cost', 0):.2f}..{node.get('Total Cost', 0):.2f}"
    rows = f"rows={node.get('Plan Rows', '?')}"
    actual = ""
    if "Actual Total Time" in node:
        actual = (
            f" (actual time={node['Actual Total Time']:.3f} rows={node.get('Actual Rows')} "
            f"loops={node.get('Actual Loops')})"
        )
    yield f"{'  ' * depth}-> {label} ({cost} {rows}){actual}"
    for key in ("Filter", "Index Cond", "Sort Key", "Hash Cond", "Join Filter"):
        if node.get(key):
            yield f"{'  ' * depth}     {key}: {node[key]}"
    for child in node.get("Plans") or []:
        yield from _pg_lines(child, depth + 1)


def _sqlite_tree(rows: list[Any]) -> list[tuple[int, str]]:
    depth: dict[int, int] = {0: -1}
    out = []
    for row in rows:
        node_id, parent, detail = row[0], row[1], row[-1]
        depth[node_id] = depth.get(parent, -1) + 1
        out.append((depth[node_id], str(detail)))
    return out


# --- PostgreSQL ---------------------------------------------------------------------------


@contextmanager
def pg_read_only(url: URL, timeout_s: float) -> Iterator[Any]:
    """A psycopg cursor in a READ ONLY transaction with ``statement_timeout``, always
    rolled back and closed (also used for HypoPG's hypothetical indexes, which live in the
    session and vanish with it)."""
    import psycopg

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(conninfo, connect_timeout=max(1, round(timeout_s)))
    except psycopg.Error as exc:
        raise DeskprofError(
            f"cannot connect to {url.render_as_string()} to EXPLAIN: {first_line(exc)}"
        ) from None
    try:
        # binary: every execute uses the extended protocol, one statement per call
        with conn.cursor(binary=True) as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(
                "SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms(timeout_s)}",)
            )
            yield cur
    except psycopg.errors.QueryCanceled:
        raise DeskprofError(
            f"EXPLAIN stopped by statement_timeout after {timeout_s:g} s; raise --explain-timeout "
            "or EXPLAIN on a smaller copy"
        ) from None
    except psycopg.Error as exc:
        raise DeskprofError(f"PostgreSQL rejected the EXPLAIN: {first_line(exc)}") from None
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def unsafe_calls(cur: Any, statement: str) -> list[str]:
    """The functions ``statement`` may call that are volatile or unknown to the server
    (any overload volatile counts): such a statement is never run by EXPLAIN ANALYZE.
    Over-inclusive on purpose: a word before ``(`` that the catalogue does not know as an
    immutable or stable function is unsafe."""
    names = sorted({m.group(1) for m in _CALL.finditer(fingerprint(statement))} - _SYNTAX_CALLS)
    if not names:
        return []
    cur.execute(
        "SELECT proname::text, bool_or(provolatile = 'v') FROM pg_proc "
        "WHERE proname = ANY(%s) GROUP BY proname",
        (names,),
    )
    known = {name: volatile for name, volatile in cur.fetchall()}
    return [name for name in names if known.get(name, True)]


def pg_explain_json(
    cur: Any, statement: str, values: Any, *, analyze: bool
) -> tuple[Any, bool, str]:
    """Run the right EXPLAIN on ``cur``: (the top JSON object, analyzed, why not analyzed)."""
    why_not = ""
    if analyze:
        unsafe = unsafe_calls(cur, statement)
        if unsafe:
            analyze = False
            why_not = (
                f"EXPLAIN ANALYZE not run: the statement calls {', '.join(unsafe)} (volatile "
                "or unknown to the server), so it was planned, not executed"
            )
    if values is not None:
        text, keys = rewrite_placeholders(statement, "format")
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        cur.execute(f"EXPLAIN ({options}) {text}", bind_values(values, keys))
        return _json_row(cur), analyze, why_not
    text, keys = rewrite_placeholders(statement, "dollar")
    if not keys:  # nothing to bind: the real plan, with ANALYZE if asked
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        cur.execute(f"EXPLAIN ({options}) {text}")
        return _json_row(cur), analyze, why_not
    # generic plan without values, on every version (16+ also has EXPLAIN (GENERIC_PLAN))
    cur.execute(f"PREPARE deskprof_explain AS {text}")
    cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    nulls = ", ".join(["NULL"] * len(keys))
    cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE deskprof_explain({nulls})")
    top = _json_row(cur)
    cur.execute("DEALLOCATE deskprof_explain")
    return top, False, why_not


def _json_row(cur: Any) -> Any:
    value = cur.fetchone()[0]
    doc = json.loads(value) if isinstance(value, str) else value
    return doc[0] if isinstance(doc, list) else doc


def _explain_pg(url: URL, statement: str, values: Any, *, analyze: bool, timeout_s: float) -> Plan:
    with pg_read_only(url, timeout_s) as cur:
        top, analyzed, why_not = pg_explain_json(cur, statement, values, analyze=analyze)
        generic = values is None and bool(rewrite_placeholders(statement, "dollar")[1])
        root = top["Plan"]
        plan = Plan(
            backend="postgresql",
            statement=statement,
            plan=root,
            analyzed=analyzed,
            generic=generic,
            total_cost=float(root.get("Total Cost", 0.0)),
            execution_ms=top.get("Execution Time"),
            note="; ".join(filter(None, [REDACTED_NOTE if generic else "", why_not])),
            seq_scans=list(_pg_seq_scans(root, analyzed, [], False)),
        )
        for table in sorted({scan.table for scan in plan.seq_scans}):
            cur.execute(
                "SELECT c.reltuples, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                "AND NOT a.attisdropped WHERE c.oid = to_regclass(%s) GROUP BY c.reltuples",
                (table,),
            )
            row = cur.fetchone()
            if row is None:
                continue
            rows = float(row[0])
            if rows < 0:  # never analyzed: count, under the statement timeout
                cur.execute(f"SELECT count(*) FROM {_quoted(table)}")
                rows = float(cur.fetchone()[0])
            plan.table_rows[table] = rows
            plan.table_columns[table] = list(row[1])
            cur.execute(
                "SELECT array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) "
                "FROM pg_index i WHERE i.indrelid = to_regclass(%s)",
                (table,),
            )
            plan.table_indexes[table] = [list(r[0]) for r in cur.fetchall()]
    return plan


def _quoted(identifier: str) -> str:
    """``identifier`` as a quoted SQL identifier (a name from a plan is data, not SQL)."""
    return '"' + identifier.replace('"', '""') + '"'


def _pg_seq_scans(
    node: dict, analyzed: bool, sort_keys: list[str], limited: bool
) -> Iterator[SeqScan]:
    kind = node.get("Node Type", "")
    if kind == "Limit":
        limited = True
    if kind in ("Sort", "Incremental Sort"):
        sort_keys = list(node.get("Sort Key") or [])
    if kind in ("Seq Scan", "Parallel Seq Scan") and node.get("Relation Name"):
        loops = float(node.get("Actual Loops") or 1)
        returned = (
            float(node.get("Actual Rows", 0)) * loops
            if analyzed
            else float(node.get("Plan Rows", 0))
        )
        scanned = (
            returned + float(node.get("Rows Removed by Filter", 0)) * loops if analyzed else None
        )
        yield SeqScan(
            table=node["Relation Name"],
            filter=str(node.get("Filter", "")),
            rows_returned=returned,
            rows_scanned=scanned,
            sort_keys=sort_keys,
            limited=limited,
        )
    for child in node.get("Plans") or []:
        yield from _pg_seq_scans(child, analyzed, sort_keys, limited)


# --- SQLite -------------------------------------------------------------------------------

_SQLITE_SEARCH = re.compile(
    r"^SEARCH (?:TABLE )?(?P<table>\w+)(?: AS \w+)? USING (?:COVERING )?INDEX (?P<index>\w+) "
    r"\((?P<condition>[^)]*)\)"
)
_SQLITE_SCAN = re.compile(r"^SCAN (?:TABLE )?(?P<table>\w+)(?: AS (?P<alias>\w+))?(?P<rest>.*)$")
_ORDER_BY = re.compile(r"\border by (.+?)(?:\blimit\b|\boffset\b|$)", re.I | re.S)


def sqlite_deadline(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Interrupt whatever ``conn`` runs next once ``timeout_s`` has passed (SQLite has no
    statement timeout; its progress handler is the way)."""
    stop_at = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > stop_at), 10_000)


def sqlite_error(exc: sqlite3.Error, doing: str, timeout_s: float) -> DeskprofError:
    """One line for a SQLite failure while running ``doing``: the deadline, or the
    database's own word."""
    if "interrupted" in str(exc):
        return DeskprofError(f"{doing} stopped after {timeout_s:g} s; try a smaller copy")
    return DeskprofError(f"SQLite rejected {doing}: {first_line(exc)}")


def split_top_level(text: str) -> list[str]:
    """``"coalesce(a, b) desc, id"`` → ``["coalesce(a, b) desc", "id"]``: commas inside
    parentheses do not split."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _sqlite_table_info(conn: sqlite3.Connection, table: str, plan: Plan) -> None:
    """Rows, columns and indexes of ``table`` into ``plan`` (once per table)."""
    if table in plan.table_rows:
        return
    quoted = _quoted(table)
    plan.table_rows[table] = float(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
    plan.table_columns[table] = [str(r[1]) for r in conn.execute(f"PRAGMA table_info({quoted})")]
    indexes = [str(ix[1]) for ix in conn.execute(f"PRAGMA index_list({quoted})").fetchall()]
    plan.index_names[table] = indexes
    plan.table_indexes[table] = [
        [str(c[2]) for c in conn.execute(f"PRAGMA index_info({_quoted(ix)})")] for ix in indexes
    ]


def _explain_sqlite(url: URL, statement: str, values: Any, *, timeout_s: float) -> Plan:
    path = url.database
    if not path or path == ":memory:":
        raise DeskprofError("EXPLAIN needs a SQLite file, not an in-memory database")
    if not Path(path).is_file():
        raise DeskprofError(f"no SQLite database at {path}; pass the file the capture used")
    conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
    sqlite_deadline(conn, check_timeout(timeout_s))
    try:
        text, keys = rewrite_placeholders(statement, "qmark")
        args = bind_values(values, keys) if values is not None else [None] * len(keys)
        rows = [tuple(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {text}", args).fetchall()]
        plan = Plan(
            backend="sqlite",
            statement=statement,
            plan=rows,
            analyzed=False,
            generic=values is None and bool(keys),
            note=(
                "parameters were redacted; SQLite's query plan does not depend on the values "
                "(NULLs were bound)"
                if values is None and keys
                else ""
            ),
        )
        sorted_in_temp = any("USE TEMP B-TREE FOR ORDER BY" in str(r[-1]) for r in rows)
        # "SCAN anon_1" is a subquery or CTE (SQLAlchemy's anonymous aliases): no table
        tables = {
            str(r[0]).lower()
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        order = _ORDER_BY.search(fingerprint(statement))
        for row in rows:
            search = _SQLITE_SEARCH.match(str(row[-1]))
            if search and search.group("table").lower() in tables:
                table = search.group("table")
                plan.index_searches.append(
                    IndexSearch(table, search.group("index"), search.group("condition"))
                )
                _sqlite_table_info(conn, table, plan)
            match = _SQLITE_SCAN.match(str(row[-1]))
            if match is None or "INDEX" in match.group("rest").upper():
                continue
            table = match.group("table")
            if table.lower() not in tables:
                continue
            plan.seq_scans.append(
                SeqScan(
                    table=table,
                    sort_keys=split_top_level(order.group(1)) if order and sorted_in_temp else [],
                    limited=" limit " in f" {fingerprint(statement)} ",
                )
            )
            _sqlite_table_info(conn, table, plan)
        return plan
    except sqlite3.Error as exc:
        raise sqlite_error(exc, "the EXPLAIN", timeout_s) from None
    finally:
        conn.close()


# --- hypothetical indexes (HypoPG) ----------------------------------------------------------


def hypothetical_costs(
    database_url: str,
    statement: str,
    parameters: Any,
    candidates: list[tuple[str, list[str]]],
    *,
    timeout_s: float = 5.0,
    parameters_kept: bool | None = None,
) -> tuple[float, dict[str, float]] | None:
    """Estimated cost of ``statement`` now and with each candidate index ``(table,
    columns)`` created hypothetically (HypoPG: nothing is built, nothing written).

    Returns ``(cost_now, {"CREATE INDEX ON t (a, b)": cost})``, or None when the database
    is not PostgreSQL or has no ``hypopg`` extension installed (``CREATE EXTENSION
    hypopg`` is the DBA's call, so it is never created here)."""
    check_timeout(timeout_s)
    check_select(statement)
    url = make_url(database_url)
    if url.get_backend_name() not in ("postgresql", "postgres"):
        return None
    values = parse_parameters(parameters)
    kept = values is not None and (
        parameters_kept
        if parameters_kept is not None
        else values_kept(_series([json.dumps(values)]))
    )
    with pg_read_only(url, timeout_s) as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'")
        if cur.fetchone() is None:
            return None
        bound = values if kept else None
        top = pg_explain_json(cur, statement, bound, analyze=False)[0]
        base = float(top["Plan"]["Total Cost"])
        costs: dict[str, float] = {}
        for table, columns in candidates:
            ddl = f"CREATE INDEX ON {table} ({', '.join(columns)})"
            cur.execute("SELECT hypopg_reset()")
            cur.execute("SELECT indexrelid FROM hypopg_create_index(%s)", (ddl,))
            top = pg_explain_json(cur, statement, bound, analyze=False)[0]
            costs[ddl] = float(top["Plan"]["Total Cost"])
        cur.execute("SELECT hypopg_reset()")
    return base, costs


def explained_reads(
    queries: pd.DataFrame,
    database_url: str,
    *,
    limit: int,
    analyze: bool,
    timeout_s: float,
    parameters_kept: bool | None,
    notes: list[dict[str, str]],
    detector: str,
) -> Iterator[tuple[pd.DataFrame, pd.Series, Plan]]:
    """(its rows, its slowest row, that row's plan) for each of the ``limit`` read
    fingerprints with the most total time (:func:`explain_targets`). A statement EXPLAIN
    refuses is a note (as ``detector``) and skipped; an unreachable database ends the
    walk after its note (the others would fail alike)."""
    reads, top = explain_targets(queries, limit)
    for fp_id in top:
        rows = reads[reads["fingerprint_id"] == fp_id]
        slowest = rows.loc[rows["duration_ns"].idxmax()]
        try:
            plan = explain(
                database_url,
                str(slowest["statement"]),
                slowest["parameters"],
                analyze=analyze,
                timeout_s=timeout_s,
                parameters_kept=parameters_kept,
            )
        except DeskprofError as exc:  # this statement is not checked; the others are
            # the fingerprint (values already out), so the reader sees which query it was
            shown = str(slowest["fingerprint"])[:200]
            notes.append({"detector": detector, "statement": shown, "reason": str(exc)})
            if "cannot connect" in str(exc):
                return
            continue
        yield rows, slowest, plan
