"""One long-lived Locust process driven by trial windows (the experiment runner's mode).

The target is a tiny local HTTP server with a delay we can change, so the test checks
the generator alone: one process serves several windows, records carry their window,
the warm-up at a window's start is left out by intended start, nothing is sent between
windows, and a request still unanswered ``drain_s`` after its window is recorded as a
failure before the window is declared done.
"""

from __future__ import annotations

import time

import pytest

from deskprof.capturing.workload import ControlledLoad, WorkloadSpec, read_workload
from deskprof.workloads.control import LATE
from tests.integration.test_workload_inflight import _slow_server

pytestmark = [pytest.mark.integration]


@pytest.fixture
def server():
    delay = {"s": 0.05}
    url, release, httpd = _slow_server(delay)
    yield url, delay
    release.set()
    httpd.shutdown()
    httpd.server_close()


def test_open_loop_windows_in_one_process(server, tmp_path):
    url, delay = server
    load = ControlledLoad(WorkloadSpec("ticket_list", rate=10), url, tmp_path, drain_s=1.0)
    load.start(timeout_s=60)
    try:
        pid = load.run.process.pid
        first = load.window("trial-000", 1.0, warmup_s=0.5)
        load.wait_done(first)
        measured = load.records(first)
        idle_from = time.time_ns()
        time.sleep(0.5)
        delay["s"] = 3.0  # answers now come after the drain
        second = load.window("trial-001", 0.5)
        load.wait_done(second)
        late = load.records(second)
        assert load.running() and load.run.process.pid == pid
    finally:
        load.stop()

    assert len(measured) == 10, measured
    assert (measured["status"] == 200).all()
    assert measured["intended_ns"].min() >= first.measure_start_ns
    assert measured["intended_ns"].max() < first.end_ns
    assert (measured["latency_ns"] >= 0.05e9).all()
    assert (
        len(late) == 5
        and (late["status"] == 0).all()
        and (late["error"] == LATE.format(drain_s=1.0)).all()
    )
    everything = read_workload(tmp_path)
    sent_between = everything[
        (everything["intended_ns"] > first.end_ns) & (everything["intended_ns"] < idle_from)
    ]
    assert sent_between.empty
    lists = everything[everything["name"] == "GET /tickets"]
    assert len(lists) == 15 + 5  # 1.5 s + 0.5 s at 10/s, each recorded once
    assert lists["request_id"].is_unique


def test_closed_loop_users_send_only_inside_windows(server, tmp_path):
    url, _delay = server
    spec = WorkloadSpec("ticket_list", users=2)
    load = ControlledLoad(spec, url, tmp_path, drain_s=2.0).start(timeout_s=60)
    try:
        time.sleep(0.5)
        window = load.window("trial-000", 1.0)
        load.wait_done(window)
        measured = load.records(window)
    finally:
        load.stop()
    assert len(measured) > 5 and (measured["status"] == 200).all()
    assert set(measured["user"]) == {"TicketListUser"}
    lists = read_workload(tmp_path).query("name == 'GET /tickets'")
    assert lists["start_ns"].min() >= window.start_ns
    assert lists["start_ns"].max() < window.end_ns
