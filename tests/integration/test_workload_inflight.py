"""Requests still waiting when the load generator stops are recorded, not lost.

A tiny local HTTP server answers the log-in at once and holds every ticket list for a
set delay. Held past the stop grace, every list request of a 2 s open-loop run is still
in flight when Locust quits: they must reach the workload table as failures ending at
the quit, with latency from the intended start, and count as errors in the summary.
Held less than the grace, the last arrivals are waited for and recorded as answered.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deskprof.capturing.workload import WorkloadRun, WorkloadSpec, read_workload
from deskprof.experiment.measure import ALL, summarize_trial

pytestmark = [pytest.mark.integration]


def _slow_server(delay_s: float | dict):
    """(url, release event, server); ``delay_s`` may be a dict {"s": seconds} to change
    the delay while the server runs."""
    release = threading.Event()
    delay = delay_s if isinstance(delay_s, dict) else {"s": delay_s}

    class Handler(BaseHTTPRequestHandler):
        def _json(self, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._json({"token": "t"})

        def do_GET(self) -> None:
            release.wait(delay["s"])
            self._json({"items": [], "total": 0})

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_address[1]}", release, server


@pytest.fixture
def slow_server(request):
    url, release, server = _slow_server(request.param)
    yield url
    release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("slow_server", [0.8], indirect=True)
def test_last_arrivals_are_waited_for_within_the_stop_grace(slow_server, tmp_path):
    run = WorkloadRun(WorkloadSpec("ticket_list", rate=4), slow_server, 2, tmp_path).start()
    run.wait(60)
    lists = read_workload(tmp_path).query("name == 'GET /tickets'")
    assert len(lists) >= 4, (tmp_path / "locust.log").read_text()
    assert (lists["status"] == 200).all(), lists["error"].unique()
    assert lists["latency_ns"].min() >= 0.8e9


@pytest.mark.parametrize("slow_server", [30.0], indirect=True)
def test_requests_in_flight_at_the_end_are_recorded_as_errors(slow_server, tmp_path):
    run = WorkloadRun(WorkloadSpec("ticket_list", rate=4), slow_server, 2, tmp_path)
    run.extra_env["DESKPROF_STOP_GRACE_S"] = "1"
    run.start()
    run.wait(60)
    quit_ns = time.time_ns()
    records = read_workload(tmp_path)

    lists = records[records["name"] == "GET /tickets"]
    assert len(lists) >= 4, (tmp_path / "locust.log").read_text()
    assert (lists["status"] == 0).all()
    assert (lists["error"] == "no response before the run ended").all()
    assert (lists["end_ns"] <= quit_ns).all() and (lists["end_ns"] >= lists["start_ns"]).all()
    assert (lists["latency_ns"] == lists["end_ns"] - lists["intended_ns"]).all()
    # the first arrival waited the whole run: its latency is at least the run's length
    assert lists["latency_ns"].max() > 1.5e9
    assert lists["request_id"].is_unique

    summary = summarize_trial(records).set_index("endpoint")
    assert summary.loc["GET /tickets", "errors"] == len(lists)
    assert summary.loc[ALL, "error_rate"] == 1.0
