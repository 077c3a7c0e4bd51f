"""Capture one of the test apps as a user would: ``deskprof capture --launch`` of
``uvicorn tests.apps.<module>:app`` under a locustfile of ``tests/workloads``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opendesk.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


def capture_app(
    app: str,
    bundle: Path,
    *,
    workload: str,
    sources: str,
    duration_s: int,
    users: int,
    env: dict[str, str] | None = None,
    server: str = "uvicorn",
) -> subprocess.CompletedProcess[str]:
    """Run the capture of ``tests.apps.<app>:app`` under ``server`` (``uvicorn`` or
    ``gunicorn``, one sync worker) into ``bundle``; the finished process."""
    port = free_port()
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")])
    )
    launch = (
        f"{sys.executable} -m uvicorn tests.apps.{app}:app --port {port}"
        if server == "uvicorn"
        else f"{sys.executable} -m gunicorn -w 1 --bind 127.0.0.1:{port} tests.apps.{app}:app"
    )
    return subprocess.run(
        [*DESKPROF, "capture", "--url", f"http://127.0.0.1:{port}", "--launch", launch,
         "--sources", sources, "--duration", str(duration_s), "--users", str(users),
         "--out", str(bundle), "--workload", str(ROOT / "tests" / "workloads" / workload)],
        capture_output=True, text=True, timeout=180, env=environment, cwd=ROOT,
    )  # fmt: skip
