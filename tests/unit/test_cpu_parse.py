"""py-spy chrome traces → runs of one stack per thread, on the capture clock."""

from __future__ import annotations

import json

import pytest

from deskprof.bundle.stacks import StackTable
from deskprof.capturing.cpu import classify, load_events, parse_chrometrace
from deskprof.errors import DeskprofError


def _event(ph, name, ts, tid=0, filename="/app/x.py", line=1):
    return {"ph": ph, "name": name, "ts": ts, "pid": 7, "tid": tid,
            "args": {"filename": filename, "line": line}, "cat": "py-spy"}  # fmt: skip


TRACE = [
    {
        "ph": "M",
        "name": "thread_name",
        "pid": 7,
        "tid": 0,
        "ts": 0,
        "args": {"filename": "", "name": "140001: MainThread"},
    },
    _event("B", "<module>", 0),
    _event("B", "busy", 0),
    _event("E", "busy", 50_000),
    _event("B", "Condition.wait", 50_000, filename="/usr/lib/python3.11/threading.py"),
    _event("E", "Condition.wait", 80_000, filename="/usr/lib/python3.11/threading.py"),
    _event("E", "<module>", 80_000),
]


def test_runs_weights_clock_and_state():
    stacks = StackTable()
    frame = parse_chrometrace(TRACE, anchor_ns=1_000_000_000, rate_hz=100, stacks=stacks)
    assert list(frame["n_samples"]) == [5, 3]
    assert list(frame["state"]) == ["cpu", "wait"]
    assert frame.loc[0, "ts_ns"] == 1_000_000_000 and frame.loc[1, "end_ns"] == 1_080_000_000
    assert set(frame["thread_id"]) == {140001} and set(frame["thread_name"]) == {"MainThread"}
    table = stacks.to_frame().set_index("stack_id")
    assert list(table.loc[frame.loc[0, "stack_id"], "frames"]) == [
        "<module> (/app/x.py:1)",
        "busy (/app/x.py:1)",
    ]


@pytest.mark.parametrize(
    ("function", "filename", "state"),
    [
        ("select", "/usr/lib/python3.11/selectors.py", "wait"),
        ("EpollSelector.select", "/usr/lib/python3.11/selectors.py", "wait"),
        ("sleep", "/anything.py", "wait"),
        ("Connection.wait", "/venv/psycopg/connection.py", "wait"),
        ("Runner.run", "/usr/lib/python3.11/asyncio/runners.py", "wait"),
        ("due_time_loop", "/work/opendesk/sla.py", "cpu"),
        ("select", "/work/opendesk/tickets.py", "cpu"),
    ],
)
def test_leaf_classification(function, filename, state):
    assert classify(function, filename) == state


def test_truncated_trace_keeps_what_parses(tmp_path):
    path = tmp_path / "pyspy-7.json"
    text = json.dumps(TRACE)
    path.write_text(text[: text.rfind("{")])
    events, truncated = load_events(path)
    assert truncated and 0 < len(events) < len(TRACE)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(DeskprofError, match="empty"):
        load_events(tmp_path / "empty.json")
    (tmp_path / "junk.json").write_text("not json at all")
    with pytest.raises(DeskprofError, match="not a py-spy chrome trace"):
        load_events(tmp_path / "junk.json")
