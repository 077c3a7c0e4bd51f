"""Differential flame graph: normalisation per request (or second), colours, the table."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from deskprof.errors import DeskprofError
from deskprof.views import (
    FlameSource,
    change_colour,
    diff_flamegraph,
    diff_flamegraph_html,
    diff_frame,
    flame_diff_table,
)
from deskprof.views.document import asset
from tests.unit.test_views_flametree import LIST, MAIN, QUERY, RENDER, T0, ten_row_capture

CACHE = "cache_get (/srv/cache.py:3)"
BLUE, RED, GREY = "rgb(40,90,220)", "rgb(220,40,40)", "rgb(232,232,232)"


def requests(endpoints: list[str]) -> pd.DataFrame:
    method, route = zip(*(e.split(" ", 1) for e in endpoints), strict=True)
    return pd.DataFrame(
        {"request_id": [f"q{i}" for i in range(len(endpoints))], "method": method, "route": route}
    )


def baseline() -> FlameSource:
    samples, stacks = ten_row_capture()
    reqs = requests(["GET /list", "GET /list", "GET /item", "GET /item"])
    return FlameSource(samples, stacks, reqs, duration_s=10.0, rate_hz=100, label="before")


def candidate() -> FlameSource:
    """GET /list after a fix: half the query time, a cache lookup, no render; 4 requests.
    Stack ids differ from the baseline's on purpose: frames are matched by label."""
    stacks = pd.DataFrame(
        {
            "stack_id": [10, 11],
            "frames": [[MAIN, LIST, QUERY], [MAIN, LIST, CACHE]],
            "leaf": [QUERY, CACHE],
            "handler": "api:handle_list",
        }
    )
    samples = pd.DataFrame(
        {
            "ts_ns": [T0, T0 + 20_000_000],
            "end_ns": [T0 + 20_000_000, T0 + 40_000_000],
            "n_samples": [2, 2],
            "pid": 2,
            "thread_id": 9,
            "thread_name": "",
            "stack_id": [10, 11],
            "state": "cpu",
            "endpoint": "GET /list",
        }
    )
    reqs = requests(["GET /list"] * 4)
    return FlameSource(samples, stacks, reqs, duration_s=5.0, rate_hz=100, label="after")


def by_frame(frame: pd.DataFrame, *path: str) -> pd.Series:
    """The diff_frame row of the calling context ``path`` (root excluded)."""
    node = 0
    for name in path:
        match = frame[(frame["parent"] == node) & (frame["frame"] == name)]
        assert len(match) == 1, f"no single {name} under node {node}"
        node = int(match["node"].iloc[0])
    return frame[frame["node"] == node].iloc[0]


def test_normalised_per_request_of_the_endpoint():
    frame = diff_frame(baseline(), candidate(), endpoint="GET /list", short_paths=False)
    assert frame.attrs["per"] == "request"
    # baseline: 9 samples x 10 ms over 2 requests; candidate: 4 x 10 ms over 4 requests
    handler = by_frame(frame, MAIN, LIST)
    assert handler["baseline_ms"] == pytest.approx(45.0)
    assert handler["candidate_ms"] == pytest.approx(10.0)
    assert handler["delta_ms"] == pytest.approx(-35.0)
    query = by_frame(frame, MAIN, LIST, QUERY)
    assert (query["baseline_ms"], query["candidate_ms"]) == pytest.approx((25.0, 5.0))
    assert query["baseline_self_ms"] == pytest.approx(25.0)
    render = by_frame(frame, MAIN, LIST, RENDER)
    assert (render["baseline_ms"], render["candidate_ms"]) == pytest.approx((20.0, 0.0))
    cache = by_frame(frame, MAIN, LIST, CACHE)
    assert (cache["baseline_ms"], cache["candidate_ms"]) == pytest.approx((0.0, 5.0))
    root = frame[frame["node"] == 0].iloc[0]
    assert root["baseline_ms"] == pytest.approx(45.0)


def test_whole_capture_view_divides_by_all_requests():
    frame = diff_frame(baseline(), candidate(), short_paths=False)
    root = frame[frame["node"] == 0].iloc[0]
    assert root["baseline_ms"] == pytest.approx(24 * 10 / 4)  # 24 samples, 4 requests
    assert root["candidate_ms"] == pytest.approx(4 * 10 / 4)
    cpu = diff_frame(baseline(), candidate(), state="cpu")
    assert cpu[cpu["node"] == 0].iloc[0]["baseline_ms"] == pytest.approx(13 * 10 / 4)


