"""On-CPU from the kernel: threads blocked inside C calls are waiting, however their
leaf frame looks; a handler burning CPU is on CPU (issue: idle threads counted as CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deskprof.bundle.frames import parse_frame
from deskprof.bundle.reader import open_capture
from deskprof.capturing import thread_cpu
from deskprof.capturing.cpu import classify
from opendesk.redis_server import free_port
from tests.apps.idle_threads_app import IDLE_THREADS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


@pytest.mark.skipif(not thread_cpu.available(), reason="no /proc/<pid>/task/<tid>/schedstat")
def test_threads_idle_in_c_calls_are_not_on_cpu(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    bundle = tmp_path / "bundle"
    launch = f"{sys.executable} -m uvicorn tests.apps.idle_threads_app:app --port {port}"
    proc = subprocess.run(
        [*DESKPROF, "capture", "--url", f"http://127.0.0.1:{port}", "--launch", launch,
         "--sources", "cpu", "--duration", "5", "--users", "1", "--out", str(bundle),
         "--workload", str(ROOT / "tests" / "workloads" / "work.py")],
        capture_output=True, text=True, timeout=180, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    capture = open_capture(bundle)
    samples = capture.table("samples")
    frames = capture.stacks.set_index("stack_id")["frames"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["sources"]["cpu"]["state"].startswith("os:")

    idle = samples[samples["thread_name"].isin(IDLE_THREADS)]
    assert set(idle["thread_name"]) == set(IDLE_THREADS), "every idle thread was sampled"
    on_cpu = idle.loc[idle["state"] == "cpu", "n_samples"].sum() / idle["n_samples"].sum()
    assert on_cpu < 0.02, f"{on_cpu:.1%} of idle threads' samples counted as on CPU"
    assert (idle["state_from"] == "os").all()
    # the test can fail: by leaf names alone these threads are busy (their leaf is app code)
    leaves = {parse_frame(frames[s][-1]) for s in idle["stack_id"].unique()}
    by_name = [classify(function, filename) for function, filename, _ in leaves]
    assert by_name.count("cpu") >= 3, leaves

    handler = samples[samples["stack_id"].map(lambda s: any("work (" in f for f in frames[s]))]
    busy = handler.loc[handler["state"] == "cpu", "n_samples"].sum() / handler["n_samples"].sum()
    # one user: one handler thread at a time (two would wait on each other's GIL, which
    # is rightly not on CPU); runnable time on a crowded host still counts as active
    assert handler["n_samples"].sum() > 50 and busy > 0.75, f"handler on CPU {busy:.0%}"
