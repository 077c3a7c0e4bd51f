"""The generator's recorder: requests in flight are recorded once, as answered or abandoned."""

from __future__ import annotations

import json
import time
from pathlib import Path

from deskprof.workloads.client import Recorder


def _row(request_id: str, intended_ns: int, window: str | None = None) -> dict:
    row = {"request_id": request_id, "name": "GET /tickets", "intended_ns": intended_ns}
    row |= {"start_ns": intended_ns, "end_ns": intended_ns, "latency_ns": 0, "status": 0}
    row |= {"error": ""}
    return row if window is None else row | {"window": window}


def test_abandoned_requests_fail_now_with_latency_from_intended_start(tmp_path):
    recorder = Recorder(str(tmp_path))
    sent = time.time_ns() - 2_000_000_000
    recorder.begin(_row("a", sent))
    recorder.begin(_row("b", sent))
    recorder.finish(_row("a", sent) | {"status": 200, "end_ns": sent + 5, "latency_ns": 5})
    assert recorder.in_flight() == 1
    assert recorder.abandon("no response before the run ended") == 1
    recorder.finish(_row("b", sent) | {"status": 200})  # too late: already recorded
    recorder.flush()

    lines = Path(recorder.path).read_text().splitlines()
    rows = {r["request_id"]: r for r in map(json.loads, lines)}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["status"] == 200
    late = rows["b"]
    assert late["status"] == 0 and late["error"] == "no response before the run ended"
    assert late["latency_ns"] == late["end_ns"] - sent >= 2_000_000_000


def test_abandon_by_window_leaves_the_others(tmp_path):
    recorder = Recorder(str(tmp_path))
    recorder.begin(_row("a", 1, "trial-000"))
    recorder.begin(_row("b", 2, "trial-001"))
    assert recorder.in_flight("trial-000") == recorder.in_flight("trial-001") == 1
    assert recorder.abandon("late", window="trial-000") == 1
    assert recorder.in_flight() == 1 and recorder.in_flight("trial-000") == 0
    assert [r["request_id"] for r in recorder.rows] == ["a"]
