"""``deskprof doctor`` tries, on scratch processes, every way of capturing: on a host
where debugger injection fails (a stand-in gdb that fails like gdb 13.1 on AMX Xeons)
it says the in-process memory path works and the attach method does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

FAILING_GDB = """#!/bin/sh
case "$1" in --version) echo "GNU gdb (Debian 13.1-3) 13.1"; exit 0 ;; esac
echo "Couldn't write extended state status: Bad address." >&2
exit 1
"""


def test_doctor_on_a_host_where_injection_fails(tmp_path):
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    (stand_in / "gdb").write_text(FAILING_GDB)
    (stand_in / "gdb").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stand_in}{os.pathsep}{os.environ['PATH']}",
        "DESKPROF_GDB": str(stand_in / "gdb"),
        "DESKPROF_LLDB": str(tmp_path / "no-lldb"),
        "DESKPROF_CACHE_DIR": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "deskprof", "doctor"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("ok  py-spy") for line in lines), proc.stdout
    assert any(line.startswith("ok  memray") and "no debugger" in line for line in lines)
    gdb = next(line for line in lines if "attach:gdb" in line)
    assert gdb.startswith("NO ") and "Couldn't write extended state status" in gdb
    assert "not used on targets" in gdb
    assert lines[-1].startswith("-> memory: in-process") and "no method works here" in lines[-1]
    assert (tmp_path / "cache" / "attach-trials.json").exists(), "the verdict is remembered"
