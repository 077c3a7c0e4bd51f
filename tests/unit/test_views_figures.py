"""seaborn figures: each returns its Axes/Figure with one artist per thing it shows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from deskprof.errors import DeskprofError
from deskprof.views import (
    findings_summary_plot,
    latency_ecdf,
    query_profile_plot,
    timeline,
)

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def requests_frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    endpoints = np.array(["GET /tickets", "GET /tickets/{ticket_id}", "GET /dashboard"])
    method_route = [e.split(" ", 1) for e in endpoints[np.arange(n) % 3]]
    start = T0 + np.arange(n) * S // 10
    duration = rng.integers(1_000_000, 500_000_000, n)
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "pid": 100 + np.arange(n) % 2,
            "method": [m for m, _ in method_route],
            "route": [r for _, r in method_route],
            "start_ns": start,
            "end_ns": start + duration,
            "duration_ns": duration,
        }
    )


def test_latency_ecdf_draws_one_line_per_endpoint():
    ax = latency_ecdf(requests_frame())
    assert len(ax.get_lines()) == 3
    assert "60 requests" in ax.get_title() and ax.get_xscale() == "log"
    assert ax.get_xlabel() == "server time (ms)"


def test_latency_ecdf_of_the_workload_uses_client_latency_and_an_existing_axes():
    frame = requests_frame()
    workload = pd.DataFrame(
        {
            "name": [*(frame["method"] + " " + frame["route"]).tolist(), "POST /tickets"],
            "latency_ns": [*frame["duration_ns"].tolist(), 3000000],
        }
    )
    _, ax = plt.subplots()
    assert latency_ecdf(workload, ax=ax, top=2) is ax
    assert len(ax.get_lines()) == 2
    assert "2 smaller endpoints left out" in ax.get_title()
    assert ax.get_xlabel() == "client latency (ms)"
    with pytest.raises(DeskprofError, match="duration_ns"):
        latency_ecdf(pd.DataFrame({"x": [1]}))


def test_timeline_shares_one_time_axis_across_four_panels():
    reqs = requests_frame()
    queries = pd.DataFrame({"start_ns": T0 + np.arange(200) * S // 40, "pid": 100})
    metrics = pd.DataFrame(
        {
            "ts_ns": np.repeat(T0 + np.arange(6) * S, 2),
            "pid": [100, 101] * 6,
            "cpu_percent": np.linspace(0, 90, 12),
            "rss_bytes": np.linspace(50, 80, 12) * 1024 * 1024,
        }
    )
    memory = pd.DataFrame(
        {"ts_ns": T0 + np.arange(3) * S, "pid": 100, "rss_bytes": 0, "heap_bytes": [1e6, 2e6, 3e6]}
    )
    fig = timeline(reqs, queries, metrics, memory, start_ns=T0)
    ax_req, ax_sql, ax_cpu, ax_mem = fig.axes[:4]
    assert ax_req.get_shared_x_axes().joined(ax_req, ax_mem)
    assert ax_req.collections[0].get_offsets().shape[0] == 60  # one point per request
    assert ax_req.collections[0].get_offsets()[:, 0].min() == pytest.approx(0.0)
    assert len(ax_cpu.get_lines()) >= 2  # one line per process
    assert len(ax_mem.get_lines()) >= 3  # RSS of two processes + memray heap
    heights = [p.get_height() for p in ax_sql.patches] or [
        max(p.get_paths()[0].vertices[:, 1]) for p in ax_sql.collections
    ]
    assert max(heights) == pytest.approx(40.0)  # 40 queries per second
    assert ax_mem.get_xlabel() == "seconds since capture start"


def test_timeline_says_which_panels_have_no_data():
    empty = pd.DataFrame({"start_ns": [], "duration_ns": []})
    metrics = pd.DataFrame({"ts_ns": [T0], "pid": [1], "cpu_percent": [5.0], "rss_bytes": [1e8]})
    fig = timeline(empty, empty, metrics)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no requests" in texts and "no queries" in texts
    with pytest.raises(DeskprofError, match="at least one"):
        timeline(empty, empty, metrics.iloc[:0])


def test_query_profile_draws_top_fingerprints_by_total_time():
    profile = pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "fingerprint_id": ["a", "b", "c", "d"],
            "fingerprint": ["SELECT * FROM tickets WHERE id = ?" * 4, "UPDATE t", "DELETE t", "X"],
            "calls": [1000, 10, 5, 1],
            "total_ms": [900.0, 50.0, 20.0, 1.0],
            "mean_ms": [0.9, 5.0, 4.0, 1.0],
            "p95_ms": [2.0, 9.0, 8.0, 1.0],
        }
    )
    ax = query_profile_plot(profile, top=3)
    assert len(ax.patches) == 3
    assert [round(p.get_width()) for p in ax.patches] == [900, 50, 20]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("#1 SELECT") and labels[0].endswith("…")
    assert "1,000 calls" in ax.texts[0].get_text()


def test_findings_summary_draws_one_bar_per_finding_coloured_by_severity():
    findings = pd.DataFrame(
        {
            "kind": ["n_plus_one", "slow_query", "slow_query", "cpu_hotspot"],
            "severity": ["high", "medium", "medium", "low"],
            "endpoint": ["GET /tickets", "GET /tickets", "GET /tickets", ""],
            "estimated_saving_ms": [50.0, 20.0, 10.0, 5.0],
        }
    )
    ax = findings_summary_plot(findings)
    assert sum(len(c) for c in ax.containers) == 4
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "n_plus_one · GET /tickets",
        "slow_query · GET /tickets",
        "slow_query · GET /tickets (2)",
        "cpu_hotspot",
    ]
    widths = sorted(p.get_width() for c in ax.containers for p in c)
    assert widths == [5.0, 10.0, 20.0, 50.0]  # no averaging of the two slow queries

    class Finding:
        def to_dict(self):
            return {
                "kind": "memory_peak",
                "severity": "low",
                "endpoint": "GET /x",
                "estimated_saving_ms": 1.0,
            }

    ax = findings_summary_plot([Finding()])
    assert sum(len(c) for c in ax.containers) == 1
    assert findings_summary_plot(pd.DataFrame()).texts[0].get_text() == "no findings"
