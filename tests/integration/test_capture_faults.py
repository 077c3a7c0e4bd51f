"""Capture faults: each gives one clear line, a non-zero exit, and a bundle marked partial.

These run the real `deskprof capture` command against a real OpenDesk it launches (or
against processes the test starts), with the sources that do not need ptrace, so they
stay fast; the full-source capture is tested in test_capture_end_to_end.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DESKPROF, "capture", *args], capture_output=True, text=True, timeout=timeout
    )


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("deskprof: ")]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines, proc.stderr
    return lines[-1]


def _launch_args(sqlite_copy: str, port: int) -> list[str]:
    return [
        "--url",
        f"http://127.0.0.1:{port}",
        "--launch",
        f"env OPENDESK_DATABASE_URL={sqlite_copy} {sys.executable} -m opendesk serve --port {port}",
    ]


def test_no_such_pid(tmp_path):
    proc = _run("--url", "http://127.0.0.1:9", "--pid", "999999", "--out", str(tmp_path / "b"))
    assert proc.returncode == 2
    assert "no process with PID 999999" in _one_line_error(proc)
    manifest = _manifest(tmp_path / "b")
    assert manifest["status"] == "partial"
    assert "no process with PID 999999" in manifest["partial_reasons"][0]


def test_unreachable_url(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        port = free_port()
        proc = _run(
            "--url", f"http://127.0.0.1:{port}", "--pid", str(sleeper.pid),
            "--sources", "system", "--out", str(tmp_path / "b"),
        )  # fmt: skip
    finally:
        sleeper.kill()
        sleeper.wait()
    assert proc.returncode == 2
    assert "does not answer" in _one_line_error(proc)
    assert _manifest(tmp_path / "b")["status"] == "partial"


def test_remote_load_refused_without_opt_in(tmp_path):
    proc = _run("--url", "http://192.0.2.10:8000", "--pid", "1", "--out", str(tmp_path / "b"))
    assert proc.returncode == 2
    assert "only loopback targets by default" in _one_line_error(proc)


def test_bad_source_name(tmp_path):
    proc = _run("--url", "http://127.0.0.1:9", "--pid", "1", "--sources", "cpu,gpu")
    assert proc.returncode == 2
    assert "unknown source(s): gpu" in _one_line_error(proc)


def test_target_exits_mid_capture(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "b"
    capture = subprocess.Popen(
        [*DESKPROF, "capture", *_launch_args(sqlite_copy, port), "--duration", "30",
         "--sources", "system", "--users", "2", "--out", str(bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_manifest_key(bundle, "target", capture)
        time.sleep(2)
        pid = _manifest(bundle)["target"]["pids"][0]
        subprocess.run(["kill", "-KILL", str(pid)], check=False)
        _out, err = capture.communicate(timeout=60)
    finally:
        capture.kill()
    assert capture.returncode == 1, err
    manifest = _manifest(bundle)
    assert manifest["status"] == "partial"
    assert any("target exited" in r for r in manifest["partial_reasons"])
    assert manifest["counts"]["metrics"] > 0, "what was captured before the exit is kept"
    assert (bundle / "workload.parquet").exists()


def test_ctrl_c_keeps_a_partial_bundle(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "b"
    capture = subprocess.Popen(
        [*DESKPROF, "capture", *_launch_args(sqlite_copy, port), "--duration", "60",
         "--sources", "system", "--users", "2", "--out", str(bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_manifest_key(bundle, "start_ns", capture)
        time.sleep(2)
        capture.send_signal(signal.SIGINT)
        _out, err = capture.communicate(timeout=60)
    finally:
        capture.kill()
    assert capture.returncode == 130, err
    manifest = _manifest(bundle)
    assert manifest["status"] == "partial"
    assert any("interrupted" in r for r in manifest["partial_reasons"])
    assert manifest["counts"].get("metrics", 0) > 0


def test_disk_cap(tmp_path, sqlite_copy):
    """Enforced while capturing: the probe's records (and py-spy's trace, held in its
    memory until the end) count before they reach the bundle."""
    port = free_port()
    proc = _run(
        *_launch_args(sqlite_copy, port), "--duration", "60", "--sources", "cpu,sql,system",
        "--users", "4", "--max-disk-mb", "1", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    manifest = _manifest(tmp_path / "b")
    assert any("disk cap of 1 MB reached" in r for r in manifest["partial_reasons"])
    assert manifest["duration_s"] < 40


def _wait_for_manifest_key(
    bundle: Path, key: str, capture: subprocess.Popen, timeout: float = 150
) -> None:
    """Until the running capture has written ``key`` (a cold machine starts slowly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if capture.poll() is not None:
            raise AssertionError(f"capture exited early: {capture.stderr.read()}")
        try:
            if key in _manifest(bundle):
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"manifest never got {key!r}")


SLEEPER = ["sleep", "60"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sources", ""], "--sources names no source"),
        (["--cpu-rate", "0"], "--cpu-rate must be between 1 and 1000"),
        (["--cpu-rate", "100000"], "--cpu-rate must be between 1 and 1000"),
        (["--max-disk-mb", "0"], "--max-disk-mb must be at least 1 MB"),
        (["--max-disk-mb", "-1"], "--max-disk-mb must be at least 1 MB"),
        (["--pid", "1"], "--pid 1 is init"),
        (["--pid", "SLEEPER"], "is not a Python process and starts none"),
        (["--out", "FILE"], "is a file; choose a directory path"),
        (["--out", "FILE/sub"], "which is a file; choose a directory path"),
        (["--out", "/proc/deskprof-bundle"], "cannot write the bundle at /proc/deskprof-bundle"),
        (["--workload", "BROKEN"], "has a syntax error at line 2"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, args, message):
    sleeper = subprocess.Popen(SLEEPER)
    try:
        (tmp_path / "file").write_text("x")
        (tmp_path / "broken.py").write_text("from locust import HttpUser\ndef (:\n")
        names = {"SLEEPER": str(sleeper.pid), "FILE": str(tmp_path / "file"),
                 "BROKEN": str(tmp_path / "broken.py")}  # fmt: skip
        args = [next((v + a[len(k):] for k, v in names.items() if a.startswith(k)), a)
                for a in args]  # fmt: skip
        base = {"--pid": [], "--out": ["--out", str(tmp_path / "b")]}
        target = [] if "--pid" in args else ["--pid", str(os.getpid())]
        out = [] if "--out" in args else base["--out"]
        proc = _run("--url", "http://127.0.0.1:9", *target, *out, "--duration", "1", *args)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
