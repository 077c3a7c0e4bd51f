"""Acceptance of issues 3 and 4 on real full captures of the reference OpenDesk.

Two captures, each the real ``deskprof capture --launch`` with every source (py-spy,
memray attach, the probe, psutil/service statistics) under the locustfile
``tests/workloads/acceptance.py`` (lists, details, filtered lists, deep pages, all five
reports, the CSV export, comments): one of the first version (``OPENDESK_FIXES=none``)
and one with every fix on. The detectors run with their default thresholds, and EXPLAIN
runs on each capture's own SQLite file.

The data set is the ``medium`` seed, seeded once for this module: 10,000 tickets instead
of the ``small`` seed's 2,000. The small seed's whole export (2,000 tickets) fits in the one
2,000-row chunk the streaming export sends at a time, so there streaming cannot flatten
memory and "export built whole in memory" is not a real difference between the two
versions; with five chunks it is. Comments stay at one per ticket so the lists' N+1
lazy loads (a comments scan per row without the index) keep a capture of ~12 s busy
with many requests rather than a few.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from deskprof.analysis import open_capture
from deskprof.analysis.findings import detect_all
from deskprof.cli import main
from opendesk.config import Settings
from opendesk.db import make_engine
from opendesk.redis_server import free_port
from opendesk.seed import seed
from tests.conftest import ANCHOR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# a fixed cycle that repeats the cheap reports between lists within a 12 s capture
# (the built-in tour covers the same problems but, with random ticket ids and cursor
# look-ups, did not always repeat a report inside the window on a loaded machine)
WORKLOAD = ROOT / "tests" / "workloads" / "acceptance.py"
DURATION_S = 12
LIST, REPORTS, EXPORT = "GET /tickets", "GET /reports/{name}", "GET /tickets/export.csv"
# each planted problem: (kind, endpoints where it belongs)
PLANTED = {
    "n_plus_one": {LIST},
    "missing_index": {LIST},
    "uncached_read": {REPORTS},
    "deep_pagination": {LIST},
    "cpu_hotspot": {LIST, REPORTS},
    "memory_peak": {EXPORT},
    "connection_churn": {""},
}


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("acceptance-db") / "opendesk.sqlite3"
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    seed(engine, "medium", anchor=ANCHOR)
    engine.dispose()
    return path


def _capture(seeded: Path, fixes: str, work: Path) -> SimpleNamespace:
    """A full capture of OpenDesk on its own copy of the database, then its findings."""
    database = work / "opendesk.sqlite3"
    shutil.copyfile(seeded, database)
    url = f"sqlite:///{database}"
    port = free_port()
    bundle = work / "bundle"
    proc = subprocess.run(
        [sys.executable, "-m", "deskprof", "capture", "--url", f"http://127.0.0.1:{port}",
         "--launch", f"env OPENDESK_DATABASE_URL={url} OPENDESK_FIXES={fixes} "
                     f"{sys.executable} -m opendesk serve --port {port}",
         "--duration", str(DURATION_S), "--workload", str(WORKLOAD), "--users", "2",
         "--out", str(bundle)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**os.environ, "DESKPROF_AS_OF": ANCHOR.isoformat()},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    capture = open_capture(bundle)
    found = detect_all(capture, explain_url=url)
    return SimpleNamespace(bundle=bundle, database_url=url, capture=capture, findings=found)


@pytest.fixture(scope="module")
def baseline(seeded_file: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return _capture(seeded_file, "none", tmp_path_factory.mktemp("baseline"))


@pytest.fixture(scope="module")
def fixed(seeded_file: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return _capture(seeded_file, "all", tmp_path_factory.mktemp("all-fixes"))


def _summary(findings) -> list[tuple[str, str, str]]:
    return [(f.kind, f.endpoint, f.title) for f in findings]


# --- issue 3: the capture -------------------------------------------------------------


def test_every_source_lands_in_one_complete_bundle_on_one_clock(baseline):
    manifest, capture = baseline.capture.manifest, baseline.capture
    assert manifest["status"] == "complete", manifest["partial_reasons"]
    assert set(manifest["options"]["sources"]) == {"cpu", "memory", "sql", "system"}
    worker = manifest["target"]["pids"][0]
    assert {f"py-spy:{worker}", f"memray:{worker}"} <= set(manifest["clock"]["anchors"])
    start, end = manifest["start_ns"], manifest["end_ns"]
    for table, columns in {
        "memory": ["ts_ns"],
        "requests": ["start_ns", "end_ns"],
        "queries": ["start_ns"],
        "samples": ["ts_ns", "end_ns"],
        "workload": ["start_ns", "end_ns"],
        "metrics": ["ts_ns"],
    }.items():
        frame = capture.table(table)
        assert len(frame) > 0, f"no {table}"
        for column in columns:
            assert frame[column].between(start, end).all(), f"{table}.{column} off the window"
    requests = manifest["integrity"]["requests"]
    # every answered request joins the probe's; one still in flight when the load stopped
    # is recorded by the load generator as unanswered, not lost
    assert requests["matched"] == requests["workload_answered"] >= requests["workload_sent"] - 2
    assert requests["unmatched_answered"] == 0 and requests["probe_dropped"] == 0
    overhead = manifest["overhead"]
    assert overhead["cpu"]["cpu_fraction"] > 0 and overhead["cpu"]["rate_hz"] == 100
    assert overhead["memory"]["bytes_written"] > 0
    assert overhead["sql"]["per_request_us"] > 0


def test_ticket_list_handler_on_cpu_and_its_n_plus_one_joined_to_the_generator(baseline):
    capture = baseline.capture
    samples = capture.samples
    by_stack = samples[(samples["endpoint"] == LIST) & (samples["attributed_by"] == "stack")]
    assert by_stack["n_samples"].sum() > 50, "the ticket list's handler is on CPU stacks"
    handlers = set(capture.stacks.set_index("stack_id").loc[by_stack["stack_id"], "handler"])
    assert handlers == {"opendesk.api.tickets:list_tickets"}

    sent = capture.workload
    lists = sent[(sent["name"] == LIST) & (sent["status"] == 200)]
    assert len(lists) >= 2 and (lists["request_id"].str.len() == 32).all()
    joined = lists.merge(capture.requests, on="request_id", suffixes=("_sent", ""))
    assert len(joined) == len(lists) and set(joined["endpoint"]) == {LIST}
    queries = capture.queries
    for request in joined.itertuples():
        mine = queries[queries["request_id"] == request.request_id]
        assert (mine["endpoint"] == LIST).all()
        assert mine["start_ns"].between(request.start_ns, request.end_ns).all()
        repeated = mine.groupby(["fingerprint_id", "call_site"]).size()
        assert repeated.max() >= 10, "a lazy load per row of a 25-row page"
        _fingerprint, site = repeated.idxmax()
        assert Path(site.rsplit(":", 1)[0]) == ROOT / "opendesk" / "tickets.py"


# --- issue 4: the findings ------------------------------------------------------------


def test_baseline_findings_name_each_planted_problem_at_its_endpoint(baseline):
    found = baseline.findings
    for kind, endpoints in PLANTED.items():
        at = {f.endpoint for f in found if f.kind == kind}
        assert at & endpoints, (kind, _summary(found))
    sla = [f for f in found if f.kind == "cpu_hotspot" and "opendesk/sla.py" in f.title]
    assert {f.endpoint for f in sla} & {LIST, REPORTS}, _summary(found)
    export = next(f for f in found if f.kind == "memory_peak" and f.endpoint == EXPORT)
    assert any("opendesk/export.py" in name for name in export.evidence[0]["top_functions_bytes"])
    n_plus_one = [f for f in found if f.kind == "n_plus_one" and f.endpoint == LIST]
    assert all(f.evidence[0]["call_site"].startswith(str(ROOT / "opendesk")) for f in n_plus_one)
    index = [f for f in found if f.kind == "missing_index" and f.endpoint == LIST]
    assert all(f.fix.startswith("CREATE INDEX ON ") for f in index)


def test_all_fixes_capture_has_none_of_them(fixed):
    assert fixed.capture.manifest["target"]["opendesk_fixes"] == "all"
    assert len(fixed.capture.requests) > 0
    remaining = [
        (f.kind, f.endpoint, f.title)
        for f in fixed.findings
        if f.endpoint in PLANTED.get(f.kind, set())
    ]
    assert remaining == []


def test_findings_cli_writes_the_baseline_as_json_with_stable_keys(baseline, tmp_path, capsys):
    out = tmp_path / "findings.json"
    code = main(
        ["findings", str(baseline.bundle), "--format", "json", "--out", str(out),
         "--explain-database", baseline.database_url]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    body = json.loads(out.read_text())
    keys = {"kind", "severity", "endpoint", "evidence", "estimated_saving_ms", "fix"}
    assert body["findings"] and all(keys <= set(f) for f in body["findings"])
    assert body["skipped"] == []
    written = pd.DataFrame(body["findings"])
    assert set(written["kind"]) == {f.kind for f in baseline.findings}
    assert all(isinstance(f["evidence"], list) and f["evidence"] for f in body["findings"])


def test_no_memory_growth_is_reported_on_a_service_that_does_not_leak(baseline, fixed):
    # neither version keeps memory: what memray finds alive at detach is requests in flight
    for run in (baseline, fixed):
        assert [f for f in run.findings if f.kind == "memory_growth"] == []
