"""Every stop is a clean stop: SIGTERM, SIGHUP and a second Ctrl-C to a real capture.

Within 5 s of the signal nothing the capture started (py-spy, the load generator) is
running, the probe is switched back off, a launched target is stopped, and the tables
captured so far are in the bundle, marked partial with the signal's name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from deskprof.capturing.target import wait_for_url
from deskprof.probe import control
from deskprof.processes import stop_gracefully
from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def probed(tmp_path_factory, seeded_sqlite):
    """One OpenDesk worker under `deskprof run --off`, as on staging."""
    probe = tmp_path_factory.mktemp("probe")
    port = free_port()
    env = {**os.environ, "OPENDESK_DATABASE_URL": seeded_sqlite}
    log = (tmp_path_factory.mktemp("server") / "serve.log").open("w")
    server = subprocess.Popen(
        [*DESKPROF, "run", "--off", "--out", str(probe), "--", sys.executable, "-m", "opendesk",
         "serve", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_url(f"http://127.0.0.1:{port}", 120, server)
        yield server, port, probe
    finally:
        stop_gracefully(server, signal.SIGTERM, 20, kill_group=True)
        log.close()


def _start(args: list[str], bundle: Path) -> subprocess.Popen:
    capture = subprocess.Popen(
        [*DESKPROF, "capture", *args, "--out", str(bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and capture.poll() is None:
        manifest = bundle / "manifest.json"
        if manifest.exists() and '"start_ns"' in manifest.read_text():
            break
        time.sleep(0.1)
    time.sleep(3)  # every source running, load flowing
    return capture


def _helpers(capture: subprocess.Popen, exclude: set[int]) -> list[psutil.Process]:
    return [p for p in psutil.Process(capture.pid).children(recursive=True) if p.pid not in exclude]


def _gone_within(processes: list[psutil.Process], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    alive = processes
    while time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.1)
    return [" ".join(p.cmdline()[:3]) for p in alive if p.is_running()]


def test_sigterm_to_a_pid_capture_stops_everything_and_keeps_the_tables(tmp_path, probed):
    server, port, probe = probed
    bundle = tmp_path / "b"
    capture = _start(
        ["--url", f"http://127.0.0.1:{port}", "--pid", str(server.pid), "--duration", "60",
         "--workload", "agent", "--users", "2"], bundle,
    )  # fmt: skip
    try:
        helpers = _helpers(capture, {server.pid})
        assert any("py-spy" in " ".join(p.cmdline()) for p in helpers)
        assert any("locust" in " ".join(p.cmdline()) for p in helpers)
        assert control.read_state(probe) == "on", "the capture switched the probe on"
        capture.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        left = _gone_within(helpers, 5)
        assert left == [], f"still running 5 s after SIGTERM: {left}"
        while control.read_state(probe) == "on" and time.monotonic() - sent < 5:
            time.sleep(0.1)
        assert control.read_state(probe) != "on", "the probe is back as it was (off) in 5 s"
        _out, err = capture.communicate(timeout=120)
    finally:
        capture.kill()
    assert capture.returncode == 128 + signal.SIGTERM, err
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "partial"
    assert any(r.startswith("interrupted (SIGTERM)") for r in manifest["partial_reasons"])
    for table in ("requests", "queries", "samples", "stacks", "memory", "metrics", "workload"):
        assert (bundle / f"{table}.parquet").exists(), table
    assert server.poll() is None, "the target lives on"


@pytest.mark.parametrize("how", ["sighup", "double-ctrl-c"])
def test_a_launched_capture_stopped_by_signal_stops_its_target(tmp_path, sqlite_copy, how):
    port = free_port()
    bundle = tmp_path / "b"
    launch = (
        f"env OPENDESK_DATABASE_URL={sqlite_copy} {sys.executable} -m opendesk serve --port {port}"
    )
    capture = _start(
        ["--url", f"http://127.0.0.1:{port}", "--launch", launch, "--duration", "60",
         "--sources", "cpu,sql,system", "--workload", "agent", "--users", "2"], bundle,
    )  # fmt: skip
    try:
        target = json.loads((bundle / "manifest.json").read_text())["target"]["pids"][0]
        helpers = _helpers(capture, set())
        if how == "sighup":
            capture.send_signal(signal.SIGHUP)
        else:
            capture.send_signal(signal.SIGINT)
            time.sleep(0.3)
            capture.send_signal(signal.SIGINT)  # impatient: must not lose the tables
        left = _gone_within(helpers, 30)
        assert left == [], f"still running after the signal: {left}"
        _out, err = capture.communicate(timeout=120)
    finally:
        capture.kill()
    expected = signal.SIGHUP if how == "sighup" else signal.SIGINT
    assert capture.returncode == 128 + expected, err
    assert not psutil.pid_exists(target) or psutil.Process(target).status() == "zombie"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert any(r.startswith("interrupted (") for r in manifest["partial_reasons"])
    for table in ("requests", "queries", "samples", "metrics", "workload"):
        assert (bundle / f"{table}.parquet").exists(), table
    if how == "double-ctrl-c":
        assert "Ctrl-C ignored: stopping already" in err
