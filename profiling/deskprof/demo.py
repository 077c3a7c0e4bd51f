"""The newcomer's tour, end to end: what ``make demo`` runs.

Seed the reference OpenDesk's medium data set (once), capture the first version under load with
every source, capture again with every fix on, run one before/after experiment (every
fix vs the first version, on the ticket list), write ``data/findings/demo.html`` and
``demo.md``, and stop everything it started. Each step says what it is doing; a step that
fails says why in one line, and what was produced before it is kept.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deskprof import lab, paths
from deskprof.analysis.finding_text import findings_text
from deskprof.analysis.findings import detect_all
from deskprof.capturing.session import capture
from deskprof.experiment import Design, Experiment, ExperimentResult
from deskprof.reporting import report

STEPS = 6


@dataclass
class DemoOptions:
    # medium (10k tickets): every planted problem is measurably real and a single worker
    # keeps up with the tour; on the demo set (100k) the first version's exports and
    # reports outlast a 30 s capture, so what they cost never reaches the bundle
    size: str = "medium"
    capture_s: float = 30.0
    users: int = 6
    workload: str = "tour"
    trial_s: float = 8.0
    blocks: int = 3
    warmup_s: float = 2.0
    # the first version's ticket list takes ~0.15 s on the medium data (~0.8 s on demo):
    # 3 requests/s keeps a single worker under its capacity, so trials measure latency
    # rather than a queue (use --rate 1 with --size demo)
    rate: float = 3.0
    workers: int = 1
    findings_dir: Path = field(default_factory=lambda: lab.data_dir() / "findings")
    name: str = "demo"
    progress: Callable[[str], None] = field(
        default=lambda line: print(f"[demo] {line}", file=sys.stderr, flush=True)
    )


@dataclass
class DemoResult:
    baseline: Path
    fixed: Path
    experiment: ExperimentResult
    html: Path
    markdown: Path
    seconds: float


def _copy_database(seeded: str, name: str) -> str:
    """A private copy of the seeded SQLite file (other URLs are used as they are)."""
    if not seeded.startswith("sqlite:///"):
        return seeded
    source = Path(seeded.removeprefix("sqlite:///"))
    target = source.with_name(f"{source.stem}-{name}{source.suffix}")
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def run_demo(options: DemoOptions | None = None) -> DemoResult:
    """The whole tour; returns where everything went."""
    o = options or DemoOptions()
    say = o.progress
    started = time.monotonic()

    def step(number: int, text: str) -> None:
        say(f"[{number}/{STEPS}] {text} ({time.monotonic() - started:.0f} s so far)")

    step(1, f"seeding the {o.size} data set (once; later runs reuse it)")
    seeded = lab.reference_database(o.size)
    captures: dict[str, Path] = {}
    databases: dict[str, str] = {}
    for number, (role, fixes) in enumerate((("baseline", "none"), ("fixed", "all")), start=2):
        step(number, f"capturing the {role} service (OPENDESK_FIXES={fixes}) for {o.capture_s:g} s")
        # each run on its own copy: `serve` migrates indexes to match its fixes, and the
        # report EXPLAINs each capture's queries on the database as that capture saw it
        database = databases[role] = _copy_database(seeded, f"{o.name}-{role}")
        launch = lab.reference_launch(fixes=fixes, database_url=database, workers=o.workers)
        result = capture(
            **launch.capture_kwargs(),
            duration_s=o.capture_s,
            workload=o.workload,
            users=o.users,
            out=lab.capture_dir(f"{o.name}-{role}"),
            label=f"{o.name}-{role}",
            progress=lambda line, role=role: say(f"      {role}: {line}"),
        )
        captures[role] = Path(result.path)
        found = detect_all(result, explain_url=database)
        say(f"      {role}: {result.status}, {len(found)} findings")
        for line in findings_text(list(found)[:8]):
            say(f"        {line.severity_label:<6} {line.kind:<17} {line.where}")

    step(4, "experiment: every fix vs the first version, on the ticket list")
    launch = lab.reference_launch(database_url=seeded, workers=o.workers)
    experiment = Experiment(
        # each arm on its own database copy: they differ in the index migration
        baseline=launch.variant(
            "first version",
            OPENDESK_FIXES="none",
            OPENDESK_DATABASE_URL=_copy_database(seeded, f"{o.name}-experiment-baseline"),
        ),
        candidate=launch.variant(
            "every fix",
            OPENDESK_FIXES="all",
            OPENDESK_DATABASE_URL=_copy_database(seeded, f"{o.name}-experiment-candidate"),
        ),
        workload="ticket_list",
        rate=o.rate,
        trial_s=o.trial_s,
        design=Design(blocks=o.blocks, warmup_s=o.warmup_s),
        endpoints=["GET /tickets"],
        out=paths.run_dir("experiments", o.name),
        label=f"{o.name}-every-fix",
        progress=lambda line: say(f"      {line}"),
    ).run()
    say(f"      GET /tickets p50: {experiment.verdict('GET /tickets')}")

    step(5, "writing the report")
    inputs = [captures["baseline"], captures["fixed"], experiment]
    title = "deskprof demo: the reference OpenDesk, before and after its fixes"
    explain = {str(captures[role]): databases[role] for role in captures}
    html = report(inputs, o.findings_dir / f"{o.name}.html", title=title, explain_url=explain)
    markdown = report(inputs, o.findings_dir / f"{o.name}.md", title=title, explain_url=explain)
    step(6, "done; everything the demo started has stopped")
    return DemoResult(
        captures["baseline"],
        captures["fixed"],
        experiment,
        html,
        markdown,
        time.monotonic() - started,
    )
