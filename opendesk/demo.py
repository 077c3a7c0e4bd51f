"""The newcomer's demo: seed, serve on the embedded defaults, show it answering.

Later stages of the workbench (capture, analysis, report) hook in here; for now the demo
proves the reference service runs: it seeds demo data into the default SQLite file
(once), starts ``python -m opendesk serve`` with an embedded Redis, prints where it
listens, exercises each endpoint once, and stops everything it started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import httpx

from opendesk.config import Settings
from opendesk.db import make_engine
from opendesk.errors import UsageError
from opendesk.redis_server import free_port
from opendesk.seed import DEMO_PASSWORD, SEED_VERSION, seed, seeded_as


def ensure_seeded(settings: Settings, size: str) -> None:
    engine = make_engine(settings)
    try:
        facts = seeded_as(engine)
        if facts.get("seed_size") == size and facts.get("seed_version") == SEED_VERSION:
            print(f"[demo] using {size} data seeded on {facts.get('seed_anchor')}", flush=True)
            return
        print(f"[demo] seeding {size} data (once; later runs reuse it)", flush=True)
        timings = seed(engine, size)
        print(f"[demo] seeded in {timings['total']:.1f}s", flush=True)
    finally:
        engine.dispose()


def start_server(
    port: int, env: dict[str, str] | None = None, workers: int = 1
) -> subprocess.Popen:
    """Start ``opendesk serve`` and wait until /health answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opendesk", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UsageError(f"the service exited at start (code {proc.returncode}); see above")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise UsageError(f"the service did not answer /health on port {port} within 60s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


TOUR = [
    "/tickets",
    "/tickets?status=open&sort=-updated_at",
    "/tickets?page=200",
    "/tickets/1",
    "/dashboard",
    "/reports/ticket-stats",
    "/reports/sla-compliance",
    "/tickets/export.csv?status=open",
    "/articles?q=login",
]


def run_demo(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    ensure_seeded(settings, args.size)
    port = args.port or free_port()
    proc = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            login = client.post(
                "/auth/login", json={"email": "agent1@opendesk.test", "password": DEMO_PASSWORD}
            )
            login.raise_for_status()
            client.headers["Authorization"] = f"Bearer {login.json()['token']}"
            print(f"[demo] OpenDesk is listening on {base} (log in as agent1@opendesk.test)")
            for path in TOUR:
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                print(f"[demo]   GET {path:<42} {response.status_code} {elapsed:8.1f} ms")
        if args.keep_serving:
            print(f"[demo] serving on {base} until Ctrl-C", flush=True)
            proc.wait()
    finally:
        stop_server(proc)
    print("[demo] stopped the service and everything it started")
    return 0
