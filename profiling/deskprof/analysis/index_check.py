"""Verify a suggested index on SQLite: build it on a copy, plan and time the statement again.

PostgreSQL has HypoPG to price an index without building it; SQLite has nothing like it,
so a suggestion used to go out "assumed half, not verified", and some did not fit (an
index on ``(a, b)`` for ``ORDER BY coalesce(a, b)`` leaves the plan as it was). Here the
database file is copied once per analysis (SQLite's online backup, so a live file is
copied consistently; the original is only read), each candidate is created on the copy,
and the statement is planned again: a candidate the planner does not use is not
suggested. When the capture kept parameter values the statement is also run before and
after (median of a few runs, under the EXPLAIN timeout) and the times are in the
finding; with values redacted only the plan is checked (running it with NULLs bound
would time a query that matches nothing).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deskprof.analysis.explain import (
    bind_values,
    parse_parameters,
    rewrite_placeholders,
    sqlite_deadline,
    sqlite_error,
)
from deskprof.errors import DeskprofError

MAX_COPY_BYTES = 2 << 30  # larger files are not copied: the suggestion stays unverified
RUNS = 3
ANALYSIS_LIMIT = 2000  # rows ANALYZE samples per index: statistics in milliseconds
_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass
class CopyCheck:
    """What building one candidate on the copy showed."""

    uses_index: bool
    plan_before: list[str]
    plan_after: list[str]
    before_ms: float | None = None  # median of RUNS, with values kept
    after_ms: float | None = None
    index: str = ""  # the trial index's name on the copy (dropped again)


def copy_statement(
    plan: Any, parameters: Any, parameters_kept: bool | None
) -> tuple[str, list[Any], bool]:
    """(statement with ``?`` placeholders, its arguments, whether it can be timed) for
    running a planned statement on the copy: timed only with the values kept (NULLs
    would time a query that matches nothing), planned with NULLs otherwise."""
    text, keys = rewrite_placeholders(plan.statement, "qmark")
    values = parse_parameters(parameters) if not plan.generic else None
    timed = values is not None and parameters_kept is not False
    try:
        args = bind_values(values, keys) if timed else [None] * len(keys)
    except DeskprofError:  # a value missing: plan it generically, do not time it
        args, timed = [None] * len(keys), False
    return text, args, timed


def index_ddl(table: str, elements: list[str], name: str | None = None) -> str:
    """``CREATE INDEX [name] ON table (elements)``: SQLite needs a name, the suggestion
    shown to users (PostgreSQL's style) does not."""
    named = f"{name} " if name else ""
    return f"CREATE INDEX {named}ON {table} ({', '.join(elements)})"


class SqliteCopy:
    """A private copy of a SQLite database for trying indexes; ``close()`` deletes it."""

    def __init__(self, path: str | Path, timeout_s: float) -> None:
        source = Path(path)
        size = source.stat().st_size
        if size > MAX_COPY_BYTES:
            raise DeskprofError(
                f"{source} is {size / 2**30:.1f} GiB, too large to copy for verifying an "
                "index; verify the suggestion on a smaller copy"
            )
        self.timeout_s = timeout_s
        self._dir = Path(tempfile.mkdtemp(prefix="deskprof-index-"))
        self.path = self._dir / "copy.sqlite3"
        original = sqlite3.connect(f"file:{quote(str(source.resolve()))}?mode=ro", uri=True)
        try:
            self.conn = sqlite3.connect(self.path)
            original.backup(self.conn)
        except sqlite3.Error as exc:
            self.close()
            raise DeskprofError(f"could not copy {source} to verify an index: {exc}") from None
        finally:
            original.close()

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _guarded(self) -> None:
        sqlite_deadline(self.conn, self.timeout_s)

    def plan(self, statement: str, args: list[Any]) -> list[str]:
        self._guarded()
        rows = self.conn.execute(f"EXPLAIN QUERY PLAN {statement}", args).fetchall()
        return [str(row[-1]) for row in rows]

    def time_ms(self, statement: str, args: list[Any]) -> float:
        """Median wall time of RUNS executions, rows fetched."""
        times = []
        for _ in range(RUNS):
            self._guarded()
            started = time.perf_counter()
            self.conn.execute(statement, args).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    def _clear_statistics(self) -> None:
        """Forget what ANALYZE gathered, so the next trial plans as the original would."""
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
        ).fetchone()
        if exists:
            self.conn.execute("DELETE FROM sqlite_stat1")
            self.conn.execute("ANALYZE sqlite_schema")

    def rows_per_lookup(self, table: str, columns: list[str]) -> float:
        """Rows one lookup by ``columns`` reads on average, each value weighted by how
        often it occurs (a value half the table holds is looked up half the time):
        sum(n^2) / sum(n) over the groups, counted on the copy."""
        self._guarded()
        keys = ", ".join(f'"{c}"' for c in columns)
        try:
            row = self.conn.execute(
                f'SELECT sum(n * n) * 1.0 / sum(n) FROM (SELECT count(*) AS n FROM "{table}" '
                f"GROUP BY {keys})"
            ).fetchone()
        except sqlite3.Error as exc:
            raise sqlite_error(exc, "counting rows per key on a copy", self.timeout_s) from None
        return float(row[0] or 0.0)

    def analyzed_check(self, statement: str, args: list[Any], timed: bool) -> CopyCheck:
        """Plan (and time) ``statement`` before and after ANALYZE on the copy: whether
        the planner, told the columns' selectivity, would choose differently."""
        try:
            before = self.plan(statement, args)
            before_ms = self.time_ms(statement, args) if timed else None
            self.conn.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
            self.conn.execute("ANALYZE")
            try:
                after = self.plan(statement, args)
                after_ms = self.time_ms(statement, args) if timed else None
            finally:
                self._clear_statistics()
        except sqlite3.Error as exc:
            raise sqlite_error(exc, "ANALYZE on a copy", self.timeout_s) from None
        return CopyCheck(after != before, before, after, before_ms, after_ms)

    def check(
        self,
        statement: str,
        args: list[Any],
        table: str,
        elements: list[str],
        timed: bool,
    ) -> CopyCheck:
        """Plan (and with ``timed``, time) ``statement`` without and with the index
        ``elements`` on ``table``; the index is dropped again afterwards."""
        name = "deskprof_try_" + _NAME.sub("_", f"{table}_{'_'.join(elements)}".lower())[:40]
        try:
            before = self.plan(statement, args)
            before_ms = self.time_ms(statement, args) if timed else None
            self.conn.execute(index_ddl(table, elements, name))
            try:
                after = self.plan(statement, args)
                after_ms = self.time_ms(statement, args) if timed else None
            finally:
                self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        except sqlite3.Error as exc:
            raise sqlite_error(exc, "the trial index on a copy", self.timeout_s) from None
        uses = any(name in line for line in after)
        return CopyCheck(uses, before, after, before_ms, after_ms, index=name)


class CopyOnDemand:
    """The SQLite copy a detector tries its candidates on, made on first use, once per
    run; a copy that cannot be made is one note in ``notes`` (as ``detector``)."""

    def __init__(
        self, database_url: str, timeout_s: float, notes: list[dict[str, str]], detector: str
    ):
        self.database_url, self.timeout_s, self.notes = database_url, timeout_s, notes
        self.detector = detector
        self.copy: SqliteCopy | None = None
        self.failed = False

    def get(self) -> SqliteCopy | None:
        if self.copy is None and not self.failed:
            from sqlalchemy.engine import make_url

            try:
                self.copy = SqliteCopy(make_url(self.database_url).database, self.timeout_s)
            except (DeskprofError, OSError) as exc:
                self.failed = True
                reason = f"no copy to verify indexes on: {exc}"
                self.notes.append({"detector": self.detector, "reason": reason})
        return self.copy

    def close(self) -> None:
        if self.copy is not None:
            self.copy.close()
