"""The sql source end to end: the reference OpenDesk under real load, launched or attached.

The ticket list of the first version lazy-loads creator, assignee, category, tags and
comments per row (N+1): those queries must come back with the request id the load
generator sent and with call sites in OpenDesk's own code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DESKPROF = [sys.executable, "-m", "deskprof"]
OPENDESK_CODE = str(ROOT / "opendesk") + os.sep


def _capture(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DESKPROF, "capture", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _assert_ticket_list_n_plus_one(bundle: Path) -> None:
    manifest = _manifest(bundle)
    workload = pd.read_parquet(bundle / "workload.parquet")
    requests = pd.read_parquet(bundle / "requests.parquet")
    queries = pd.read_parquet(bundle / "queries.parquet")
    lists = workload[(workload["name"] == "GET /tickets") & (workload["status"] == 200)]
    assert len(lists) > 0, "the agent workload must have listed tickets"
    joined = lists.merge(requests, on="request_id", suffixes=("_sent", ""))
    assert len(joined) == len(lists)  # every list the generator sent, the probe saw
    assert set(joined["route"]) == {"/tickets"}
    assert set(joined["handler"]) == {"opendesk.api.tickets:list_tickets"}
    for request in joined.itertuples():
        mine = queries[queries["request_id"] == request.request_id]
        assert mine["start_ns"].between(request.start_ns, request.end_ns).all()
        repeated = mine.groupby("statement").size()
        assert repeated.max() >= 10, "a lazy load per row on a 25-row page"
        n_plus_one = mine[mine["statement"] == repeated.idxmax()]
        assert n_plus_one["call_site"].str.startswith(OPENDESK_CODE).all()
        assert (n_plus_one["call_site"].str.contains("opendesk/tickets.py:")).all()
    assert (queries["parameters"].str.contains("@")).sum() == 0  # redacted: types only
    for table, column in (("requests", "start_ns"), ("queries", "start_ns")):
        frame = pd.read_parquet(bundle / f"{table}.parquet")
        assert frame[column].between(manifest["start_ns"], manifest["end_ns"]).all()
    # the launched service runs in this checkout: its revision is git's HEAD here, and
    # deskprof's own is recorded apart (the same checkout, so the same commit)
    assert manifest["target"]["revision_source"].startswith(("git in ", "unknown"))
    assert "deskprof_revision" in manifest["tools"]
    integrity = manifest["integrity"]["requests"]
    assert integrity["probe_seen"] == manifest["counts"]["requests"] == len(requests)
    assert integrity["workload_sent"] == manifest["counts"]["workload"] == len(workload)
    answered = int((workload["status"] > 0).sum())
    assert integrity["matched"] == integrity["workload_answered"] == answered
    assert integrity["unmatched_answered"] == 0
    sql = manifest["sources"]["sql"]
    assert sql["dropped"] == 0 and sql["malformed_lines"] == 0
    assert sum(p.get("queries_in_window", 0) for p in sql["processes"].values()) == len(queries)
    overhead = manifest["overhead"]["sql"]
    assert overhead["per_record_us"]["query_us"] > 0 and overhead["records_per_s"]["queries"] > 0


def test_launched_capture_ties_the_n_plus_one_to_its_requests(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "bundle"
    proc = _capture(
        "--url", f"http://127.0.0.1:{port}",
        "--launch", f"env OPENDESK_DATABASE_URL={sqlite_copy} "
                    f"{sys.executable} -m opendesk serve --port {port}",
        "--duration", "6", "--sources", "sql,system", "--workload", "agent", "--users", "4",
        "--out", str(bundle),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = _manifest(bundle)
    assert manifest["status"] == "complete" and manifest["sources"]["sql"]["mode"] == "launch"
    assert list((bundle / "raw" / "probe").glob("probe-*.jsonl"))
    _assert_ticket_list_n_plus_one(bundle)


@contextmanager
def _server(
    tmp_path: Path, sqlite_copy: str, port: int, probe_dir: Path | None
) -> Iterator[subprocess.Popen]:
    """OpenDesk started by the test, under `deskprof run` when ``probe_dir`` is given."""
    serve = [sys.executable, "-m", "opendesk", "serve", "--port", str(port)]
    command = [*DESKPROF, "run", "--out", str(probe_dir), "--", *serve] if probe_dir else serve
    env = {**os.environ, "OPENDESK_DATABASE_URL": sqlite_copy}
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_attached_capture_switches_the_probe_on_for_its_window_only(tmp_path, sqlite_copy):
    port = free_port()
    probe_dir = tmp_path / "staging-probe"
    bundle = tmp_path / "bundle"
    with _server(tmp_path, sqlite_copy, port, probe_dir) as server:
        subprocess.run([*DESKPROF, "probe", "off", "--dir", str(probe_dir)], check=True, cwd=ROOT)
        proc = _capture(
            "--url", f"http://127.0.0.1:{port}", "--pid", str(server.pid),
            "--duration", "6", "--sources", "sql", "--workload", "agent", "--users", "4",
            "--out", str(bundle),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        after = subprocess.run(
            [*DESKPROF, "probe", "status", "--dir", str(probe_dir)],
            capture_output=True, text=True, cwd=ROOT, check=True,
        ).stdout  # fmt: skip
    assert "OFF (probe.off present)" in after  # switched back as the capture found it
    manifest = _manifest(bundle)
    switch = manifest["sources"]["sql"]["switch"]
    assert switch["before"] == "off" and switch["switched_on_for_capture"] and switch["restored"]
    assert manifest["sources"]["sql"]["mode"] == "attach"
    kept = list((bundle / "raw" / "probe").glob("probe-*.jsonl"))
    assert kept, "the window's records are copied into the bundle"
    _assert_ticket_list_n_plus_one(bundle)


def test_attaching_to_a_target_without_the_probe_says_how_and_goes_on(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "bundle"
    with _server(tmp_path, sqlite_copy, port, None) as server:
        proc = _capture(
            "--url", f"http://127.0.0.1:{port}", "--pid", str(server.pid),
            "--duration", "2", "--sources", "sql,system", "--workload", "none",
            "--out", str(bundle),
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = _manifest(bundle)
    assert manifest["status"] == "partial"
    (reason,) = [r for r in manifest["partial_reasons"] if r.startswith("sql:")]
    assert "deskprof run" in reason and "\n" not in reason
    assert manifest["counts"]["metrics"] > 0  # the rest of the capture went on
    assert not (bundle / "requests.parquet").exists()
