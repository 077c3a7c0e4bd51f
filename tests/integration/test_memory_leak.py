"""A real leak is found end to end: a service whose module-level cache grows by 200 kB a
request, launched under deskprof capture with memory from inside the target, reports
memory growth at the leaking endpoint; the services that do not leak are
``test_acceptance_capture.py``'s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


def test_a_growing_module_level_cache_is_memory_growth(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ITEMS_PREFIX": ""}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    bundle = tmp_path / "bundle"
    launch = f"{sys.executable} -m uvicorn tests.apps.leaky_app:app --port {port}"
    proc = subprocess.run(
        [*DESKPROF, "capture", "--url", f"http://127.0.0.1:{port}", "--launch", launch,
         "--sources", "memory,sql", "--memory-mode", "aggregate", "--duration", "8",
         "--users", "4", "--out", str(bundle),
         "--workload", str(ROOT / "tests" / "workloads" / "items.py")],
        capture_output=True, text=True, timeout=180, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    findings = subprocess.run(
        [*DESKPROF, "findings", str(bundle), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert findings.returncode == 0, findings.stderr
    growth = [f for f in json.loads(findings.stdout)["findings"] if f["kind"] == "memory_growth"]
    assert len(growth) == 1, findings.stdout
    assert growth[0]["endpoint"] == "GET /items", growth[0]
    process = growth[0]["evidence"][1]
    assert process["second_half_growth_bytes"] > 0.25 * process["growth_bytes"] > 0
