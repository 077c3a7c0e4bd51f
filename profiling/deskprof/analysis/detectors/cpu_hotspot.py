"""CPU hot spots: application functions holding a large share of an endpoint's CPU.

Samples are charged to their owner, the first application frame from the leaf (see
:mod:`deskprof.analysis.stackframes`). A CPU hot spot is the application's *own* CPU: its
code and the standard library it calls. Two kinds of on-CPU samples are kept out of it.
Database calls (the leaf is SQLAlchemy's DBAPI call or a driver's frame) are the
database's time, which the SQL detectors report; with SQLite the engine runs inside the
worker, so without this rule every N+1 shows up a second time as a "hot spot" of the
function that lazy-loads. Work inside a third-party library (the ORM building objects, a
serializer) is that library's: charged to the calling function it would make a "hot spot"
of every ORM-heavy handler of a healthy service, since some caller always holds a fifth of
an endpoint's CPU. Library time still counts in the endpoint's CPU (the share's
denominator); database time does not. Idle and event-loop leaves are dropped, even if a
sample was classified on-CPU.

Application code is the request handlers' packages wherever they are installed (plus
those the user names; :func:`deskprof.analysis.stackframes.app_packages`), so a service
installed with pip gets hot spots in its own code. A library that does much of an
endpoint's CPU *on the service's behalf* (a serializer, a template engine, protobuf's JSON
conversion) is a finding of its own, at a higher bar (``cpu_library_min_share``), naming
the library and the application function that called it. Database libraries (the ORM,
the drivers) are left to the SQL detectors, which count their cost as queries; with no
application frame on the stack, the time is the server's, not the service's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from deskprof.analysis.cpu_time import cpu_weight
from deskprof.analysis.deliberate import ADVICE, deliberate_cost
from deskprof.analysis.finding import Finding, Thresholds, combine, group_findings
from deskprof.analysis.sqltext import short_site
from deskprof.analysis.stackframes import (
    is_application,
    requests_per_endpoint,
    short_owner,
    stack_table,
)
from deskprof.bundle.frames import parse_frame

# their CPU is the queries' cost, which the SQL detectors report
DATABASE_LIBRARIES = frozenset(
    {"sqlalchemy", "sqlmodel", "psycopg", "psycopg2", "psycopg_pool", "asyncpg", "aiosqlite",
     "pymysql", "MySQLdb", "oracledb", "alembic"}
)  # fmt: skip


def detect_cpu_hotspots(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    requests: pd.DataFrame,
    *,
    thresholds: Thresholds | None = None,
    rate_hz: float = 100.0,
    app_packages: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Per endpoint, the application functions whose own CPU (see the module doc) holds at
    least ``cpu_min_share`` of the endpoint's on-CPU samples outside database calls (and
    ``cpu_min_samples``). Saving = that function's CPU time per request (an upper bound:
    what removing the work entirely would give)."""
    t = thresholds or Thresholds()
    on_cpu = samples[(samples["state"] == "cpu") & (samples["endpoint"] != "")]
    if on_cpu.empty:
        return []
    # CPU time, not samples that wanted a CPU: weighted by the kernel's on-CPU share
    on_cpu = on_cpu.assign(n_samples=cpu_weight(on_cpu, rate_hz))
    info = stack_table(stacks, app_packages)
    on_cpu = on_cpu.join(info, on="stack_id", how="inner")
    on_cpu = on_cpu[~on_cpu["idle"]]
    in_database = on_cpu[on_cpu["cpu_kind"] == "database"].groupby("endpoint")["n_samples"].sum()
    on_cpu = on_cpu[on_cpu["cpu_kind"] != "database"]
    per_endpoint = requests_per_endpoint(requests)
    findings = []
    for endpoint, rows in on_cpu.groupby("endpoint", sort=False):
        total = float(rows["n_samples"].sum())
        library = float(rows.loc[rows["cpu_kind"] == "library", "n_samples"].sum())
        own = rows[rows["cpu_kind"] == "own"]
        by_owner = own.groupby("owner")["n_samples"].sum().sort_values(ascending=False)
        for owner, count in by_owner.items():
            share = float(count) / total
            if share < t.cpu_min_share or count < t.cpu_min_samples:
                continue
            caller = short_owner(owner)
            mine = own[own["owner"] == owner]
            findings.append(
                _hotspot(
                    endpoint,
                    mine,
                    total,
                    per_endpoint,
                    rate_hz,
                    subject={"function": owner, "called_by": _callers(mine, stacks, owner)},
                    extra={
                        "endpoint_library_samples": int(library),
                        "database_samples_left_out": int(in_database.get(endpoint, 0)),
                    },
                    title=f"CPU hot spot: {caller} holds {share:.0%} of the endpoint's CPU",
                    fix=_own_fix(caller),
                    basis="upper bound: all of this function's CPU time per request",
                )
            )
        findings += _library_hotspots(endpoint, rows, total, per_endpoint, t, rate_hz, app_packages)
    return _by_module(findings)


def _own_fix(functions: str) -> str:
    return (
        f"Make {functions} cheaper: replace per-item loops with arithmetic or SQL (a closed "
        "form, an aggregate), or compute it once and cache it."
    )


def _callers(rows: pd.DataFrame, stacks: pd.DataFrame, owner: str, most: int = 3) -> list[str]:
    """The frames that called ``owner`` on its heaviest stack, nearest first: whose work
    it is doing (a date formatter called by a CSV export is the export's)."""
    heaviest = rows.groupby("stack_id")["n_samples"].sum().idxmax()
    found = stacks.loc[stacks["stack_id"] == heaviest, "frames"]
    frames = list(found.iloc[0]) if len(found) and found.iloc[0] is not None else []
    function, file, _ = parse_frame(owner)
    at = [i for i, frame in enumerate(frames) if parse_frame(frame)[:2] == (function, file)]
    return [str(f) for f in reversed(frames[: at[0]])][:most] if at else []


