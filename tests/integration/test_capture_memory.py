"""memray against a real OpenDesk under real load: launch and attach mode, and the faults.

Each capture is the real `deskprof capture` command. Memory comes from inside the target
wherever the probe is (a launched target; a server started under `deskprof run`), on
every host; the tests of `memray attach` itself (a server without the probe) run only
where an attach method was proven on a scratch process, and skip quoting the failed
trial elsewhere. One test forces the failing host with a stand-in gdb on any machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import psutil
import pytest

from deskprof.bundle.reader import open_capture
from deskprof.bundle.stacks import StackTable
from deskprof.capturing.memory import QualnameIndex, read_capture
from deskprof.capturing.target import wait_for_url
from deskprof.processes import stop_gracefully
from opendesk.redis_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DESKPROF = [sys.executable, "-c", "import sys; from deskprof.cli import main; sys.exit(main())"]


def _capture(
    *args: str, env: dict | None = None, prefix: tuple = ()
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, *DESKPROF, "capture", *args],
        capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _read(bundle: Path) -> SimpleNamespace:
    stacks = open_capture(bundle).table("stacks").set_index("stack_id")
    allocations = pd.read_parquet(bundle / "allocations.parquet")
    allocations["frames"] = allocations["stack_id"].map(stacks["frames"])
    return SimpleNamespace(
        manifest=json.loads((bundle / "manifest.json").read_text()),
        memory=pd.read_parquet(bundle / "memory.parquet"),
        allocations=allocations,
    )


def _on_stack(frames, function: str, file: str) -> bool:
    return any(f.startswith(f"{function} (") and file in f for f in frames)


def _listening_workers(server: SimpleNamespace) -> list[int]:
    """The server's workers: its children listening on its port (not its Redis)."""
    return sorted(
        c.pid
        for c in psutil.Process(server.pid).children(recursive=True)
        if any(
            s.status == psutil.CONN_LISTEN and s.laddr.port == server.port
            for s in c.net_connections(kind="tcp")
        )
    )


def _serve(tmp_path_factory, seeded_sqlite, prefix: tuple[str, ...] = ()):
    """A two-worker OpenDesk started outside deskprof, as on staging."""
    database = tmp_path_factory.mktemp("memory-db") / "opendesk.sqlite3"
    shutil.copyfile(seeded_sqlite.removeprefix("sqlite:///"), database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("memory-server") / "serve.log").open("w")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "opendesk", "serve", "--port", str(port),
         "--workers", "2"],
        env={**os.environ, "OPENDESK_DATABASE_URL": f"sqlite:///{database}"},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_url(url, 120, proc)
        server = SimpleNamespace(url=url, port=port, pid=proc.pid)
        deadline = time.monotonic() + 30
        while len(_listening_workers(server)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server
    finally:
        stop_gracefully(proc, signal.SIGTERM, 20, kill_group=True)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, seeded_sqlite):
    """Without the probe: memory only by attaching."""
    yield from _serve(tmp_path_factory, seeded_sqlite)


@pytest.fixture(scope="module")
def probed_server(tmp_path_factory, seeded_sqlite):
    """Started under `deskprof run --off`, the way the README says to run staging."""
    probe_dir = tmp_path_factory.mktemp("probe")
    prefix = (*DESKPROF, "run", "--off", "--out", str(probe_dir), "--")
    yield from _serve(tmp_path_factory, seeded_sqlite, prefix)


def _methods(b: SimpleNamespace) -> set[str]:
    return set(b.manifest["sources"]["memory"]["method"].values())


INPROCESS = "in-process memray.Tracker (deskprof probe)"
FAILING_GDB = """#!/bin/sh
case "$1" in --version) echo "GNU gdb (Debian 13.1-3) 13.1"; exit 0 ;; esac
echo "Couldn't write extended state status: Bad address." >&2
exit 1
"""


