"""The recorder's bounds, drop counting, stats lines and run-time switch; the reader."""

from __future__ import annotations

import json
import os

import pytest

from deskprof.errors import BundleError
from deskprof.probe import control
from deskprof.probe.reader import (
    file_offsets,
    file_pid,
    last_stats_before,
    probe_stats,
    read_probe_dir,
)
from deskprof.probe.recorder import Recorder


def _query(n: int) -> dict:
    return {"kind": "queries", "query_id": str(n), "statement": "SELECT 1", "start_ns": n}


def _lines(recorder: Recorder) -> list[dict]:
    with open(recorder.path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_records_beyond_the_buffer_are_counted_as_dropped(tmp_path):
    recorder = Recorder(tmp_path, max_records=5, start=False)
    for n in range(8):
        recorder.emit(_query(n))
    recorder.close()
    lines = _lines(recorder)
    assert [r["query_id"] for r in lines if r["kind"] == "queries"] == ["0", "1", "2", "3", "4"]
    stats = lines[-1]
    assert stats["kind"] == "probe_stats" and stats["pid"] == os.getpid()
    assert (stats["written"], stats["dropped"], stats["errors"]) == (5, 3, 0)


def test_the_file_cap_drops_and_counts_instead_of_growing(tmp_path):
    line_size = len(json.dumps(_query(0), separators=(",", ":"))) + 1
    recorder = Recorder(tmp_path, max_bytes=3 * line_size, start=False)
    for n in range(6):
        recorder.emit(_query(n))
    recorder.flush()
    recorder.close()
    stats = probe_stats(tmp_path)[os.getpid()]
    assert stats["written"] + stats["dropped"] == 6
    assert 1 <= stats["written"] <= 3 and stats["dropped"] >= 3


def test_a_process_that_recorded_nothing_leaves_no_file(tmp_path):
    Recorder(tmp_path, start=False).close()
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_directory_is_counted_never_raised(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    recorder = Recorder(blocker, start=False)
    recorder.emit(_query(1))
    recorder.flush()  # must not raise
    stats = recorder.stats()
    assert stats["dropped"] == 1 and stats["errors"] >= 1 and stats["written"] == 0
    recorder.close()


def test_control_files_switch_every_recorder_of_the_directory(tmp_path):
    recorder = Recorder(tmp_path, start=False)
    assert recorder.active
    control.set_state(tmp_path, "off")
    recorder.poll_control()
    assert not recorder.active
    recorder.enable()  # the control file wins over the process's own setting
    assert not recorder.active
    control.set_state(tmp_path, "on")
    recorder.poll_control()
    assert recorder.active
    control.set_state(tmp_path, None)
    recorder.disable()
    recorder.poll_control()
    assert not recorder.active  # no control file: back to the process's own setting
    recorder.close()
    assert not recorder.active


def test_off_wins_when_both_control_files_exist(tmp_path):
    (tmp_path / control.ON_FILE).touch()
    (tmp_path / control.OFF_FILE).touch()
    assert control.read_state(tmp_path) == "off"
    control.set_state(tmp_path, "on")
    assert control.read_state(tmp_path) == "on"
    assert not (tmp_path / control.OFF_FILE).exists()
    assert control.read_state(tmp_path / "absent") is None


def test_ids_are_unique_and_carry_the_pid(tmp_path):
    recorder = Recorder(tmp_path, start=False)
    ids = {recorder.next_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith(f"{os.getpid():x}-") for i in ids)
    recorder.close()


def test_reader_skips_torn_and_foreign_lines_and_reports_them(tmp_path):
    good = json.dumps({"kind": "requests", "request_id": "r1", "pid": 7})
    stats = json.dumps({"kind": "probe_stats", "pid": 7, "written": 1, "dropped": 0})
    (tmp_path / "probe-7.jsonl").write_text(
        f"{good}\nnot json\n[1, 2]\n{json.dumps({'kind': 'weird'})}\n{stats}\n"
        '{"kind": "queries", "query_id": "q'  # killed mid-write: no newline
    )
    (tmp_path / "unrelated.jsonl").write_text("ignored\n")
    read = read_probe_dir(tmp_path)
    assert [r["request_id"] for r in read["requests"]] == ["r1"]
    assert read["queries"] == [] and read["connections"] == []
    assert [m["line"] for m in read["malformed"]] == [2, 3, 4, 6]
    assert read["probe_stats"][0]["written"] == 1


def test_reader_starts_at_offsets_and_finds_the_stats_before_them(tmp_path):
    path = tmp_path / "probe-9.jsonl"
    before = [_query(1), {"kind": "probe_stats", "pid": 9, "written": 1, "dropped": 2}]
    path.write_text("".join(json.dumps(r) + "\n" for r in before))
    offsets = file_offsets(tmp_path)
    assert offsets == {"probe-9.jsonl": path.stat().st_size}
    with path.open("a") as handle:
        handle.write(json.dumps(_query(2)) + "\n")
    read = read_probe_dir(tmp_path, offsets)
    assert [r["query_id"] for r in read["queries"]] == ["2"]
    assert last_stats_before(path, offsets["probe-9.jsonl"])["dropped"] == 2
    assert last_stats_before(path, 0) is None
    assert file_pid(path) == 9 and file_pid(tmp_path / "probe-x.jsonl") is None


def test_reader_says_when_there_is_no_directory(tmp_path):
    with pytest.raises(BundleError, match="no probe output directory"):
        read_probe_dir(tmp_path / "nope")


def test_a_full_disk_is_counted_and_shown_and_a_torn_line_is_never_data(tmp_path, monkeypatch):
    """ENOSPC part-way through a write: the batch counts as dropped, the error is in the
    side stats file that `probe status` reads, and the half line written is malformed,
    not a record, while the next write starts on a line of its own."""
    import errno

    from deskprof.probe import recorder as module

    recorder = Recorder(tmp_path, start=False)
    recorder.emit(_query(1))
    recorder.flush(final=True)
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # half a line lands
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(module.os, "write", full_disk)
    for n in (2, 3, 4):  # 2 and 3 in one batch, 4 in a batch on the full disk
        recorder.emit(_query(n))
        if n != 2:
            recorder.flush(final=True)
    monkeypatch.setattr(module.os, "write", real_write)
    stats = probe_stats(tmp_path)[os.getpid()]
    assert stats["errors"] >= 2 and stats["dropped"] >= 1, stats
    recorder.emit(_query(5))
    recorder.flush(final=True)
    recorder.close()
    read = read_probe_dir(tmp_path)
    ids = [r["query_id"] for r in read["queries"]]
    final = probe_stats(tmp_path)[os.getpid()]
    assert ids[0] == "1" and ids[-1] == "5" and "4" not in ids
    assert len(ids) == final["written"], "what is counted written is what can be read"
    assert final["written"] + final["dropped"] == 5
    assert len(read["malformed"]) == 1, "the half line, never a record"
