"""Pure parts around the runner: trial summaries, probe join, verdict table, result files,
variant spelling and the CLI's refusals."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from deskprof.cli import build_parser
from deskprof.cli.experiment import build_variants
from deskprof.errors import DeskprofError
from deskprof.experiment import ExperimentResult, Variant, load_result
from deskprof.experiment.design import Design
from deskprof.experiment.measure import ALL, add_probe_metrics, summarize_trial
from deskprof.experiment.result import verdict_table
from deskprof.experiment.variants import check_pair


def records(latencies_ms, name="GET /tickets", statuses=None, start_ns=0):
    n = len(latencies_ms)
    intended = start_ns + np.arange(n) * 200_000_000
    latency = (np.asarray(latencies_ms) * 1e6).astype("int64")
    return pd.DataFrame(
        {
            "name": name,
            "method": "GET",
            "intended_ns": intended,
            "start_ns": intended,
            "end_ns": intended + latency,
            "latency_ns": latency,
            "status": statuses if statuses is not None else [200] * n,
            "error": "",
            "user": "OpenLoopUser",
            "request_id": [f"{name}-{start_ns}-{i}" for i in range(n)],
        }
    )


def test_trial_summary_per_endpoint_and_all_without_logins():
    frame = pd.concat(
        [
            records([10, 20, 30, 40], statuses=[200, 200, 200, 500]),
            records([5, 5], name="GET /dashboard"),
            records([300], name="POST /auth/login"),
        ]
    )
    summary = summarize_trial(frame, cpu_s=0.6, peak_rss_bytes=200 * 1024**2).set_index("endpoint")
    assert list(summary.index) == ["GET /dashboard", "GET /tickets", ALL]
    tickets = summary.loc["GET /tickets"]
    assert tickets["requests"] == 4 and tickets["errors"] == 1
    assert tickets["p50_ms"] == pytest.approx(20.0)  # successful requests only
    assert summary.loc[ALL, "requests"] == 6
    assert summary.loc[ALL, "cpu_ms_per_request"] == pytest.approx(100.0)
    assert summary.loc[ALL, "peak_rss_mb"] == pytest.approx(200.0)
    assert np.isnan(tickets["cpu_ms_per_request"])


def test_probe_metrics_join_on_request_ids_and_count_unseen():
    frame = records([10, 20, 30])
    trials = summarize_trial(frame).assign(trial=0)
    requests = frame.assign(trial=0)
    per_request = pd.DataFrame(
        {"request_id": frame["request_id"][:2], "queries": [101, 99], "db_ms": [12.0, 8.0]}
    )
    joined = add_probe_metrics(trials, requests, per_request).set_index("endpoint")
    assert joined.loc["GET /tickets", "queries_per_request"] == pytest.approx(100)
    assert joined.loc["GET /tickets", "db_ms_per_request"] == pytest.approx(10.0)
    assert joined.loc[ALL, "probe_coverage"] == pytest.approx(2 / 3)


def trials_frame(base_ms, cand_ms, endpoint="GET /tickets"):
    plan = Design(blocks=len(base_ms) // 2, seed=0).plan()
    values = {"baseline": iter(base_ms), "candidate": iter(cand_ms)}
    rows = []
    for row in plan.itertuples(index=False):
        rows.append(
            {**row._asdict(), "endpoint": endpoint, "requests": 50, "errors": 0,
             "p50_ms": next(values[row.arm]), "throughput_rps": 5.0}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_verdict_table_pairs_blocks_and_skips_metrics_without_data():
    rng = np.random.default_rng(1)
    base = list(100 * np.exp(rng.normal(0, 0.05, 10)))
    cand = list(50 * np.exp(rng.normal(0, 0.05, 10)))
    trials = trials_frame(base, cand)
    trials["queries_per_request"] = np.nan
    table = verdict_table(trials)
    assert set(table["metric"]) == {"p50_ms", "throughput_rps"}
    p50 = table[table["metric"] == "p50_ms"].iloc[0]
    assert p50["verdict"] == "faster" and p50["n_baseline"] == 10
    assert table[table["metric"] == "throughput_rps"].iloc[0]["verdict"] == "inconclusive"


def test_endpoint_patterns_filter_the_table():
    trials = pd.concat(
        [trials_frame([1.0, 2, 3, 4], [1, 2, 3, 4], e) for e in ("GET /reports/a", "GET /x")]
    )
    table = verdict_table(trials, endpoints=["GET /reports/*"], metrics=["p50_ms"])
    assert list(table["endpoint"]) == ["GET /reports/a"]


def test_result_round_trips_and_broken_results_are_one_line_errors(tmp_path):
    trials = trials_frame([100.0, 101, 99, 100], [50.0, 51, 49, 50])
    result = ExperimentResult(trials, verdict_table(trials), {"label": "t"})
    path = result.save(tmp_path / "r")
    loaded = load_result(path / "result.json")
    assert loaded.trials.equals(trials)
    assert loaded.verdict("GET /tickets") == result.verdict("GET /tickets")
    assert loaded.config == {"label": "t"}
    with pytest.raises(DeskprofError, match="no verdict for 'GET /nope'"):
        loaded.verdict("GET /nope")
    with pytest.raises(DeskprofError, match="no experiment result"):
        load_result(tmp_path / "missing")
    (path / "result.json").write_text('{"version": 1, "verd')
    with pytest.raises(DeskprofError, match="truncated"):
        load_result(path)


def test_variant_spellings():
    assert Variant.parse("http://127.0.0.1:8000").kind == "url"
    launch = Variant.parse("env:OPENDESK_FIXES=eager_loading,indexes,DEBUG=1")
    assert launch.env == {"OPENDESK_FIXES": "eager_loading,indexes", "DEBUG": "1"}
    assert Variant.parse("cmd:./serve --port {port}").command == "./serve --port {port}"
    for bad in ("staging", "env:", "env:=x", "cmd:"):
        with pytest.raises(DeskprofError):
            Variant.parse(bad)


def test_launch_arms_that_would_fight_over_the_indexes_migration_are_refused():
    with pytest.raises(DeskprofError, match="indexes fix"):
        check_pair(
            Variant.launch({"OPENDESK_FIXES": "none"}), Variant.launch({"OPENDESK_FIXES": "all"})
        )
    own_db = {"OPENDESK_FIXES": "indexes", "OPENDESK_DATABASE_URL": "sqlite:///other"}
    check_pair(Variant.launch({"OPENDESK_FIXES": "none"}), Variant.launch(own_db))


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["experiment", *argv])


def test_cli_builds_a_change_variant_from_apply_and_revert():
    baseline, candidate = build_variants(
        parse("--baseline", "http://127.0.0.1:8000", "--pid", "42", "--apply", "a", "--revert", "r")
    )
    assert candidate.kind == "change" and candidate.url == baseline.url
    assert baseline.pids == candidate.pids == [42]


@pytest.mark.parametrize(
    "argv",
    [
        ["--baseline", "http://127.0.0.1:1"],
        ["--baseline", "http://127.0.0.1:1", "--apply", "a"],
        ["--baseline", "env:X=1", "--apply", "a", "--revert", "r"],
        ["--baseline", "http://127.0.0.1:1", "--candidate", "env:X=1", "--apply", "a"],
        ["--baseline", "env:X=1", "--candidate", "env:X=2", "--pid", "3"],
    ],
)
def test_cli_refuses_incomplete_or_contradictory_variants(argv):
    with pytest.raises(DeskprofError):
        build_variants(parse(*argv))
