"""py-spy chrome traces → runs of one stack per thread, on the capture clock."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deskprof.bundle.stacks import StackTable
from deskprof.capturing.cpu import apply_os_state, classify, load_events, parse_chrometrace
from deskprof.capturing.thread_cpu import ThreadCpuSampler, active_shares
from deskprof.errors import DeskprofError


def _event(ph, name, ts, tid=140001, filename="/app/x.py", line=1):
    return {"ph": ph, "name": name, "ts": ts, "pid": 7, "tid": tid,
            "args": {"filename": filename, "line": line}, "cat": "py-spy"}  # fmt: skip


# as py-spy 0.4 writes it with --threads: tid is the pthread id, and the root of every
# stack is a pseudo-frame naming the native thread id and the thread's name
TRACE = [
    _event("B", "thread (4242): MainThread", 0, filename="", line=0),
    _event("B", "<module>", 0),
    _event("B", "busy", 0),
    _event("E", "busy", 50_000),
    _event("B", "Condition.wait", 50_000, filename="/usr/lib/python3.11/threading.py"),
    _event("E", "Condition.wait", 80_000, filename="/usr/lib/python3.11/threading.py"),
    _event("E", "<module>", 80_000),
    _event("E", "thread (4242): MainThread", 80_000, filename="", line=0),
]


def test_runs_weights_clock_and_state():
    stacks = StackTable()
    frame = parse_chrometrace(TRACE, anchor_ns=1_000_000_000, rate_hz=100, stacks=stacks)
    assert list(frame["n_samples"]) == [5, 3]
    assert list(frame["state"]) == ["cpu", "wait"]
    assert frame.loc[0, "ts_ns"] == 1_000_000_000 and frame.loc[1, "end_ns"] == 1_080_000_000
    assert set(frame["thread_id"]) == {140001} and set(frame["thread_name"]) == {"MainThread"}
    assert set(frame["native_thread_id"]) == {4242} and set(frame["state_from"]) == {"leaf"}
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


def _runs(*rows):
    """Runs of ``(native tid, start ms, end ms, leaf state)`` on pid 7."""
    return pd.DataFrame(
        [
            {"pid": 7, "native_thread_id": tid, "ts_ns": a * 10**6, "end_ns": b * 10**6,
             "n_samples": max(1, (b - a) // 10), "state": state}
            for tid, a, b, state in rows
        ]
    )  # fmt: skip


def _series(*rows):
    """Kernel readings ``(native tid, ms, active ms so far[, on-CPU ms so far])`` on pid
    7; on-CPU defaults to all of the active time."""
    return pd.DataFrame(
        [{"pid": 7, "native_thread_id": r[0], "ts_ns": r[1] * 10**6,
          "active_ns": r[2] * 10**6, "cpu_ns": (r[3] if len(r) > 3 else r[2]) * 10**6}
         for r in rows]
    )  # fmt: skip


def test_the_kernel_decides_a_thread_idle_in_c_is_waiting():
    samples = _runs(
        (1, 0, 100, "cpu"),  # a busy loop: its thread was active all along
        (2, 0, 100, "cpu"),  # a leaf that blocks in C (select.select from app code)
        (1, 100, 140, "wait"),  # a known blocking leaf stays waiting on a busy thread
        (3, 0, 100, "cpu"),  # no kernel readings for this thread: the leaf rule stays
    )
    series = _series((1, 0, 0), (1, 200, 200), (2, 0, 5), (2, 200, 5))
    out = apply_os_state(samples, series)
    assert list(out["state"]) == ["cpu", "wait", "wait", "cpu"]
    assert list(out["state_from"]) == ["os", "os", "os", "leaf"]
    assert out["active_share"].round(3).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert out.loc[0, "cpu_ns"] == 100 * 10**6 and out.loc[1, "cpu_ns"] == 0


def test_on_a_crowded_host_cpu_time_is_what_the_thread_ran_not_its_samples():
    """Busy the whole run, but on a CPU a third of it (runnable the rest): it is on-CPU
    work for the flame graph, and a third of its samples' worth of CPU time."""
    from deskprof.analysis.cpu_time import cpu_weight

    samples = _runs((1, 0, 300, "cpu"), (2, 0, 300, "cpu"))
    series = _series((1, 0, 0, 0), (1, 300, 300, 100))
    out = apply_os_state(samples, series)
    assert list(out["state"]) == ["cpu", "cpu"]
    assert out.loc[0, "cpu_ns"] == 100 * 10**6
    assert cpu_weight(out).tolist() == pytest.approx([10.0, 30.0])  # leaf-decided: all 30


def test_a_short_burst_gets_its_intervals_cpu_not_a_share_of_its_run():
    """A 5 ms handler step seen by one sample (a 10 ms run), the next sample idle, one
    20 ms reading around both: the 5 ms are the busy run's, none the idle run's."""
    samples = _runs((1, 0, 10, "cpu"), (1, 10, 20, "wait"))
    series = _series((1, 0, 0), (1, 20, 5))
    out = apply_os_state(samples, series)
    assert list(out["state"]) == ["cpu", "wait"]
    assert out["cpu_ns"].tolist() == [5 * 10**6, 0]


def test_active_share_uses_the_covered_part_of_a_run_and_interpolates():
    samples = _runs((1, 0, 100, "cpu"), (1, 150, 250, "cpu"), (1, 400, 500, "cpu"))
    # readings from 50 ms: active 50→100 ms, idle 100→300 ms
    series = _series((1, 50, 0), (1, 100, 50), (1, 300, 50))
    shares = active_shares(samples, series)
    assert shares[0] == pytest.approx(1.0)  # only 50-100 ms is covered, all of it active
    assert shares[1] == pytest.approx(0.0)
    assert np.isnan(shares[2])  # after the last reading


def test_sampler_keeps_steps_not_every_idle_reading(monkeypatch):
    import deskprof.capturing.thread_cpu as module

    readings = iter([{5: (100, 0)}, {5: (100, 0)}, {5: (100, 0)}, {5: (400, 5)}, {5: (400, 5)}])
    monkeypatch.setattr(module, "read_thread_cpu_ns", lambda pid: next(readings))
    sampler = ThreadCpuSampler()
    sampler.add(7)
    for _ in range(5):
        sampler._read_all()
    kept = sampler.series()["cpu_ns"].tolist()
    # first reading, the last idle one before the step, the step; the idle tail dropped
    assert kept == [100, 100, 400]
