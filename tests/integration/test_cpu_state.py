"""On-CPU from the kernel: threads blocked inside C calls are waiting, however their
leaf frame looks; a handler burning CPU is on CPU (issue: idle threads counted as CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deskprof.bundle.frames import parse_frame
from deskprof.bundle.reader import open_capture
from deskprof.capturing import thread_cpu
from deskprof.capturing.cpu import classify
from tests.apps.idle_threads_app import IDLE_THREADS
from tests.apps.launch import capture_app

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not thread_cpu.available(), reason="no /proc/<pid>/task/<tid>/schedstat")
def test_threads_idle_in_c_calls_are_not_on_cpu(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    proc = capture_app(
        "idle_threads_app", bundle, workload="work.py", sources="cpu", duration_s=5, users=1
    )
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
