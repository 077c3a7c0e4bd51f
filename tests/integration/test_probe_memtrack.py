"""memray.Tracker switched inside real processes by the probe's control file: start for
listed PIDs and for workers that begin serving, stop when withdrawn or at the deadline
(deskprof gone), and one status line when memray is missing. Real memray, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deskprof.bundle.stacks import StackTable
from deskprof.capturing.memory import QualnameIndex, read_capture
from deskprof.capturing.memory_inprocess import InProcessTracking
from deskprof.probe import memtrack

pytestmark = pytest.mark.integration

WORKER = """
import sys, time
{prelude}
from deskprof.probe.recorder import Recorder
recorder = Recorder(sys.argv[1], flush_interval=0.05)
if sys.argv[2] == "serving":
    recorder.mark_serving()
kept = []
def allocate_in_worker():
    kept.append(bytearray(64 * 1024))
    if len(kept) > 50:
        kept.clear()
print("ready", flush=True)
while True:
    allocate_in_worker()
    time.sleep(0.01)
"""


def _start(probe: Path, role: str = "listed", prelude: str = "") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(prelude=prelude), str(probe), role],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _status(out: Path, pid: int) -> dict:
    path = Path(memtrack.status_file(str(out), pid))
    return json.loads(path.read_text()) if path.exists() else {}


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    probe, out = tmp_path / "probe", tmp_path / "out"
    probe.mkdir()
    out.mkdir()
    return probe, out


def test_listed_and_new_workers_track_until_withdrawn(dirs):
    probe, out = dirs
    listed, serving, idle = _start(probe), _start(probe, "serving"), _start(probe, "idle")
    try:
        tracking = InProcessTracking(probe, out, "full", window_s=30)
        tracking.start([listed.pid])
        assert listed.pid in tracking.tracked and tracking.silent == []
        assert _wait(lambda: _status(out, serving.pid).get("state") == "tracking"), (
            "a worker that serves during the window is tracked too"
        )
        time.sleep(0.5)
        tracking.stop()
        assert {listed.pid, serving.pid} <= set(tracking.tracked)
        assert all(t.state == "stopped" for t in tracking.tracked.values())
        assert _status(out, idle.pid) == {}, "an unlisted process that serves nothing is left"
        for pid in (listed.pid, serving.pid):
            result = read_capture(
                Path(memtrack.output_file(str(out), pid)), pid, StackTable(), QualnameIndex(),
                time.time_ns(),
            )  # fmt: skip
            assert result.partial_reason is None
            assert len(result.memory) > 20, "snapshots every 10 ms"
            frames = result.allocations["stack_id"]
            assert len(frames) > 0
        assert listed.poll() is None and serving.poll() is None, "tracking never kills"
    finally:
        for proc in (listed, serving, idle):
            proc.kill()
            proc.wait()


def test_the_deadline_inside_the_target_ends_tracking_when_deskprof_is_gone(dirs):
    probe, out = dirs
    worker = _start(probe)
    try:
        request = {
            "session": "s1", "out_dir": str(out), "mode": "aggregate",
            "deadline_ns": time.time_ns() + 1_500_000_000, "pids": [worker.pid],
        }  # fmt: skip
        memtrack.write_json(str(probe / memtrack.REQUEST_FILE), request)
        assert _wait(lambda: _status(out, worker.pid).get("state") == "tracking")
        assert _wait(lambda: _status(out, worker.pid).get("state") == "stopped", 5)
        assert _status(out, worker.pid)["reason"] == "deadline"
        assert (probe / memtrack.REQUEST_FILE).exists(), "nobody withdrew the request"
        time.sleep(0.3)
        assert _status(out, worker.pid)["state"] == "stopped", "no second window"
        assert Path(memtrack.output_file(str(out), worker.pid)).stat().st_size > 0
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait()


def test_memray_missing_in_the_target_is_one_status_line(dirs):
    probe, out = dirs
    worker = _start(probe, prelude="sys.modules['memray'] = None")
    try:
        tracking = InProcessTracking(probe, out, "full", window_s=5)
        tracking.start([worker.pid])
        assert tracking.failed == {worker.pid: memtrack.NOT_IMPORTABLE}
        assert worker.poll() is None
        tracking.stop()
    finally:
        worker.kill()
        worker.wait()
