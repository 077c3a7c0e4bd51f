"""Pure pieces of the capture: workload records, statement deltas, option checks."""

from __future__ import annotations

import json
import os
import time

import pytest

from deskprof.bundle.schema import TABLES, columns
from deskprof.capturing.services import ServiceStats, postgres_dsn
from deskprof.capturing.session import CaptureOptions
from deskprof.capturing.system import SystemSampler
from deskprof.capturing.workload import WorkloadSpec, read_workload
from deskprof.errors import DeskprofError


def test_read_workload_skips_a_torn_last_line(tmp_path):
    row = {c: 0 for c in columns("workload")} | {"name": "GET /tickets", "method": "GET"}
    row |= {"error": "", "user": "AgentUser", "request_id": "abc", "start_ns": 5}
    (tmp_path / "workload-1.jsonl").write_text(json.dumps(row) + "\n" + '{"name": "GET /tic')
    frame = read_workload(tmp_path)
    assert list(frame.columns) == columns("workload")
    assert len(frame) == 1 and frame.loc[0, "request_id"] == "abc"


def test_statement_deltas_only_count_the_window():
    stats = ServiceStats()
    stats.statements_start = {
        "1": ("SELECT 1", 10, 5.0, 10, 1, 0),
        "2": ("SELECT 2", 3, 1.0, 3, 0, 0),
    }
    stats.statements_end = {
        "1": ("SELECT 1", 15, 7.5, 15, 2, 1),
        "2": ("SELECT 2", 3, 1.0, 3, 0, 0),  # did not run during the capture
        "3": ("SELECT 3", 4, 2.0, 8, 0, 4),  # first seen during the capture
    }
    frame = stats.statements_frame().set_index("queryid")
    assert list(frame.index) == ["1", "3"]
    assert frame.loc["1", "calls"] == 5 and frame.loc["1", "total_exec_ms"] == pytest.approx(2.5)
    assert frame.loc["3", "rows"] == 8


def test_postgres_dsn_drops_the_driver():
    assert postgres_dsn("postgresql+psycopg://u@h:5/db") == "postgresql://u@h:5/db"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pids": [], "launch": None}, "either by --pid"),
        ({"pids": [1], "launch": "x"}, "either by --pid"),
        ({"pids": [1], "duration_s": 0}, "--duration"),
        ({"pids": [1], "url": "127.0.0.1:80"}, "http(s) URL"),
        ({"pids": [1], "sources": ("cpu", "disk")}, "unknown source(s): disk"),
    ],
)
def test_option_mistakes(kwargs, message):
    """The CLI's line names the flag; the library's own message names the keyword."""
    from deskprof.cli.capture import FLAGS
    from deskprof.cli.options import message as cli_message

    options = CaptureOptions(url=kwargs.pop("url", "http://127.0.0.1:8000"), **kwargs)
    with pytest.raises(DeskprofError) as raised:
        options.validate()
    assert message in cli_message(raised.value, FLAGS)
    assert "--" not in str(raised.value)


def test_workload_spec_checks():
    with pytest.raises(DeskprofError, match="neither a built-in scenario"):
        WorkloadSpec("no-such-file.py").validate("http://127.0.0.1:1")
    with pytest.raises(DeskprofError, match="loopback"):
        WorkloadSpec().validate("http://10.0.0.5:8000")
    WorkloadSpec(allow_remote=True).validate("http://10.0.0.5:8000")
    assert WorkloadSpec(rate=5).describe()["mode"] == "open"


def test_system_sampler_on_this_process():
    sampler = SystemSampler([os.getpid()], interval_s=0.05, include_children=False).start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(sampler.rows) < 5:
        sum(range(10_000))
    sampler.stop()
    frame = sampler.frame()
    assert len(frame) >= 3
    assert list(frame.columns) == columns("metrics")
    assert (frame["rss_bytes"] > 0).all() and frame["cpu_percent"].max() > 10


def test_schema_tables_have_unique_columns():
    for name, cols in TABLES.items():
        names = [c.name for c in cols]
        assert len(names) == len(set(names)), name


@pytest.mark.slow  # a few seconds: make test runs it, make test-fast does not
def test_a_bundle_of_50000_stacks_300_frames_deep_reads_back(tmp_path):
    """Depth and count do not limit a bundle: frames stored once, stacks as id lists."""
    from deskprof.bundle.reader import open_capture
    from deskprof.bundle.stacks import StackTable
    from deskprof.bundle.writer import BundleWriter

    shared = [f"frame_{n} (/srv/app/module_{n % 40}.py:{n})" for n in range(299)]
    table = StackTable()
    for n in range(50_000):
        table.intern((*shared, f"leaf_{n} (/srv/app/leaf.py:{n})"))
    writer = BundleWriter(tmp_path / "b")
    writer.write_stacks(table)
    writer.finish([])
    assert (tmp_path / "b" / "stacks.parquet").stat().st_size < 20 * 1024**2
    stacks = open_capture(tmp_path / "b").table("stacks")
    assert len(stacks) == 50_000
    assert stacks["frames"].map(len).eq(300).all()
    row = stacks.set_index("stack_id").loc[49_999]
    assert (
        row["frames"][0] == shared[0] and row["frames"][-1] == "leaf_49999 (/srv/app/leaf.py:49999)"
    )
    assert row["leaf"] == row["frames"][-1]


def test_a_version_1_bundle_is_read_through_the_migration(tmp_path):
    """Stacks stored as label lists (schema 1) still open, with the same frames."""
    import json

    import pandas as pd

    from deskprof.bundle.reader import open_capture
    from deskprof.bundle.writer import BundleWriter

    writer = BundleWriter(tmp_path / "b")
    frames = ["run (threading.py:1)", "handler (/srv/app/api.py:9)"]
    pd.DataFrame([dict(stack_id=0, frames=frames, leaf=frames[-1], handler="")]).to_parquet(
        tmp_path / "b" / "stacks.parquet", index=False
    )
    writer.manifest.counts["stacks"] = 1
    writer.finish([])
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    stacks = open_capture(tmp_path / "b").table("stacks")
    assert stacks["frames"].tolist() == [frames]


def test_an_unreadable_table_names_the_real_cause(tmp_path):
    from deskprof.bundle.reader import open_capture
    from deskprof.bundle.stacks import StackTable
    from deskprof.bundle.writer import BundleWriter
    from deskprof.errors import BundleError

    writer = BundleWriter(tmp_path / "b")
    table = StackTable()
    table.intern(("a (x.py:1)",))
    writer.write_stacks(table)
    writer.finish([])
    (tmp_path / "b" / "frames.parquet").unlink()
    with pytest.raises(BundleError, match=r"frames\.parquet is missing"):
        open_capture(tmp_path / "b")
