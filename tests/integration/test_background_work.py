"""Work outside requests is a group of its own, named by what ran it: an asyncio task's
coroutine or a thread's name, in the bundle, in findings and in the report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deskprof.bundle.reader import open_capture
from tests.apps.launch import DESKPROF, capture_app
from tests.apps.models import init_db

pytestmark = pytest.mark.integration

LOOP = "BACKGROUND task refresh_loop"


def test_background_task_and_thread_are_groups_in_findings_and_report(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    init_db(database)
    bundle = tmp_path / "bundle"
    env = {"TESTAPP_DATABASE_URL": database, "ITEMS_PREFIX": ""}
    proc = capture_app(
        "background_app", bundle, workload="items.py", sources="sql", duration_s=4, users=2, env=env
    )
    assert proc.returncode == 0, proc.stderr
    queries = open_capture(bundle).queries
    outside = queries[queries["request_id"] == ""]
    groups = set(outside["endpoint"])
    assert {LOOP, "BACKGROUND thread cleanup"} <= groups, groups
    assert (queries.loc[queries["request_id"] != "", "context"] == "").all()
    assert not (outside["endpoint"] == "").any(), "every statement outside requests is named"

    findings = subprocess.run(
        [*DESKPROF, "findings", str(bundle), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert findings.returncode == 0, findings.stderr
    slow = [f for f in json.loads(findings.stdout)["findings"] if f["kind"] == "slow_query"]
    loop = [f for f in slow if f["endpoint"] == LOOP]
    assert loop, [(f["kind"], f["endpoint"]) for f in slow]
    runs = outside[(outside["endpoint"] == LOOP) & outside["statement"].str.startswith("WITH")]
    assert loop[0]["affected_requests"] == len(runs) > 0, "counted in runs, not requests"
    text = subprocess.run(
        [*DESKPROF, "findings", str(bundle)], capture_output=True, text=True, timeout=120
    ).stdout
    assert LOOP in text and "ms per run x" in text, text

    report = tmp_path / "report.md"
    made = subprocess.run(
        [*DESKPROF, "report", str(bundle), "--out", str(report)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert LOOP in report.read_text(encoding="utf-8")
