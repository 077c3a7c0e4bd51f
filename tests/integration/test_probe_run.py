"""`deskprof run -- <command>` on unmodified apps: real servers, real HTTP, real SQLite.

The apps in tests/apps import nothing from deskprof; the probe gets in through
``sitecustomize`` and import hooks, in every worker process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from deskprof.probe.reader import read_probe_dir
from opendesk.redis_server import free_port
from tests.apps.models import N_ITEMS, init_db

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-m", "deskprof"]
APPS = str(ROOT / "tests" / "apps")


@contextmanager
def served(tmp_path: Path, *command: str, port: int) -> Iterator[subprocess.Popen]:
    """``deskprof run --out tmp/probe -- command``, until it answers; SIGTERM after."""
    database = f"sqlite:///{tmp_path / 'items.sqlite3'}"
    init_db(database)
    env = {
        **os.environ,
        "TESTAPP_DATABASE_URL": database,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [*DESKPROF, "run", "--out", str(tmp_path / "probe"), "--", *command],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/items/1", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer: {(tmp_path / 'server.log').read_text()}")
                time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(port: int, path: str, request_id: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"X-Request-ID": request_id}, timeout=10
    )


def _records(tmp_path: Path, want_ids: set[str], timeout: float = 5.0) -> dict:
    """The probe's records once every wanted request id is on disk (flushes are async)."""
    deadline = time.monotonic() + timeout
    while True:
        read = read_probe_dir(tmp_path / "probe")
        seen = {r["request_id"] for r in read["requests"]}
        if want_ids <= seen or time.monotonic() > deadline:
            return read
        time.sleep(0.1)


def _assert_list_and_n_plus_one(read: dict, request_id: str, app_file: str, route: str) -> None:
    request = next(r for r in read["requests"] if r["request_id"] == request_id)
    assert request["route"] == route
    assert request["handler"] == f"tests.apps.{Path(app_file).stem}:list_items"
    assert request["status"] == 200 and request["pid"] > 0
    queries = [q for q in read["queries"] if q["request_id"] == request_id]
    owners = [q for q in queries if "FROM owners" in q["statement"]]
    assert len(owners) == N_ITEMS  # the N+1: one owner query per item
    assert all(q["call_site"].startswith(f"{APPS}/{app_file}:") for q in queries)
    assert all("?" in q["statement"] and q["parameters"] == '["int"]' for q in owners)
    for q in queries:
        assert request["start_ns"] <= q["start_ns"] <= request["end_ns"]