def _by_module(findings: list[Finding]) -> list[Finding]:
    """Own-code hot spots of one module, whatever the endpoint, as one finding: an SLA
    module whose minute loop and its helper are hot behind three endpoints is one cause
    with one fix, not six findings. Library hot spots and by-design ones stay apart."""

    def own(finding: Finding) -> bool:
        first = finding.evidence[0]
        return "function" in first and not first.get("by_design")

    out = [f for f in findings if not own(f)]
    groups = group_findings(
        [f for f in findings if own(f)], lambda f: parse_frame(f.evidence[0]["function"])[1]
    )
    for module, group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        functions = list(dict.fromkeys(short_owner(f.evidence[0]["function"]) for f in group))
        endpoints = list(
            dict.fromkeys(f.endpoint for f in sorted(group, key=lambda f: -f.total_saving_ms))
        )
        merged = combine(group, {"functions": functions, "endpoints": endpoints})
        names = ", ".join(function.split(" (")[0] for function in functions)
        merged.title = (
            f"CPU hot spot: {names} ({short_site(module)}) behind "
            f"{len(endpoints)} endpoint{'s' if len(endpoints) > 1 else ''}"
        )
        merged.fix = _own_fix(names) + " Every endpoint listed gains."
        out.append(merged)
    return out


def _library_hotspots(
    endpoint: str,
    rows: pd.DataFrame,
    total: float,
    per_endpoint: pd.Series,
    t: Thresholds,
    rate_hz: float,
    app_packages: frozenset[str],
) -> list[Finding]:
    """One endpoint's library CPU by library, whichever application functions called it
    (a search engine's index writer reached from two callers is one cost): those holding
    at least ``cpu_library_min_share`` of its CPU, callers in the evidence."""
    library = rows[(rows["cpu_kind"] == "library") & (rows["library"] != "")]
    library = library[~library["library"].isin(DATABASE_LIBRARIES)]
    # an owner that is not application code means no application frame was on the stack
    called = library["owner"].map(lambda owner: is_application(parse_frame(owner)[1], app_packages))
    library = library[called]
    if library.empty:
        return []
    out = []
    grouped = library.groupby("library")["n_samples"].sum()
    for package, count in grouped.sort_values(ascending=False).items():
        share = float(count) / total
        if share < t.cpu_library_min_share or count < t.cpu_min_samples:
            continue
        mine = library[library["library"] == package]
        callers = mine.groupby("owner")["n_samples"].sum().sort_values(ascending=False)
        owner = str(callers.index[0])
        caller = short_owner(owner)
        more = f" and {len(callers) - 1} more" if len(callers) > 1 else ""
        out.append(
            _hotspot(
                endpoint,
                mine,
                total,
                per_endpoint,
                rate_hz,
                subject={"library": package, "called_from": owner},
                extra={
                    "callers": {short_owner(str(k)): int(v) for k, v in callers.head(5).items()}
                },
                title=f"CPU hot spot: {package} called from {caller}{more} holds {share:.0%} of "
                "the endpoint's CPU",
                fix=(
                    f"{caller}{more} spend{'' if more else 's'} this in {package}: call it less "
                    "(once per request, not per item), on less data, or cache its result; "
                    f"check for a faster mode of {package} (a C extension, a compiled or "
                    "cached form)."
                ),
                basis="upper bound: all of this library's CPU time per request on the "
                "application's behalf",
            )
        )
    return out


def _hotspot(
    endpoint: str,
    rows: pd.DataFrame,
    total: float,
    per_endpoint: pd.Series,
    rate_hz: float,
    *,
    subject: dict[str, Any],
    extra: dict[str, Any],
    title: str,
    fix: str,
    basis: str,
) -> Finding:
    """One hot spot from its CPU-weighted ``rows`` (a function's own time, or a library's
    on a caller's behalf) within the endpoint's ``total``: share, milliseconds per
    request, top leaves and severity are worked out the same way for both."""
    count = float(rows["n_samples"].sum())
    share = count / total
    cpu_ms = count / rate_hz * 1000.0
    requests = int(per_endpoint.get(endpoint, 0))
    per_request = cpu_ms / (float(requests) or 1.0)
    by_leaf = rows.groupby("leaf")["n_samples"].sum().sort_values(ascending=False)
    leaves = by_leaf.head(3)
    by_design = deliberate_cost(
        by_leaf.head(20).to_dict(), str(subject.get("function", "")), subject.get("called_by", [])
    )
    if by_design:  # paid on purpose: no saving proposed, no rewrite advised
        title = f"{title} (by design: {by_design})"
        fix, basis = ADVICE[by_design], f"none proposed: {by_design} is a cost paid on purpose"
    evidence = {
        "endpoint": endpoint,
        **subject,
        "samples": int(count),
        "endpoint_cpu_samples": int(total),
        **extra,
        "share_of_endpoint_cpu": round(share, 3),
        "cpu_ms_total": round(cpu_ms, 1),
        "cpu_ms_per_request": round(per_request, 3),
        "requests": requests,
        "rate_hz": rate_hz,
        "top_leaf_frames": {str(k): int(v) for k, v in leaves.items()},
        "by_design": by_design,
        "saving_basis": basis,
    }
    return Finding(
        kind="cpu_hotspot",
        severity="low" if by_design else ("high" if share >= 0.5 else "medium"),
        endpoint=endpoint,
        title=title,
        evidence=[evidence],
        estimated_saving_ms=0.0 if by_design else per_request,
        fix=fix,
        affected_requests=requests,
    )
