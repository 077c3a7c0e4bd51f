"""The findings-quality benchmark: small apps reproducing what real apps do, each with
the findings it must give and nothing else. ``tests/integration/test_findings_quality.py``
runs it in CI (every expected finding, no unexpected one); ``make bench`` prints
precision and recall per detector (``benchmarks/findings_quality.py``).

Each case is captured with ``deskprof capture --launch`` under a locustfile that knows
nothing of deskprof, and judged from ``deskprof findings --format json``, as a user
would run them. A finding is ``(kind, endpoint)``; an expected one may also name where
its call site must point or what its index must be.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.apps.launch import DESKPROF, ROOT, capture_app
from tests.apps.models import init_db


@dataclass(frozen=True)
class Expected:
    kind: str
    endpoint: str
    # text the finding's first evidence must hold: where its call site points, its index
    evidence_has: str = ""


@dataclass(frozen=True)
class Case:
    """One app, how it is captured, and the findings it must give (and only those)."""

    name: str
    app: str
    workload: str
    sources: str
    expected: tuple[Expected, ...]
    server: str = "uvicorn"
    async_database: bool = False
    users: int = 2
    duration_s: int = 5
    pattern: str = ""  # what real apps do that this reproduces
    env: dict[str, str] = field(default_factory=dict)


CASES: tuple[Case, ...] = (
    Case(
        "template-lazy-loads",
        "template_app",
        "items.py",
        "sql",
        (Expected("n_plus_one", "GET /items", "templates/items.html:3"),),
        server="gunicorn",
        pattern="a server-rendered page whose template lazy-loads each row's owner",
    ),
    Case(
        "async-session-n-plus-one",
        "async_app",
        "items.py",
        "sql",
        (Expected("n_plus_one", "GET /items", "tests/apps/async_app.py"),),
        async_database=True,
        pattern="async SQLAlchemy awaiting one session.get per row",
    ),
    Case(
        "background-writer-and-loop",
        "background_app",
        "items.py",
        "sql",
        (
            Expected("slow_query", "BACKGROUND task refresh_loop"),
            Expected("n_plus_one", "GET /items", "tests/apps/background_app.py"),
        ),
        pattern="a start-up task with a slow statement and a clean-up thread beside requests",
    ),
    Case(
        "idle-c-threads",
        "idle_threads_app",
        "work.py",
        "cpu,sql",  # the probe's requests tie the samples to their endpoint
        (Expected("cpu_hotspot", "GET /work"),),
        users=1,
        pattern="threads idle inside C calls beside a CPU-bound handler",
    ),
    Case(
        "hot-row-writes",
        "hot_row_app",
        "views.py",
        "sql",
        (Expected("write_contention", "GET /items/{item_id}", "tests/apps/hot_row_app.py"),),
        users=4,
        pattern="a view counter updated by primary key on every page view, then rendering",
    ),
    Case(
        "index-mistakes",
        "events_app",
        "events.py",
        "sql",
        (
            Expected("weak_index", "GET /events/recent"),
            Expected("missing_index", "GET /events/board", "coalesce"),
        ),
        pattern="a lookup by a two-valued status beside a selective range; an expression sort",
    ),
)


def run_case(case: Case, workdir: Path) -> list[dict]:
    """Capture ``case`` under ``workdir`` and return its findings (the CLI's JSON)."""
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "app.sqlite3"
    init_db(f"sqlite:///{database}")
    env = {"TESTAPP_DATABASE_URL": f"sqlite:///{database}", "ITEMS_PREFIX": "", **case.env}
    if case.async_database:
        env["TESTAPP_ASYNC_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    bundle = workdir / "bundle"
    proc = capture_app(
        case.app, bundle, workload=case.workload, sources=case.sources,
        duration_s=case.duration_s, users=case.users, env=env, server=case.server,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{case.name}: capture failed: {proc.stderr.strip()[-2000:]}")
    findings = subprocess.run(
        [*DESKPROF, "findings", str(bundle), "--format", "json",
         "--explain-database", f"sqlite:///{database}"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    if findings.returncode != 0:
        raise RuntimeError(f"{case.name}: findings failed: {findings.stderr.strip()}")
    return json.loads(findings.stdout)["findings"]


def judge(case: Case, findings: Iterable[dict]) -> tuple[set, set, list[str]]:
    """(true positives, false positives, problems): a finding matches an expected one by
    kind and endpoint, and by what its evidence holds when the expectation names it."""
    found = list(findings)
    matched: set[tuple[str, str]] = set()
    problems = []
    for want in case.expected:
        hits = [f for f in found if (f["kind"], f["endpoint"]) == (want.kind, want.endpoint)]
        if not hits:
            problems.append(f"missing {want.kind} at {want.endpoint}")
            continue
        shown = [json.dumps(f["evidence"][0]) for f in hits]
        if want.evidence_has and not any(want.evidence_has in text for text in shown):
            problems.append(
                f"{want.kind} at {want.endpoint}: no {want.evidence_has!r} in {shown[0][:300]}"
            )
            continue
        matched.add((want.kind, want.endpoint))
    wanted = {(w.kind, w.endpoint) for w in case.expected}
    unexpected = {(f["kind"], f["endpoint"]) for f in found} - wanted
    problems += [f"unexpected {kind} at {endpoint}" for kind, endpoint in sorted(unexpected)]
    return matched, unexpected, problems
