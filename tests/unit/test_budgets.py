"""Budgets: a budgets file read with one-line errors, absolute limits per endpoint, and
relative limits that call a change a regression only beyond its confidence interval (an
A/A pair passes; a real slowdown does not)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deskprof.analysis.budgets import (
    check_absolute,
    check_relative,
    format_value,
    load_budgets,
)
from deskprof.errors import DeskprofError

MS = 1_000_000


def _budgets(tmp_path: Path, text: str):
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return load_budgets(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[endpoints.'*']\np95 = 3\n", "unknown metric 'p95'"),
        ("[endpoints.'*']\np95_ms = -1\n", "a number >= 0"),
        ("[limits]\n", "unknown section 'limits'"),
        ("min_requests = 3\n", "sets no budget"),
        ("[relative]\nerror_rate = 0.1\n", "unknown metric 'error_rate'"),
        ("[endpoints\n", "not valid TOML"),
    ],
)
def test_a_bad_budgets_file_is_one_line_naming_the_mistake(tmp_path, text, says) -> None:
    with pytest.raises(DeskprofError) as caught:
        _budgets(tmp_path, text)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(DeskprofError, match="no budgets file"):
        load_budgets(tmp_path / "missing.toml")


def _summary(**overrides) -> pd.DataFrame:
    row = {"endpoint": "GET /tickets", "requests": 40, "errors": 0, "p50_ms": 20.0,
           "p95_ms": 60.0, "p99_ms": 90.0, "queries_per_request": 12.0,
           "db_ms_per_request": 8.0, "bytes_allocated": 40 * 3 * 2**20}  # fmt: skip
    other = {**row, "endpoint": "GET /health", "requests": 2, "p95_ms": 900.0}
    return pd.DataFrame([{**row, **overrides}, other])


def test_absolute_budgets_name_each_breach_and_skip_thin_endpoints(tmp_path) -> None:
    budgets = _budgets(
        tmp_path,
        "[endpoints.'*']\np95_ms = 500\nerror_rate = 0.01\n"
        "[endpoints.'GET /tickets']\nqueries_per_request = 5\nalloc_bytes_per_request = 4194304\n"
        "[endpoints.'GET /gone']\np95_ms = 1\n",
    )
    result = check_absolute(_summary(), budgets)
    assert [(c.endpoint, c.metric) for c in result.breaches] == [
        ("GET /tickets", "queries_per_request")
    ]
    assert result.breaches[0].line() == (
        "BREACH GET /tickets  queries_per_request = 12.0 (budget 5.0)"
    )
    assert len(result.checks) == 4  # p95, error rate, queries, bytes
    assert any("GET /health: 2 request(s)" in n for n in result.notes)
    assert any("GET /gone: not in this capture" in n for n in result.notes)
    assert check_absolute(_summary(queries_per_request=4.0), budgets).passed


def test_numbers_have_units_and_no_exponents() -> None:
    assert format_value("p95_ms", 16_400.0) == "16,400.0 ms"
    assert format_value("alloc_bytes_per_request", 3 * 2**20) == "3.00 MiB"
    assert format_value("error_rate", 0.0123) == "1.23%"
    assert "e+" not in format_value("queries_per_request", 1.34e4)


def _capture(seed: int, scale: float = 1.0, queries_each: int = 3) -> SimpleNamespace:
    """40 s of GET /tickets, 10 requests a second, latency lognormal around 50 ms."""
    rng = np.random.default_rng(seed)
    n = 400
    start = np.sort(rng.uniform(0, 40e9, n)).astype(np.int64)
    duration = (rng.lognormal(np.log(50), 0.3, n) * scale * MS).astype(np.int64)
    ids = [f"s{seed}-{i}" for i in range(n)]
    requests = pd.DataFrame({"request_id": ids, "endpoint": "GET /tickets",
                             "start_ns": start, "duration_ns": duration})  # fmt: skip
    queries = pd.DataFrame({"request_id": np.repeat(ids, queries_each),
                            "duration_ns": np.full(n * queries_each, MS)})  # fmt: skip
    return SimpleNamespace(requests=requests, queries=queries)


def test_relative_budgets_pass_an_a_a_pair_and_fail_a_real_slowdown(tmp_path) -> None:
    budgets = _budgets(tmp_path, "[relative]\np95_ms = 0.10\nqueries_per_request = 0.0\n")
    same = check_relative(_capture(2), _capture(1), budgets)
    assert same.passed, [c.line() for c in same.checks]
    slower = check_relative(_capture(2, scale=1.5), _capture(1), budgets)
    assert [c.metric for c in slower.breaches] == ["p95_ms"]
    assert "regression" in slower.breaches[0].detail
    more = check_relative(_capture(2, queries_each=4), _capture(1), budgets)
    assert [c.metric for c in more.breaches] == ["queries_per_request"]
    assert "3.0 -> 4.0" in more.breaches[0].detail
