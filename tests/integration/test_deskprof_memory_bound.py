"""deskprof's own memory stays bounded: capturing gunicorn with 4 workers and every
source, then analysing it, keeps deskprof's process under 1 GB resident (a capture of
``gunicorn -w 2`` once grew to 22 GB and the kernel killed it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from opendesk.redis_server import free_port
from tests.apps.launch import DESKPROF, ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CEILING = 1 << 30
LOCUSTFILE = ROOT / "tests" / "workloads" / "items.py"


def _peak_rss(command: list[str], env: dict[str, str]) -> tuple[int, subprocess.Popen, str]:
    """Run ``command``; its own peak resident memory (polled every 0.1 s)."""
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0

    def poll() -> None:
        nonlocal peak
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    _, stderr = process.communicate(timeout=300)
    watcher.join(timeout=5)
    return peak, process, stderr


def test_capturing_and_analysing_four_workers_stays_under_a_gigabyte(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TESTAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", "import tests.apps.models as m; "
                    "m.init_db(m.database_url())"],
                   env=env, cwd=ROOT, check=True, timeout=60)  # fmt: skip
    launch = f"{sys.executable} -m gunicorn -w 4 --bind 127.0.0.1:{port} tests.apps.flask_app:app"
    bundle = tmp_path / "bundle"
    peak, capture, stderr = _peak_rss(
        [*DESKPROF, "capture", "--url", f"http://127.0.0.1:{port}", "--launch", launch,
         "--duration", "10", "--workload", str(LOCUSTFILE), "--users", "8",
         "--out", str(bundle)],
        env,
    )  # fmt: skip
    assert capture.returncode == 0, stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert len(manifest["sources"]["cpu"]["pids"]) == 4, "each of the 4 workers sampled"
    assert len(manifest["sources"]["memory"]["pids"]) >= 4, "and tracked"
    assert peak < CEILING, f"capturing: deskprof reached {peak / 2**20:,.0f} MiB"
    analysed, findings, stderr = _peak_rss([*DESKPROF, "findings", str(bundle)], env)
    assert findings.returncode == 0, stderr
    assert analysed < CEILING, f"analysing: deskprof reached {analysed / 2**20:,.0f} MiB"
    print(f"deskprof peak RSS: capture {peak / 2**20:.0f} MiB, findings {analysed / 2**20:.0f} MiB")
