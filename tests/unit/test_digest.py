"""The query digest and the per-endpoint summary, on hand-built frames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from deskprof.analysis.digest import latency_histogram, overall_stats, query_profile
from deskprof.analysis.endpoints import SUMMARY_COLUMNS, summarise_endpoints

MS = 1_000_000


def _queries() -> pd.DataFrame:
    rows = [
        # request, start, duration ms, statement, rowcount, endpoint, call site
        ("r1", 0, 1, "SELECT * FROM t WHERE id = 1", 1, "GET /t", "a.py:1"),
        ("r1", 1, 1, "SELECT * FROM t WHERE id = 2", 1, "GET /t", "a.py:1"),
        ("r2", 2, 1, "SELECT * FROM t WHERE id = 3", -1, "GET /u", "b.py:2"),
        ("r2", 3, 50, "SELECT count(*) FROM big", 1, "GET /u", "b.py:3"),
        ("", 4, 10, "UPDATE t SET a = 1", 5, "", "c.py:4"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["request_id", "start_s", "ms", "statement", "rowcount", "endpoint", "call_site"],
    )
    frame["start_ns"] = frame.pop("start_s") * 1_000_000_000
    frame["duration_ns"] = frame.pop("ms") * MS
    frame["error"] = ["", "", "", "", "23505"]
    return frame


def test_overall_stats() -> None:
    stats = overall_stats(_queries())
    assert stats["queries"] == 5
    assert stats["unique_fingerprints"] == 3
    assert stats["total_db_ms"] == 63.0
    assert stats["window_start_ns"] == 0 and stats["window_end_ns"] == 4 * 10**9 + 10 * MS
    assert math.isclose(stats["qps"], 5 / 4.01)
    assert stats["errors"] == 1 and stats["outside_requests"] == 1
    assert overall_stats(_queries().iloc[:0])["queries"] == 0


def test_query_profile_ranked_by_total_time() -> None:
    profile = query_profile(_queries())
    assert profile["rank"].tolist() == [1, 2, 3]
    assert profile["fingerprint"].tolist() == [
        "select count(*) from big",
        "update t set a = ?",
        "select * from t where id = ?",
    ]
    by_id = profile.set_index("fingerprint")
    point = by_id.loc["select * from t where id = ?"]
    assert point["calls"] == 3 and point["total_ms"] == 3.0 and point["mean_ms"] == 1.0
    assert point["rows"] == 2  # unknown rowcount (-1) is not summed
    assert point["endpoints"] == ["GET /t", "GET /u"]  # most calls first
    assert point["call_sites"] == ["a.py:1", "b.py:2"]
    assert by_id.loc["update t set a = ?", "endpoints"] == []
    assert by_id.loc["update t set a = ?", "errors"] == 1
    assert math.isclose(profile["share"].sum(), 1.0)
    assert math.isclose(by_id.loc["select count(*) from big", "share"], 50 / 63)
    assert len(query_profile(_queries(), top=1)) == 1
    assert query_profile(_queries().iloc[:0]).empty


def test_query_profile_p95() -> None:
    frame = pd.DataFrame(
        {
            "statement": ["SELECT 1"] * 100,
            "start_ns": 0,
            "duration_ns": np.arange(1, 101) * MS,
            "rowcount": 1,
        }
    )
    profile = query_profile(frame)
    assert math.isclose(profile.loc[0, "p95_ms"], np.percentile(np.arange(1, 101), 95))
    assert profile.loc[0, "max_ms"] == 100


def test_latency_histogram_buckets() -> None:
    frame = pd.DataFrame({"duration_ns": [0, 5_000, 20_000, MS, 2 * MS, 20_000 * MS]})
    hist = latency_histogram(frame)
    assert hist["queries"].sum() == 6
    assert hist.loc[0, "bucket"] == "< 0.01 ms" and hist.loc[0, "queries"] == 2
    assert hist.iloc[-1]["bucket"] == ">= 10 s" and hist.iloc[-1]["queries"] == 1
    one_ms = hist[hist["low_ms"] == 1].iloc[0]
    assert one_ms["bucket"] == "1 ms - 3 ms" and one_ms["queries"] == 2
    assert (hist["high_ms"].iloc[:-1].to_numpy() == hist["low_ms"].iloc[1:].to_numpy()).all()
    assert latency_histogram(frame.iloc[:0])["queries"].sum() == 0


def test_endpoint_summary() -> None:
    requests = pd.DataFrame(
        {
            "endpoint": ["GET /t", "GET /t", "GET /u"],
            "duration_ns": [10 * MS, 30 * MS, 5 * MS],
            "status": [200, 500, 200],
        }
    )
    samples = pd.DataFrame(
        {
            "endpoint": ["GET /t", "GET /t", "GET /u", ""],
            "n_samples": [10, 5, 4, 1],
            "state": ["cpu", "wait", "cpu", "cpu"],
        }
    )
    allocations = pd.DataFrame(
        {
            "endpoint": ["GET /t", "GET /u", "GET /t"],
            "kind": ["high_water_mark", "high_water_mark", "leaked"],
            "size_bytes": [100, 50, 7],
        }
    )
    summary = summarise_endpoints(requests, _queries(), samples, allocations, cpu_rate_hz=100)
    assert list(summary.columns) == SUMMARY_COLUMNS
    t = summary.set_index("endpoint").loc["GET /t"]
    assert t["requests"] == 2 and t["errors"] == 1
    assert t["p50_ms"] == 20.0
    assert math.isclose(t["cpu_s"], 0.10) and math.isclose(t["wait_s"], 0.05)
    assert t["queries_per_request"] == 1.0 and t["db_ms_per_request"] == 1.0
    assert t["bytes_allocated"] == 100
    assert math.isclose(t["request_share"], 2 / 3)
    assert math.isclose(t["cpu_share"], 0.10 / 0.15)  # of all CPU, the unattributed included
    assert math.isclose(t["db_share"], 2 / 63)
    assert math.isclose(summary.attrs["unattributed_cpu_s"], 0.01)
    assert summary.attrs["unattributed_db_ms"] == 10.0
    assert summary.attrs["bytes_allocated_from"] == "high_water_mark"
    assert summary["endpoint"].tolist() == ["GET /t", "GET /u"]
