"""memray records → bundle rows: stack order and names, the clock, row building, errors."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest

from deskprof.bundle.schema import columns
from deskprof.bundle.stacks import StackTable
from deskprof.capturing.memory import (
    SAFETY_MARGIN_S,
    QualnameIndex,
    aggregate_rows,
    allocator_name,
    attach_command,
    attach_error,
    completeness,
    frame_labels,
    snapshot_frame,
    temporal_rows,
)
from deskprof.capturing.target import url_port
from deskprof.errors import DeskprofError, NoSuchProcess, PermissionDenied, ToolMissing

MODULE = textwrap.dedent(
    """\
    class Tickets:
        def list(self):
            return [0] * 10


    class Articles:
        def list(self):
            return []


    def outer():
        def inner():
            return 1

        return inner()
    """
)


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(MODULE)
    return str(path)


def test_qualified_names_come_from_the_source_by_line(module):
    names = QualnameIndex()
    assert names.qualname(module, "list", 3) == "Tickets.list"
    assert names.qualname(module, "list", 8) == "Articles.list"
    assert names.qualname(module, "inner", 13) == "outer.<locals>.inner"
    assert names.qualname(module, "<module>", 1) == "<module>"


def test_unreadable_sources_keep_memrays_name(module):
    names = QualnameIndex()
    assert names.qualname("<string>", "<module>", 1) == "<module>"
    assert names.qualname("/no/such/file.py", "handler", 3) == "handler"
    # a line no code object of that name covers, with two candidates: ambiguous
    assert names.qualname(module, "list", 99) == "list"


def test_frozen_modules_are_named_from_this_interpreter():
    import importlib._bootstrap_external as external

    line = external._LoaderBasics.exec_module.__code__.co_firstlineno + 2
    names = QualnameIndex()
    frozen = "<frozen importlib._bootstrap_external>"
    assert names.qualname(frozen, "exec_module", line) == "_LoaderBasics.exec_module"
    assert names.qualname("<frozen no_such_module>", "f", 1) == "f"


def test_frames_are_reversed_to_root_first_in_the_cpu_format(module):
    trace = [("list", module, 3), ("<module>", module, 1)]  # memray: innermost first
    labels = frame_labels(trace, QualnameIndex())
    assert labels == (f"<module> ({module}:1)", f"Tickets.list ({module}:3)")
    stacks = StackTable()
    cpu_id = stacks.intern(labels)  # what py-spy would have produced for the same stack
    assert stacks.intern(frame_labels(trace, QualnameIndex())) == cpu_id
    assert stacks.to_frame().loc[0, "leaf"] == f"Tickets.list ({module}:3)"


def test_snapshots_epoch_ms_become_epoch_ns():
    snaps = [SimpleNamespace(time=1_795_559_777_219, rss=90_000_000, heap=0)]
    frame = snapshot_frame(42, snaps)
    assert list(frame.columns) == columns("memory")
    assert frame.loc[0, "ts_ns"] == 1_795_559_777_219_000_000
    assert set(frame.dtypes.astype(str)) == {"int64"}
    assert snapshot_frame(42, []).empty


def _record(allocator, size=0, n=0, intervals=()):
    return SimpleNamespace(
        allocator=allocator, size=size, n_allocations=n, intervals=list(intervals)
    )


def test_aggregate_rows_carry_kind_allocator_and_capture_end():
    rows = aggregate_rows(7, "high_water_mark", [_record(6, 4096, 3), _record(14, 1 << 20, 1)],
                          lambda record: 5, at_ns=123)  # fmt: skip
    assert rows == [
        (7, "high_water_mark", 123, 123, 5, "malloc", 4096, 3),
        (7, "high_water_mark", 123, 123, 5, "mmap", 1 << 20, 1),
    ]
    assert allocator_name(2) == "pymalloc_malloc" and allocator_name(999) == "999"


def _interval(a, d, n, size):
    return SimpleNamespace(
        allocated_before_snapshot=a, deallocated_before_snapshot=d, n_allocations=n, n_bytes=size
    )


def test_temporal_rows_are_aligned_on_snapshots_and_rebuild_the_heap():
    snapshot_ns = [100, 110, 120, 130]
    heap = [0, 64, 96, 32]  # what memray's snapshots would say for the intervals below
    intervals = [
        _interval(1, 3, 1, 64),  # live at snapshots 1 and 2
        _interval(2, None, 2, 32),  # from snapshot 2, never freed
        _interval(4, None, 1, 8),  # after the last snapshot: never seen live
    ]
    rows = temporal_rows(9, [_record(6, intervals=intervals)], lambda r: 1, snapshot_ns,
                         tracking_end_ns=135, end_ns=200)  # fmt: skip
    assert rows == [
        (9, "temporal", 110, 130, 1, "malloc", 64, 1),
        (9, "temporal", 120, 200, 1, "malloc", 32, 2),
        (9, "temporal", 135, 200, 1, "malloc", 8, 1),
    ]
    for t, expected in zip(snapshot_ns, heap, strict=True):
        assert sum(size for _, _, ts, end, _, _, size, _ in rows if ts <= t < end) == expected


@pytest.mark.parametrize(
    ("start", "end", "snaps", "expected"),
    [
        (1000, 5010, [1000, 3000, 5000], None),
        (1000, 1001, [1000, 3000], "did not finish"),  # header never rewritten: killed
        (1000, 9000, [1000, 2000], "cut short 7.0s"),
        (1000, 2400, [1000, 2000], None),  # a late last snapshot is not a cut,
        (1000, 2000, [], "no memory snapshots"),
    ],
)
def test_completeness_from_header_times_and_snapshots(start, end, snaps, expected):
    reason = completeness(start, end, snaps)
    assert reason is None if expected is None else expected in reason


def test_attach_command_per_mode():
    full = attach_command("memray", 12, "/b/raw/memray-12.bin", "full", window_s=6.5)
    assert full[:2] == ["memray", "attach"] and full[-1] == "12"
    assert "--aggregate" not in full and "--native" not in full and "--no-compress" in full
    assert full[full.index("--duration") + 1] == str(7 + SAFETY_MARGIN_S)
    assert "--aggregate" in attach_command("memray", 12, "/o.bin", "aggregate", 6)
    with pytest.raises(DeskprofError, match="--memory-mode"):
        attach_command("memray", 12, "/o.bin", "sampled", 6)


@pytest.mark.parametrize(
    ("output", "kind", "words"),
    [
        ("Failed to attach a debugger to the process.\nYou most likely do not have "
         "permission to trace the process.", PermissionDenied, "CAP_SYS_PTRACE"),
        ("Failed to attach a debugger to the process.\nThe given process ID does not exist.",
         NoSuchProcess, "no process with PID 12"),
        ("Cannot find a supported gdb executable.", ToolMissing, "apt-get install gdb"),
        ("Failed to start tracking in remote process: ModuleNotFoundError: No module named "
         "'memray'", ToolMissing, "install memray"),
        ("something new\nsegfault in the injector", DeskprofError, "segfault in the injector"),
    ],
)  # fmt: skip
def test_attach_errors_are_one_line_with_what_to_do(output, kind, words):
    error = attach_error(12, output)
    assert type(error) is kind and words in str(error) and "\n" not in str(error)


def test_url_port():
    assert url_port("http://127.0.0.1:8000/") == 8000
    assert url_port("https://staging.example") == 443
    assert url_port("http://127.0.0.1:notaport") is None
