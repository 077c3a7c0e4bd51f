"""The vectorised analysis paths against the straightforward per-group computations they
replaced, on random frames with the awkward cases (interleaved requests, ties, empty
values, writes exactly at a read's time). Equal results, not speed, are asserted here;
benchmarks/analysis_speed.py measures speed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deskprof.analysis.attribution import lookup_str
from deskprof.analysis.detectors.deep_pagination import _offsets, offset_value
from deskprof.analysis.detectors.n_plus_one import _repeated_in_request
from deskprof.analysis.detectors.uncached_read import _cacheable_runs
from deskprof.analysis.digest import _ranked_lists
from deskprof.analysis.finding import Thresholds
from deskprof.analysis.sqltext import read_rows

# --- attribution ----------------------------------------------------------------------


def test_lookup_str_matches_keys_and_blanks_the_rest() -> None:
    keys = pd.Series(["r2", "", "r9", "r1", "r2"], index=[5, 6, 7, 8, 9], dtype=str)
    table_keys = pd.Series(["r1", "r2", ""], dtype=str)
    values = pd.Series(["GET /a", "GET /b", "outside"], dtype=str)
    out = lookup_str(keys, table_keys, values)
    assert out.tolist() == ["GET /b", "outside", "", "GET /a", "GET /b"]
    assert list(out.index) == [5, 6, 7, 8, 9]
    empty = lookup_str(keys, pd.Series([], dtype=str), pd.Series([], dtype=str))
    assert empty.tolist() == [""] * 5 and list(empty.index) == [5, 6, 7, 8, 9]


# --- N+1 ------------------------------------------------------------------------------


def _random_reads(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "endpoint": rng.choice(["GET /a", "GET /b"], n),
            "fingerprint_id": rng.choice(["f1", "f2", "f3"], n),
            "call_site": rng.choice(["x.py:1", "x.py:2"], n),
            "request_id": rng.choice([f"r{i}" for i in range(12)], n),
            "duration_ns": rng.integers(1, 30, n) * 1_000_000,
            "call_function": rng.choice(["view", "helper"], n),
        },
        index=rng.permutation(n) + 1000,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_repeated_in_request_matches_groupby(seed: int) -> None:
    reads = _random_reads(np.random.default_rng(seed), 600)
    keys = ["endpoint", "fingerprint_id", "call_site", "request_id"]
    t = Thresholds(n_plus_one_min_repeats=4, n_plus_one_min_total_ms=40.0)
    expected = (
        reads.groupby(keys, sort=False)
        .agg(
            repeats=("duration_ns", "size"),
            total_ns=("duration_ns", "sum"),
            call_function=("call_function", "first"),
        )
        .reset_index()
    )
    # every group repeated often enough: the time rules are applied per pattern later
    expected = expected[expected["repeats"] >= t.n_plus_one_min_repeats].reset_index(drop=True)
    hits = _repeated_in_request(reads, keys, t)
    assert len(expected) > 3  # the case is not vacuous
    pd.testing.assert_frame_equal(
        hits.drop(columns="row"), expected[hits.columns.drop("row")], check_dtype=False
    )
    # "row" is each group's first row in reads
    firsts = reads.reset_index(drop=True).groupby(keys, sort=False).head(1)
    by_key = {tuple(r[k] for k in keys): i for i, r in firsts.iterrows()}
    assert hits["row"].tolist() == [by_key[tuple(r[k] for k in keys)] for _, r in hits.iterrows()]


def test_read_rows_keeps_successful_selects() -> None:
    queries = pd.DataFrame(
        {
            "operation": ["SELECT", "UPDATE", "SELECT", "SELECT"],
            "error": ["", "", "OperationalError", ""],
            "request_id": ["r1", "r1", "r1", ""],
        }
    )
    assert read_rows(queries).tolist() == [0, 3]
    assert read_rows(queries, in_requests=True).tolist() == [0]


# --- uncached reads ---------------------------------------------------------------------


def _reference_cacheable(reads, tables_by_id, writes) -> pd.DataFrame:
    """The per-key loop the detector used to run."""

    def between(times, tables, lo, hi):
        return sum(
            int(np.searchsorted(times[t], hi) - np.searchsorted(times[t], lo, side="right"))
            for t in tables
            if t in times and len(times[t])
        )

    reads = reads.sort_values("start_ns", kind="stable")
    parts = []
    for (_e, fp_id, _p), rows in reads.groupby(
        ["endpoint", "fingerprint_id", "parameters"], sort=False
    ):
        if rows["request_id"].nunique() < 2:
            continue
        streak = (rows["request_id"] != rows["request_id"].shift()).cumsum()
        runs = rows.groupby(streak, sort=True)["start_ns"].agg(["first", "last"])
        previous = runs["first"].shift()
        ok = [
            run
            for run, prev, last in zip(runs.index, previous, runs["last"], strict=True)
            if not pd.isna(prev) and between(writes, tables_by_id[fp_id], int(prev), int(last)) == 0
        ]
        if ok:
            parts.append(rows[streak.isin(ok)])
    return pd.concat(parts) if parts else reads.iloc[:0]


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_cacheable_runs_match_the_per_key_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    # small times so that writes land on, between and beside reads
    reads = pd.DataFrame(
        {
            "endpoint": rng.choice(["GET /r", "GET /s"], n),
            "fingerprint_id": rng.choice(["fa", "fb", "fc"], n),
            "parameters": rng.choice(['["int"]', "[1]", "[2]"], n),
            "request_id": rng.choice([f"r{i}" for i in range(15)], n),
            "start_ns": rng.integers(0, 2000, n),
            "duration_ns": rng.integers(1, 9, n),
        },
        index=rng.permutation(n),
    )
    tables_by_id = {"fa": ["tickets"], "fb": ["tickets", "users"], "fc": ["articles"]}
    writes = {
        "tickets": np.sort(rng.integers(0, 2000, 6)),
        "users": np.sort(rng.integers(0, 2000, 3)),
        "comments": np.sort(rng.integers(0, 2000, 4)),
        "articles": np.array([], dtype=np.int64),
    }
    got = _cacheable_runs(reads, tables_by_id, writes)
    expected = _reference_cacheable(reads, tables_by_id, writes)
    assert len(expected) > 10
    pd.testing.assert_frame_equal(got, expected)


# --- pagination -------------------------------------------------------------------------


def test_offsets_match_offset_value_per_row() -> None:
    rows = [
        ("SELECT * FROM t LIMIT ? OFFSET ?", "[20, 40]"),
        ("SELECT * FROM t LIMIT ? OFFSET ?", '["int", "int"]'),
        ("SELECT * FROM t LIMIT %(l)s OFFSET %(o)s", '{"l": 20, "o": 500}'),
        ("SELECT * FROM t LIMIT 20 OFFSET 60", "[]"),
        ("SELECT * FROM t LIMIT ? OFFSET ?", "[20, 40]"),
        ("SELECT * FROM t LIMIT $1 OFFSET $2", "[20, 80]"),
        ("SELECT * FROM t LIMIT ? OFFSET ?", "not json"),
    ]
    statements = pd.Series([s for s, _ in rows] * 3, dtype=str)
    parameters = pd.Series([p for _, p in rows] * 3, dtype=str)
    cache: dict = {}
    got = _offsets(cache, statements, parameters)
    assert got == [offset_value(s, p) for s, p in zip(statements, parameters, strict=True)]
    assert got[:4] == [40, None, 500, 60]
    assert len(cache) == len(set(rows))
    assert _offsets(cache, statements.iloc[:0], parameters.iloc[:0]) == []


# --- query digest -------------------------------------------------------------------------


def test_ranked_lists_match_counting_strings() -> None:
    rng = np.random.default_rng(8)
    n = 500
    values = rng.choice(["GET /b", "GET /a", "", "POST /c", "GET /d"], n)
    q = pd.DataFrame({"endpoint": pd.Series(values, dtype=str)})
    q.loc[::37, "endpoint"] = None
    codes = rng.integers(0, 6, n)
    got = _ranked_lists(q, codes, "endpoint", 7)
    expected: list[list[str]] = []
    for code in range(7):
        counted = q["endpoint"][codes == code].dropna()
        counted = counted[counted != ""].value_counts()
        ranked = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
        expected.append([value for value, _ in ranked])
    assert got == expected
    assert got[6] == []
    assert _ranked_lists(q, codes, "call_site", 7) == [[] for _ in range(7)]
    assert json.dumps(got)  # plain strings
