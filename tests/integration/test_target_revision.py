"""The manifest's target revision is the target's: git in the target's working
directory, or what the user gives; deskprof's own revision is recorded apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deskprof.bundle.writer import tool_versions
from deskprof.capturing.target import Target

pytestmark = pytest.mark.integration


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def app_checkout(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    _git(app, "init", "-q")
    (app / "server.py").write_text("print('hi')\n")
    _git(app, "add", "server.py")
    _git(app, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    return app


def _process_in(cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=cwd)


def test_revision_is_git_in_the_targets_working_directory(app_checkout: Path) -> None:
    process = _process_in(app_checkout)
    try:
        revision, source = Target(url="http://127.0.0.1:1", pids=[process.pid]).revision()
    finally:
        process.kill()
        process.wait()
    assert revision == _git(app_checkout, "rev-parse", "HEAD")
    assert source == f"git in {app_checkout}"
    deskprof_revision = tool_versions()["deskprof_revision"]
    assert deskprof_revision != revision  # deskprof's own, recorded apart


def test_no_checkout_says_unknown(tmp_path: Path) -> None:
    process = _process_in(tmp_path)
    try:
        revision, source = Target(url="http://127.0.0.1:1", pids=[process.pid]).revision()
    finally:
        process.kill()
        process.wait()
    assert revision is None
    assert source == f"unknown (no git checkout at {tmp_path})"
