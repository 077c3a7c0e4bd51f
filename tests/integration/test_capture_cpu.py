"""A real capture with py-spy against a real OpenDesk under real load."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from deskprof.bundle.reader import open_capture
from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_cpu_capture_puts_the_list_handler_on_stacks_inside_the_window(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "bundle"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())",
         "capture", "--url", f"http://127.0.0.1:{port}",
         "--launch", f"env OPENDESK_DATABASE_URL={sqlite_copy} "
                     f"{sys.executable} -m opendesk serve --port {port}",
         "--duration", "6", "--sources", "cpu,system", "--workload", "agent", "--users", "4",
         "--out", str(bundle)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    samples = pd.read_parquet(bundle / "samples.parquet")
    stacks = open_capture(bundle).table("stacks").set_index("stack_id")
    assert samples["n_samples"].sum() > 100
    assert manifest["start_ns"] <= samples["ts_ns"].min()
    assert samples["end_ns"].max() <= manifest["end_ns"]
    with_handler = samples[
        samples["stack_id"]
        .map(stacks["frames"])
        .map(
            lambda frames: any(
                "list_tickets (" in f and "opendesk/api/tickets.py" in f for f in frames
            )
        )
    ]
    assert with_handler["n_samples"].sum() > 0, "the ticket list handler must be on CPU stacks"
    assert set(samples["state"]) <= {"cpu", "wait"} and "wait" in set(samples["state"])
    assert "py-spy" in next(iter(manifest["clock"]["anchors"]))