def test_launch_full_mode_tracks_each_worker_inside_the_window(tmp_path, sqlite_copy):
    port = free_port()
    bundle = tmp_path / "bundle"
    proc = _capture(
        "--url", f"http://127.0.0.1:{port}",
        "--launch", f"env OPENDESK_DATABASE_URL={sqlite_copy} "
                    f"{sys.executable} -m opendesk serve --port {port} --workers 2",
        "--duration", "6", "--sources", "memory,system", "--workload", "agent", "--users", "4",
        "--out", str(bundle),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    b = _read(bundle)
    tracked = b.manifest["sources"]["memory"]["pids"]
    assert len(tracked) == 2 and b.manifest["target"]["pids"][0] not in tracked, "workers only"
    assert _methods(b) == {INPROCESS}, "a launched target has the probe: no debugger"
    assert set(b.memory["pid"]) == set(tracked)
    assert b.manifest["start_ns"] <= b.memory["ts_ns"].min()
    assert b.memory["ts_ns"].max() <= b.manifest["end_ns"]
    assert (b.memory.groupby("pid").size() > 100).all(), "a snapshot every 10 ms"
    hwm = b.allocations[b.allocations["kind"] == "high_water_mark"]
    assert set(hwm["pid"]) == set(tracked)
    assert {"high_water_mark", "leaked", "temporal"} <= set(b.allocations["kind"])
    handler = b.allocations["frames"].map(
        lambda frames: _on_stack(frames, "list_tickets", "opendesk/api/tickets.py")
    )
    assert handler.any(), "the ticket list handler allocates"
    for frames in b.allocations[handler]["frames"]:  # root first: a thread's entry, then more
        assert frames[0].startswith(("Thread._bootstrap (", "<module> ("))
        assert not any(f.startswith(("Thread._bootstrap (", "<module> (")) for f in frames[1:])
    anchors = b.manifest["clock"]["anchors"]
    assert {f"memray:{pid}" for pid in tracked} <= set(anchors)
    # temporal rows live at a snapshot add up to that snapshot's tracked heap
    temporal = b.allocations[b.allocations["kind"] == "temporal"]
    for pid, snapshots in b.memory.groupby("pid"):
        rows = temporal[temporal["pid"] == pid]
        for _, snap in snapshots.iloc[:: max(1, len(snapshots) // 7)].iterrows():
            live = rows[(rows["ts_ns"] <= snap["ts_ns"]) & (snap["ts_ns"] < rows["end_ns"])]
            assert live["size_bytes"].sum() == snap["heap_bytes"]


@pytest.mark.parametrize("how", ["probe", "attach"])
def test_by_pid_aggregate_mode_and_the_server_lives_on(tmp_path, request, how):
    server = request.getfixturevalue("probed_server" if how == "probe" else "server")
    if how == "attach":
        request.getfixturevalue("attach_proven")
    workers = _listening_workers(server)
    bundle = tmp_path / "b"
    sources = "cpu,memory,sql,system" if how == "probe" else "memory,system"
    proc = _capture(
        "--url", server.url, "--pid", str(server.pid), "--duration", "4",
        "--sources", sources, "--memory-mode", "aggregate",
        "--workload", "agent", "--users", "2", "--out", str(bundle),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    b = _read(bundle)
    assert b.manifest["sources"]["memory"]["pids"] == workers
    if how == "probe":  # every source, complete, on any host
        assert _methods(b) == {INPROCESS}
        assert b.manifest["status"] == "complete", b.manifest["partial_reasons"]
        assert {"samples", "requests", "queries", "memory", "allocations"} <= set(
            b.manifest["counts"]
        )
    else:
        assert all(m.startswith("memray attach --method ") for m in _methods(b))
    assert set(b.allocations["kind"]) == {"high_water_mark", "leaked"}, "no history when aggregated"
    assert set(b.allocations.loc[b.allocations["kind"] == "high_water_mark", "pid"]) == set(workers)
    assert b.allocations["frames"].map(lambda fs: any("/opendesk/" in f for f in fs)).any()
    assert b.memory["ts_ns"].between(b.manifest["start_ns"], b.manifest["end_ns"]).all()
    # detached cleanly: the same workers serve on, and memray wrote its files at detach
    assert _listening_workers(server) == workers
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    assert all((bundle / "raw" / f"memray-{pid}.bin").stat().st_size > 0 for pid in workers)


def test_worker_killed_mid_capture_keeps_what_memray_wrote(tmp_path, probed_server):
    server = probed_server
    bundle = tmp_path / "b"
    capture = subprocess.Popen(
        [*DESKPROF, "capture", "--url", server.url, "--pid", str(server.pid),
         "--duration", "8", "--sources", "memory", "--workload", "agent", "--users", "2",
         "--out", str(bundle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and capture.poll() is None:
            raw = bundle / "raw"
            statuses = list(raw.glob("memray-*.status.json")) if raw.exists() else []
            if len(statuses) == 2 and all('"tracking"' in p.read_text() for p in statuses):
                break
            time.sleep(0.2)
        time.sleep(2)
        victim = _listening_workers(server)[0]
        os.kill(victim, signal.SIGKILL)
        _out, err = capture.communicate(timeout=120)
    finally:
        capture.kill()
    assert capture.returncode == 1, err
    b = _read(bundle)
    assert b.manifest["status"] == "partial"
    assert any(f"PID {victim} exited while memray tracked it" in r
               for r in b.manifest["partial_reasons"])  # fmt: skip
    assert (b.memory["pid"] == victim).sum() > 50, "snapshots before the kill are kept"
    assert (b.allocations["pid"] == victim).any()
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200


@pytest.mark.parametrize("tool", ["gdb", "memray"])
def test_missing_tool_skips_memory_and_keeps_the_other_sources(tmp_path, server, tool):
    bundle = tmp_path / "b"
    proc = _capture(
        "--url", server.url, "--pid", str(server.pid), "--duration", "2",
        "--sources", "memory,system", "--workload", "none", "--out", str(bundle),
        env={f"DESKPROF_{tool.upper()}": str(tmp_path / "nowhere"),
             "DESKPROF_LLDB": str(tmp_path / "nowhere")},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    manifest = json.loads((bundle / "manifest.json").read_text())
    reasons = manifest["partial_reasons"]
    assert len(reasons) == 1, reasons
    assert {
        "gdb": "memory: memray cannot attach on this host (no debugger found (gdb or lldb): "
        "install gdb (Debian: apt-get install gdb)",
        "memray": "memory: memray not found: run `make venv`",
    }[tool] in reasons[0]
    assert manifest["counts"]["metrics"] > 0 and "memory" not in manifest["counts"]


@contextmanager
def _script_server(script: str):
    """A tiny Python HTTP server from ``script`` (its port is argv[1]), killed after."""
    port = free_port()
    target = subprocess.Popen([sys.executable, "-c", script, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_url(f"http://127.0.0.1:{port}", 30, target)
        yield f"http://127.0.0.1:{port}", target
    finally:
        target.kill()
        target.wait()


SLEEPING_SERVER = """
import http.server, sys, threading, time
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                         http.server.SimpleHTTPRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
while True:
    time.sleep(0.5)  # where a failed injection killed processes (OSError: [Errno 514])
"""


def test_a_host_where_injection_fails_is_never_injected(tmp_path):
    """gdb fails its trial: the process in time.sleep is not touched and lives; the
    capture keeps the other sources and says in one line what to do."""
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    (stand_in / "gdb").write_text(FAILING_GDB)
    (stand_in / "gdb").chmod(0o755)
    with _script_server(SLEEPING_SERVER) as (url, target):
        proc = _capture(
            "--url", url, "--pid", str(target.pid), "--duration", "2",
            "--sources", "memory,system", "--workload", "none", "--out", str(tmp_path / "b"),
            env={"PATH": f"{stand_in}{os.pathsep}{os.environ['PATH']}",
                 "DESKPROF_GDB": str(stand_in / "gdb"), "DESKPROF_LLDB": str(tmp_path / "no"),
                 "DESKPROF_CACHE_DIR": str(tmp_path / "cache")},
        )  # fmt: skip
        time.sleep(1)
        assert target.poll() is None, "the process in time.sleep is alive"
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    (reason,) = manifest["partial_reasons"]
    assert reason.startswith("memory: memray cannot attach on this host (gdb: Couldn't write")
    assert "`deskprof run" in reason and str(target.pid) in reason
    assert not list((tmp_path / "b" / "raw").glob("memray-*.log")), "no attach was tried"
    assert manifest["counts"]["metrics"] > 0, "the other sources are kept"


NON_DUMPABLE_SERVER = """
import ctypes, http.server, sys
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: only CAP_SYS_PTRACE may trace
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv"
)
def test_no_ptrace_permission_is_one_clear_line(tmp_path, attach_proven):
    with _script_server(NON_DUMPABLE_SERVER) as (url, target):
        proc = _capture(
            "--url", url, "--pid", str(target.pid), "--duration", "1",
            "--sources", "memory", "--workload", "none", "--out", str(tmp_path / "b"),
            prefix=("setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"),
        )  # fmt: skip
        assert target.poll() is None, "the target survives a refused attach"
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    reasons = json.loads((tmp_path / "b" / "manifest.json").read_text())["partial_reasons"]
    assert len(reasons) == 1 and reasons[0].startswith(
        f"memory: memray (gdb) may not attach to PID {target.pid}: run as root"
    )


ALLOCATING_SCRIPT = """
import time
def hold_buffers():
    kept = []
    for _ in range(40):
        kept.append(bytearray(256 * 1024))
        time.sleep(0.04)
    return kept
buffers = hold_buffers()
time.sleep(0.3)
"""


def test_a_cut_file_is_read_up_to_the_cut(tmp_path):
    script = tmp_path / "allocate.py"
    script.write_text(ALLOCATING_SCRIPT)
    whole = tmp_path / "whole.bin"
    subprocess.run(
        [sys.executable, "-m", "memray", "run", "--quiet", "--no-compress", "-o", str(whole),
         str(script)], check=True, timeout=60,
    )  # fmt: skip
    result = read_capture(whole, 1, StackTable(), QualnameIndex(), end_ns=time.time_ns())
    assert result.partial_reason is None
    hwm = result.allocations[result.allocations["kind"] == "high_water_mark"]
    assert hwm["size_bytes"].sum() >= 40 * 256 * 1024

    cut = tmp_path / "cut.bin"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    partial = read_capture(cut, 1, StackTable(), QualnameIndex(), end_ns=time.time_ns())
    assert "cut short" in partial.partial_reason
    assert 0 < len(partial.memory) < len(result.memory)

    header_only = tmp_path / "header.bin"
    header_only.write_bytes(whole.read_bytes()[:40])
    unreadable = read_capture(header_only, 1, StackTable(), QualnameIndex(), end_ns=0)
    assert "cannot read header.bin" in unreadable.partial_reason and unreadable.memory.empty
