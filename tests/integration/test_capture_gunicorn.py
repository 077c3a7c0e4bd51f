"""Forking servers attached by the supervisor's PID: gunicorn (sync, gthread, uvicorn
workers) and uvicorn ``--workers``, each under ``deskprof run --off`` as on staging.

What must hold: every worker is sampled on its own (the arbiter's frames at most once per
stack, no stack deeper than the deepest real one + 10), the handler is on the stacks,
memory comes from inside each worker, and the bundle reads back and gives findings.
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

from deskprof.bundle.reader import open_capture
from deskprof.capturing.target import wait_for_url
from deskprof.processes import stop_gracefully
from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "tests" / "workloads" / "items.py"
INPROCESS = "in-process memray.Tracker (deskprof probe)"

SERVERS = {
    "gunicorn-sync": ["-m", "gunicorn", "-w", "2", "tests.apps.flask_app:app"],
    "gunicorn-gthread": [
        "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "tests.apps.flask_app:app"
    ],
    "gunicorn-uvicorn": [
        "-m", "gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
        "tests.apps.fastapi_app:app",
    ],
    "uvicorn-workers": ["-m", "uvicorn", "--workers", "2", "tests.apps.fastapi_app:app"],
}  # fmt: skip
HANDLER = {"gunicorn-sync": "list_items", "gunicorn-gthread": "list_items"}


def _bind(kind: str, port: int) -> list[str]:
    if kind.startswith("gunicorn"):
        return ["--bind", f"127.0.0.1:{port}"]
    return ["--host", "127.0.0.1", "--port", str(port)]


def _workers(pid: int, port: int) -> list[int]:
    return sorted(
        c.pid
        for c in psutil.Process(pid).children(recursive=True)
        if any(
            s.status == psutil.CONN_LISTEN and s.laddr.port == port
            for s in c.net_connections(kind="tcp")
        )
    )


@pytest.mark.parametrize("kind", list(SERVERS))
def test_forking_server_by_master_pid(tmp_path, kind):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TESTAPP_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # create and fill the database once: two workers creating it at once lock SQLite
    subprocess.run([sys.executable, "-c", "import tests.apps.models as m; "
                    "m.init_db(m.database_url())"],
                   env=env, cwd=ROOT, check=True, timeout=60)  # fmt: skip
    command = [*DESKPROF, "run", "--off", "--out", str(tmp_path / "probe"), "--",
               sys.executable, *SERVERS[kind], *_bind(kind, port)]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        wait_for_url(f"{url}/items", 60, server)
        deadline = time.monotonic() + 30
        while len(_workers(server.pid, port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _workers(server.pid, port)
        assert len(workers) == 2, (tmp_path / "server.log").read_text()
        bundle = tmp_path / "bundle"
        proc = subprocess.run(
            [*DESKPROF, "capture", "--url", url, "--pid", str(server.pid), "--duration", "6",
             "--workload", str(LOCUSTFILE), "--users", "4", "--out", str(bundle)],
            capture_output=True, text=True, timeout=240, env=env, cwd=ROOT,
        )  # fmt: skip
        assert server.poll() is None, "the server lives on"
    finally:
        stop_gracefully(server, signal.SIGTERM, 20, kill_group=True)
        log.close()
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["status"] == "complete", manifest["partial_reasons"]
    assert manifest["sources"]["cpu"]["pids"] == workers, "each worker, not the master"
    assert set(manifest["sources"]["memory"]["method"].values()) == {INPROCESS}
    assert set(manifest["sources"]["memory"]["pids"]) >= set(workers)

    capture = open_capture(bundle)
    stacks = capture.table("stacks")
    depth = stacks["frames"].map(len)
    assert depth.max() <= 80, f"deepest stack {depth.max()} frames"
    sampled = capture.samples.merge(stacks[["stack_id", "frames"]], on="stack_id")
    for frames in sampled["frames"]:
        assert sum(f.startswith("Arbiter.run (") for f in frames) <= 1
        assert not any(f.startswith("process ") for f in frames)
    handler = HANDLER.get(kind, "list_items")
    assert sampled["frames"].map(lambda fs: any(f.startswith(f"{handler} (") for f in fs)).any()
    assert set(capture.memory["pid"]) >= set(workers)
    assert (capture.requests["route"] == "/items").sum() > 20
    # a locustfile that sends no request id: deskprof's runner adds one to every request
    joined = manifest["integrity"]["requests"]
    assert joined["matched"] >= 0.99 * joined["workload_answered"] > 0, joined
    # the compatibility matrix's cells on the server axis: counted once, SQL in requests
    assert capture.requests["request_id"].is_unique, "one record per request"
    owners = capture.queries[capture.queries["statement"].str.contains("owners")]
    assert (owners["request_id"] != "").mean() >= 0.99, "the app's SQL inside its requests"
    findings = subprocess.run(
        [*DESKPROF, "findings", str(bundle), "--format", "json"],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert findings.returncode == 0, findings.stderr
    report = json.loads(findings.stdout)
    assert isinstance(report["findings"], list)
    # only the detectors that EXPLAIN are skipped: no database was given to plan against
    explain = {"missing_index", "weak_index"}
    assert all(s["detector"] in explain for s in report["skipped"]), report["skipped"]
