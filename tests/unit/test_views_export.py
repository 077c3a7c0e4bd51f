"""speedscope export validates against the published schema; Chrome trace is well formed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deskprof.errors import DeskprofError
from deskprof.views import chrome_trace_events, speedscope_document, to_chrome_trace, to_speedscope
from tests.unit.test_views_flametree import MAIN, T0, ten_row_capture

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = Path(__file__).parents[1] / "fixtures" / "speedscope" / "file-format-schema.json"
MS = 1_000_000


def validate(document: dict) -> None:
    jsonschema.Draft6Validator(json.loads(SCHEMA.read_text())).validate(document)


def test_speedscope_file_validates_and_keeps_time_order_and_weights(tmp_path):
    samples, stacks = ten_row_capture()
    path = to_speedscope(samples.iloc[::-1], stacks, tmp_path / "cap.speedscope.json", rate_hz=100)
    document = json.loads(path.read_text())
    validate(document)
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    (profile,) = document["profiles"]
    assert profile["type"] == "sampled" and profile["unit"] == "milliseconds"
    assert profile["name"] == "pid 1 · MainThread 7"
    assert sum(profile["weights"]) == pytest.approx(240.0) == profile["endValue"]
    frames = document["shared"]["frames"]
    first = [frames[i] for i in profile["samples"][0]]  # root first, earliest run first
    assert [f["name"] for f in first] == ["main", "handle_list", "query"]
    assert first[0] == {"name": "main", "file": "/srv/app.py", "line": 1}
    assert profile["weights"][:3] == [30.0, 20.0, 10.0]


def test_speedscope_by_endpoint_opens_the_heaviest_first():
    samples, stacks = ten_row_capture()
    document = speedscope_document(samples, stacks, group_by="endpoint")
    validate(document)
    names = [p["name"] for p in document["profiles"]]
    assert names == ["(outside requests)", "GET /item", "GET /list"]
    weights = {p["name"]: sum(p["weights"]) for p in document["profiles"]}
    assert weights == pytest.approx({"(outside requests)": 80, "GET /item": 70, "GET /list": 90})
    assert names[document["activeProfileIndex"]] == "GET /list"
    with pytest.raises(DeskprofError, match="group_by"):
        speedscope_document(samples, stacks, group_by="request")


def async_requests() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two requests overlapping on one event-loop thread, their SQL on a worker thread."""
    requests = pd.DataFrame(
        {
            "request_id": ["a", "b"],
            "pid": 1,
            "thread_id": 7,
            "native_thread_id": 1001,
            "method": "GET",
            "route": ["/list", "/item"],
            "handler": ["api:list", "api:item"],
            "status": [200, 500],
            "start_ns": [T0, T0 + 20 * MS],
            "end_ns": [T0 + 50 * MS, T0 + 80 * MS],
            "duration_ns": [50 * MS, 60 * MS],
            "error": ["", "ValueError"],
        }
    )
    queries = pd.DataFrame(
        {
            "query_id": ["q1", "q2"],
            "request_id": ["a", "b"],
            "pid": 1,
            "thread_id": 8,
            "start_ns": [T0 + 5 * MS, T0 + 30 * MS],
            "duration_ns": [3 * MS, 4 * MS],
            "statement": ["SELECT * FROM t WHERE id = ?", "SELECT 1"],
            "parameters": ['["int"]', "[]"],
            "rowcount": [1, 1],
            "executemany": False,
            "call_site": ["api.py:10", "api.py:20"],
            "call_function": ["list", "item"],
            "connection_id": 5,
            "error": "",
        }
    )
    return requests, queries


def assert_well_formed(events: list[dict]) -> None:
    meta = [e for e in events if e["ph"] == "M"]
    slices = [e for e in events if e["ph"] != "M"]
    assert events[: len(meta)] == meta  # metadata first
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in slices)
    starts = [e["ts"] for e in slices]
    assert starts == sorted(starts)
    open_by_track: dict[tuple, list[float]] = {}
    for e in slices:  # on each track a slice ends before, or inside, the one open
        stack = open_by_track.setdefault((e["pid"], e["tid"]), [])
        while stack and stack[-1] <= e["ts"] + 1e-6:
            stack.pop()
        assert not stack or e["ts"] + e["dur"] <= stack[-1] + 1e-6, e
        stack.append(e["ts"] + e["dur"])
    named = {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in slices} <= named


def test_chrome_trace_puts_overlapping_requests_on_lanes_and_sql_on_its_thread(tmp_path):
    requests, queries = async_requests()
    path = to_chrome_trace(requests, queries, None, None, tmp_path / "trace.json")
    document = json.loads(path.read_text())
    events = document["traceEvents"]
    assert_well_formed(events)
    assert document["otherData"]["start_ns"] == str(T0)
    by_name = {e["name"]: e for e in events if e["ph"] == "X"}
    first, second = by_name["GET /list"], by_name["GET /item"]
    assert (first["ts"], first["dur"]) == (0.0, 50_000.0)  # microseconds since start
    assert first["tid"] == 1001  # the OS thread id, not the 64-bit ident
    assert second["tid"] != first["tid"]  # overlapping: its own lane
    assert second["args"] == {
        "request_id": "b",
        "status": 500,
        "handler": "api:item",
        "error": "ValueError",
    }
    sql = by_name["SELECT * FROM t WHERE id = ?"]
    assert sql["cat"] == "sql" and sql["ts"] == 5000.0 and sql["dur"] == 3000.0
    assert "parameters" not in sql["args"] and sql["args"]["call_site"] == "api.py:10"
    names = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert "thread 7 · concurrent lane 1" in names


def test_chrome_trace_draws_sampled_stacks_as_a_flame_chart():
    samples, stacks = ten_row_capture()
    requests, queries = async_requests()
    events, start = chrome_trace_events(requests, queries, samples, stacks)
    assert start == T0
    assert_well_formed(events)
    frames = [e for e in events if e.get("cat") == "stack"]
    main = [e for e in frames if e["name"] == MAIN]
    assert len(main) == 1 and main[0]["dur"] == 240_000.0  # contiguous runs: one slice
    lists = [e for e in frames if e["name"].startswith("handle_list")]
    assert [(e["ts"], e["dur"]) for e in lists] == [(0.0, 60_000.0), (170_000.0, 30_000.0)]
    assert {e["tid"] for e in frames}.isdisjoint(
        {e["tid"] for e in events if e.get("cat") == "request"}
    )
    with pytest.raises(DeskprofError, match="nothing to export"):
        chrome_trace_events(requests.iloc[:0], queries.iloc[:0])
