"""Trial windows: arrival times, warm-up tagging by intended start, control files."""

from __future__ import annotations

import itertools

import pytest

from deskprof.workloads.control import (
    READY,
    Window,
    done_path,
    pending_windows,
    read_window,
    write_done,
    write_ready,
    write_window,
)

S = 1_000_000_000


def test_arrivals_cover_warmup_and_measured_part_at_the_rate():
    window = Window("trial-003", start_ns=100 * S, warmup_s=1.0, seconds=4.0, rate=3.0)
    arrivals = window.arrivals()
    assert len(arrivals) == 15 and arrivals[0] == window.start_ns
    assert all(b - a in (S // 3, S // 3 + 1) for a, b in itertools.pairwise(arrivals))
    assert arrivals[-1] < window.end_ns == 105 * S
    assert Window("closed", 0, 0.0, 4.0, rate=0).arrivals() == []


def test_tag_by_intended_start_discards_the_warmup():
    window = Window("trial-003", start_ns=100 * S, warmup_s=1.0, seconds=4.0, rate=3.0)
    assert window.tag(100 * S) == {"window": "trial-003", "warmup": True}
    assert window.tag(101 * S - 1)["warmup"] is True
    assert window.tag(101 * S) == {"window": "trial-003", "warmup": False}
    assert window.tag(105 * S - 1)["warmup"] is False
    assert window.tag(105 * S) is None and window.tag(100 * S - 1) is None
    measured = [t for t in window.arrivals() if not window.tag(t)["warmup"]]
    assert len(measured) == 12  # 4 s at 3/s


def test_control_files_round_trip_in_order(tmp_path):
    first = Window("warmup-002", 5 * S, 1.0, 0.0, rate=2.0, drain_s=5.0)
    second = Window("trial-002", 6 * S, 0.0, 4.0, rate=2.0)
    write_ready(tmp_path, {"users": 1})
    write_window(tmp_path, first)
    write_window(tmp_path, second)
    found = pending_windows(tmp_path, set())
    assert [p.stem for p in found] == ["warmup-002", "trial-002"]
    assert read_window(found[0]) == first
    assert [p.stem for p in pending_windows(tmp_path, {"warmup-002"})] == ["trial-002"]
    assert (tmp_path / READY).is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, renamed into place
    write_done(tmp_path, "trial-002", {"abandoned": 0})
    assert done_path(tmp_path, "trial-002").is_file()


@pytest.mark.parametrize("seconds", [0.0, 2.5])
def test_windows_with_only_a_warmup_or_none(seconds):
    window = Window("w", 0, warmup_s=1.0, seconds=seconds, rate=2.0)
    tags = [window.tag(t) for t in window.arrivals()]
    assert sum(not t["warmup"] for t in tags) == int(seconds * 2)