def test_fastapi_app_under_deskprof_run_and_the_run_time_switch(tmp_path):
    port = free_port()
    command = ["uvicorn", "tests.apps.fastapi_app:app", "--port", str(port)]
    with served(tmp_path, *command, port=port):
        assert _get(port, "/items", "list-1").status_code == 200
        assert _get(port, "/items/2", "one-2").json()["owner"] == "owner 2"
        assert _get(port, "/async/items/3", "async-3").status_code == 200
        assert _get(port, "/stream", "stream-4").text == "0\n1\n2\n"
        assert _get(port, "/boom", "boom-5").status_code == 500
        read = _records(tmp_path, {"list-1", "one-2", "async-3", "stream-4", "boom-5"})
        _assert_list_and_n_plus_one(read, "list-1", "fastapi_app.py", "/items")
        by_id = {r["request_id"]: r for r in read["requests"]}
        assert by_id["one-2"]["route"] == "/items/{item_id}"
        assert by_id["async-3"]["handler"] == "tests.apps.fastapi_app:get_item_async"
        assert (by_id["boom-5"]["status"], by_id["boom-5"]["error"]) == (500, "RuntimeError")
        streamed = [q for q in read["queries"] if q["request_id"] == "stream-4"]
        assert len(streamed) == 3  # run while the body streamed, still the request's

        switch = [*DESKPROF, "probe", "--dir", str(tmp_path / "probe")]
        subprocess.run([*switch, "off"], check=True, capture_output=True, cwd=ROOT)
        time.sleep(0.6)  # every process looks at the switch each 0.25 s
        _get(port, "/items/4", "while-off")
        subprocess.run([*switch, "on"], check=True, capture_output=True, cwd=ROOT)
        time.sleep(0.6)
        _get(port, "/items/5", "while-on")
        read = _records(tmp_path, {"while-on"})
        ids = {r["request_id"] for kind in ("requests", "queries") for r in read[kind]}
        assert "while-on" in ids and "while-off" not in ids
        status = subprocess.run(
            [*switch, "status"], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout
        assert "ON (probe.on present)" in status and "dropped      0" in status
    assert read_probe_dir(tmp_path / "probe")["malformed"] == []


def test_flask_app_under_deskprof_run(tmp_path):
    port = free_port()
    command = ["flask", "--app", "tests.apps.flask_app", "run", "--port", str(port)]
    with served(tmp_path, *command, port=port):
        assert _get(port, "/items", "flask-list").status_code == 200
        assert _get(port, "/items/3", "flask-one").status_code == 200
        assert _get(port, "/boom", "flask-boom").status_code == 500
        read = _records(tmp_path, {"flask-list", "flask-one", "flask-boom"})
    _assert_list_and_n_plus_one(read, "flask-list", "flask_app.py", "/items")
    by_id = {r["request_id"]: r for r in read["requests"]}
    assert by_id["flask-one"]["route"] == "/items/<int:item_id>"
    assert by_id["flask-one"]["handler"] == "tests.apps.flask_app:get_item"
    assert by_id["flask-boom"]["error"] == "RuntimeError"


def test_uvicorn_workers_each_write_their_own_file(tmp_path):
    port = free_port()
    command = ["uvicorn", "tests.apps.fastapi_app:app", "--port", str(port), "--workers", "2"]
    with served(tmp_path, *command, port=port) as server:
        workers = {c.pid for c in psutil.Process(server.pid).children(recursive=True)}
        ids = {f"w-{n}" for n in range(30)}
        for request_id in sorted(ids):
            assert _get(port, "/items/1", request_id).status_code == 200
        read = _records(tmp_path, ids)
        # each worker imported the app (create_all at import runs queries) and wrote a file
        files = {p.name for p in (tmp_path / "probe").glob("probe-*.jsonl")}
        file_pids = {int(name[len("probe-") : -len(".jsonl")]) for name in files}
        assert len(file_pids & workers) == 2, (file_pids, workers)
    seen = {r["request_id"]: r["pid"] for r in read["requests"]}
    assert ids <= set(seen)
    assert set(seen.values()) <= workers


def test_flask_mounted_in_fastapi_is_one_record_per_request(tmp_path):
    """WSGI inside ASGI: each HTTP request once, with the innermost route (Flask's rule
    under its mount) and view, its SQL in it (the context reaches the WSGI thread)."""
    port = free_port()
    command = ["uvicorn", "tests.apps.mounted_app:app", "--port", str(port)]
    with served(tmp_path, *command, port=port):
        sent = {}
        for n, path in enumerate(["/flask/items"] * 4 + ["/flask/items/2"] * 3 + ["/ping"] * 2):
            request_id = f"mounted-{n}"
            assert _get(port, path, request_id).status_code == 200
            sent[request_id] = path
        read = _records(tmp_path, set(sent))
    mine = [r for r in read["requests"] if r["request_id"] in sent]
    assert len(mine) == len(sent), "one record per request, not one per layer"
    assert all(r["route"] for r in read["requests"]), "every record has a route"
    routes = {r["request_id"]: (r["route"], r["handler"]) for r in mine}
    assert routes["mounted-0"] == ("/flask/items", "tests.apps.flask_app:list_items")
    assert routes["mounted-4"] == ("/flask/items/<int:item_id>", "tests.apps.flask_app:get_item")
    assert routes["mounted-7"] == ("/ping", "tests.apps.mounted_app:ping")
    owners = [
        q
        for q in read["queries"]
        if q["request_id"] == "mounted-0" and "FROM owners" in q["statement"]
    ]
    assert len(owners) == N_ITEMS, "the Flask view's SQL belongs to the request"