def test_per_second_when_a_capture_has_no_requests():
    base, cand = baseline(), candidate()
    cand.requests = None
    frame = diff_frame(base, cand, endpoint="GET /list", short_paths=False)
    assert frame.attrs == {"per": "second", "unit": "ms per second"}
    handler = by_frame(frame, MAIN, LIST)
    assert handler["baseline_ms"] == pytest.approx(9 * 10 / 10.0)  # over 10 s
    assert handler["candidate_ms"] == pytest.approx(4 * 10 / 5.0)  # over 5 s
    with pytest.raises(DeskprofError, match="per='second'"):
        diff_frame(base, cand, per="request")
    with pytest.raises(DeskprofError, match="per must be one of"):
        diff_frame(base, cand, per="minute")
    with pytest.raises(DeskprofError, match="no samples for endpoint"):
        diff_frame(base, candidate(), endpoint="GET /nowhere")


def test_colours_red_for_more_blue_for_less_grey_for_same():
    assert change_colour(10.0, 10.0) == GREY
    assert change_colour(0.0, 0.0) == GREY
    assert change_colour(0.0, 5.0) == RED  # new in the candidate
    assert change_colour(20.0, 0.0) == BLUE  # gone
    assert change_colour(25.0, 5.0) == "rgb(78,118,222)"  # 80 % less
    assert change_colour(5.0, 10.0) == "rgb(226,136,136)"  # 50 % of the larger side
    frame = diff_frame(baseline(), candidate(), endpoint="GET /list", short_paths=False)
    assert by_frame(frame, MAIN, LIST, CACHE)["colour"] == RED
    assert by_frame(frame, MAIN, LIST, RENDER)["colour"] == BLUE
    assert by_frame(frame, MAIN, LIST, QUERY)["colour"] == "rgb(78,118,222)"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's JS")
def test_page_colours_frames_as_python_does():
    script = asset("deskprof-flame.js")
    body = re.search(r"  var NEUTRAL.*?\n  function changeColour.*?\n  }\n", script, re.S)
    assert body, "changeColour not found in deskprof-flame.js"
    cases = [(10, 10), (0, 0), (0, 5), (20, 0), (25, 5), (5, 10), (3.3, 7.1), (1e-3, 2e-3)]
    program = body.group(0) + f"console.log(JSON.stringify({json.dumps(cases)}.map("
    program += "function (c) { return changeColour(c[0], c[1]); })));"
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [change_colour(b, c) for b, c in cases]


def test_table_ranks_frames_by_change_and_counts_recursion_once():
    table = flame_diff_table(baseline(), candidate(), endpoint="GET /list", short_paths=False)
    assert table.attrs["per"] == "request"
    assert table["frame"].tolist()[:2] in ([MAIN, LIST], [LIST, MAIN])
    assert table["delta_ms"].abs().is_monotonic_decreasing
    row = table.set_index("frame").loc[RENDER]
    assert (row["baseline_ms"], row["candidate_ms"], row["change"]) == pytest.approx((20, 0, -1))
    assert pd.isna(table.set_index("frame").loc[CACHE, "change"])  # new: no relative change

    base = baseline()
    base.stacks.at[0, "frames"] = [MAIN, LIST, LIST, QUERY]  # recursion
    table = flame_diff_table(base, candidate(), endpoint="GET /list", short_paths=False, top=None)
    assert table.set_index("frame").loc[LIST, "baseline_ms"] == pytest.approx(45.0)
    assert len(flame_diff_table(baseline(), candidate(), top=2)) == 2


def test_diff_page_embeds_both_sides_and_the_factors():
    page = diff_flamegraph_html(baseline(), candidate(), title="before vs after")
    data = json.loads(re.search(r'id="fg-data">(.*?)</script>', page, re.S).group(1))
    assert data["mode"] == "diff" and data["per"] == "request"
    assert sum(data["rows"]["base"]) == 24 and sum(data["rows"]["cand"]) == 4
    i = data["endpoints"].index("GET /list")
    assert data["scale"]["base"]["endpoint"][i] == pytest.approx(10 / 2)
    assert data["scale"]["cand"]["endpoint"][i] == pytest.approx(10 / 4)
    assert data["scale"]["base"]["all"] == pytest.approx(10 / 4)
    assert "baseline before: 24 samples" in page and "4 vs 4 requests" in page
    assert 'class="fg-mode-diff"' in page and 'id="fg-shape-baseline"' in page
    assert diff_flamegraph(baseline(), candidate())._repr_html_().startswith("<iframe")
    with pytest.raises(DeskprofError, match="opened captures"):
        diff_flamegraph_html(baseline(), "not a capture")
