"""The sql source's pure parts: schema-exact frames, the window, attach-mode bookkeeping."""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

import pytest

from deskprof.bundle.schema import TABLES
from deskprof.bundle.writer import BundleWriter
from deskprof.capturing.probe_source import ProbeSource, in_window, records_frame
from deskprof.errors import DeskprofError
from deskprof.probe import control
from deskprof.probe.config import ENV_DIR


def _options(**overrides):
    values = {"keep_parameters": False, "launch_env": {}, "sources": ("sql",), "workload": None}
    return SimpleNamespace(**values | overrides)


def test_frames_have_exactly_the_schema_columns_and_dtypes():
    expected = {"int64": "int64", "string": "string", "bool": "bool", "list<int32>": "object"}
    for table in ("requests", "queries", "connections"):
        for records in ([], [{"pid": 3, "request_id": "r"}]):  # a record missing fields too
            frame = records_frame(table, records)
            assert list(frame.columns) == [c.name for c in TABLES[table]]
            for column in TABLES[table]:
                assert str(frame[column.name].dtype) == expected[column.dtype], column.name


def test_window_keeps_records_that_start_inside_it():
    records = [{"start_ns": t} for t in (5, 10, 15, 20, 25)]
    assert in_window(records, "queries", 10, 20) == records[1:4]
    assert in_window([{"ts_ns": 9}, {"ts_ns": 11}], "connections", 10, 20) == [{"ts_ns": 11}]


def test_a_target_without_a_probe_is_a_one_line_error(tmp_path):
    source = ProbeSource(_options())
    with pytest.raises(DeskprofError, match="deskprof run"):
        source.start(SimpleNamespace(environ={}), BundleWriter(tmp_path / "b"))
    assert source.collect(BundleWriter(tmp_path / "c"), {"start_ns": 0, "end_ns": 1}) == []


def test_launch_env_is_what_deskprof_run_sets(tmp_path):
    source = ProbeSource(_options(keep_parameters=True))
    env = source.launch_env(tmp_path / "raw")
    assert env[ENV_DIR] == str((tmp_path / "raw" / "probe").resolve())
    assert env["DESKPROF_PROBE_KEEP_PARAMS"] == "1"
    assert "probe" in env["PYTHONPATH"].split(os.pathsep)[0]
    assert source.mode == "launch"


def _write(path, records):
    with path.open("a") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


@pytest.mark.slow  # a few seconds: make test runs it, make test-fast does not
def test_attach_reads_only_the_window_switches_on_and_puts_the_switch_back(tmp_path):
    probe_dir = tmp_path / "target-probe"
    probe_dir.mkdir()
    control.set_state(probe_dir, "off")  # the target runs with the probe switched off
    old = probe_dir / "probe-41.jsonl"
    _write(old, [{"kind": "requests", "request_id": "before", "pid": 41, "start_ns": 1}])
    _write(old, [{"kind": "probe_stats", "pid": 41, "ts_ns": 1, "written": 1, "dropped": 2}])
    writer = BundleWriter(tmp_path / "bundle")
    source = ProbeSource(_options())
    source.start(SimpleNamespace(environ={ENV_DIR: str(probe_dir)}), writer)
    assert control.read_state(probe_dir) == "on"

    start_ns = time.time_ns()
    request = {"kind": "requests", "request_id": "inside", "pid": 41, "start_ns": start_ns + 1}
    query = {"kind": "queries", "query_id": "q", "request_id": "inside", "pid": 41}
    _write(old, [request, query | {"start_ns": start_ns + 2}])
    _write(probe_dir / "probe-42.jsonl", [{"kind": "queries", "pid": 42, "start_ns": 3}])
    end_ns = time.time_ns() + 10
    _write(old, [request | {"request_id": "after", "start_ns": end_ns + 5}])
    _write(old, [{"kind": "probe_stats", "pid": 41, "ts_ns": end_ns + 6, "written": 5,
                  "dropped": 3, "active": True}])  # fmt: skip
    source.stop()
    assert control.read_state(probe_dir) == "off"  # restored

    reasons = source.collect(writer, {"start_ns": start_ns, "end_ns": end_ns})
    assert reasons == []
    sql = writer.manifest["sources"]["sql"]
    assert sql["processes"]["41"]["dropped"] == 1  # 3 at the end minus 2 before
    assert sql["processes"]["41"]["written"] == 4
    assert sql["switch"]["restored"] and sql["switch"]["switched_on_for_capture"]
    assert any("dropped 1 records" in w for w in writer.manifest["warnings"])
    import pandas as pd

    requests = pd.read_parquet(writer.path / "requests.parquet")
    assert list(requests["request_id"]) == ["inside"]
    queries = pd.read_parquet(writer.path / "queries.parquet")
    assert list(queries["query_id"]) == ["q"]  # pid 42's query is before the window
    kept = (writer.raw / "probe" / "probe-41.jsonl").read_text()
    assert "inside" in kept and "before" not in kept and "after" not in kept
    assert "per_record_us" in writer.manifest["overhead"]["sql"]


def test_the_probe_cost_can_be_measured_inside_a_running_event_loop():
    """A notebook's kernel runs an event loop; the estimate must still measure there."""
    import asyncio
    import warnings

    from deskprof.probe.cost import measure

    async def inside() -> dict:
        return measure(n=50, repeats=2)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        cost = asyncio.run(inside())
    assert cost["request_us"] > 0
