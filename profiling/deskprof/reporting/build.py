"""Build a ``ReportDocument`` from capture bundles and experiment results.

Each input becomes one section: a capture shows its summary (target, workload, window,
overhead, partial or not), ranked findings with evidence, the per-endpoint table, the
query profile, the interactive flame graph and figures; an experiment shows its verdict
table, ratio plot, latency ECDFs per arm and, when its arms were captured, the
differential flame graph and the query diff. Everything passes through
``deskprof.redact`` on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from deskprof.analysis.capture_compare import compare_findings, endpoint_deltas
from deskprof.analysis.compare import query_diff
from deskprof.analysis.digest import overall_stats, query_profile
from deskprof.analysis.endpoints import endpoint_summary
from deskprof.analysis.finding import DICT_KEYS, Finding
from deskprof.analysis.finding_text import by_design_line, finding_text, format_number, skip_line
from deskprof.analysis.findings import detect_all
from deskprof.analysis.server_statements import reconcile_statements
from deskprof.bundle.experiment import RESULT_FILE
from deskprof.bundle.reader import Capture, open_capture
from deskprof.bundle.schema import MANIFEST
from deskprof.errors import DeskprofError
from deskprof.experiment.result import ExperimentResult, load_result
from deskprof.redact import scrub_sql, scrub_text, scrub_value
from deskprof.reporting.document import Embed, Figure, ReportDocument, Section, Table

TOP_QUERIES = 15
REPORT_METRICS = ("p50_ms", "p95_ms", "throughput_rps", "queries_per_request", "db_ms_per_request")


def _utc(ns: int | None) -> str:
    if not ns:
        return "?"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def overhead_table(overhead: dict[str, Any]) -> Table:
    """The manifest's overhead estimate as rows of (source, measure, value): it used to be
    one long ``key=value`` line nobody read."""
    rows = []
    for source, detail in sorted(overhead.items()):
        items = detail.items() if isinstance(detail, dict) else [("value", detail)]
        for key, value in items:
            if isinstance(value, dict | list) or key == "note":
                continue
            rows.append({"source": source, "measure": key.replace("_", " "), "value": value})
    frame = pd.DataFrame(rows, columns=["source", "measure", "value"])
    notes = [
        f"{source}: {detail['note']}"
        for source, detail in sorted(overhead.items())
        if isinstance(detail, dict) and detail.get("note")
    ]
    return Table(
        "Overhead estimate",
        frame,
        "What the capture cost the target, as each source measured it. " + " ".join(notes),
    )


def _requests_text(integrity: dict[str, Any]) -> str:
    """Client and server met: how many answered requests the probe recorded too."""
    requests = integrity.get("requests")
    if not requests:
        return "not reconciled (no workload or no probe in this capture)"
    answered, matched = requests.get("workload_answered", 0), requests.get("matched", 0)
    share = f" ({matched / answered:.1%})" if answered else ""
    return (
        f"{matched:,} of {answered:,} answered matched to the probe's records{share}; "
        f"{requests.get('probe_seen', 0):,} recorded by the probe, "
        f"{requests.get('probe_only', 0):,} of them not from the workload"
    )


def _samples_text(integrity: dict[str, Any]) -> str:
    """How the on-CPU samples found their request: by the task that ran, the handler on
    the stack, the request on the thread at the time, or not at all (idle threads are
    not counted: they belong to no request)."""
    samples = integrity.get("samples")
    if not samples:
        return "no CPU samples"
    on_cpu = samples.get("on_cpu")
    if isinstance(on_cpu, dict):
        return _attribution_shares(on_cpu, "on-CPU samples")
    return _attribution_shares(samples, "samples")


def _attribution_shares(samples: dict[str, Any], what: str) -> str:
    labels = {"task": "by task", "stack": "by handler on the stack", "time": "by time window"}
    counts = {key: int(samples.get(key, 0)) for key in (*labels, "none")}
    total = sum(counts.values())
    if not total:
        return "no CPU samples"
    parts = [f"{labels.get(key, 'not attributed')} {n / total:.0%}" for key, n in counts.items()]
    return f"{total:,} {what}: " + ", ".join(parts)


def _server_fact(integrity: dict[str, Any]) -> list[tuple[str, str]]:
    """The probe's statements against PostgreSQL's own count, when pg_stat_statements
    was loaded during the capture."""
    queries = integrity.get("queries")
    if not queries or not queries.get("pg_stat_statements_calls"):
        return []
    ratio = queries.get("ratio_probe_to_server")
    shown = f" ({ratio:.1%})" if isinstance(ratio, float) else ""
    return [
        (
            "database server",
            f"pg_stat_statements counted {queries['pg_stat_statements_calls']:,} statements; "
            f"the probe saw {queries.get('probe_succeeded', 0):,} succeed{shown} "
            "(the server also counts other clients and the capture's own queries)",
        )
    ]


def _server_table(capture: Capture) -> Table:
    table = reconcile_statements(capture.queries, capture.db_statements).head(TOP_QUERIES)
    table["fingerprint"] = table["fingerprint"].map(lambda s: scrub_sql(str(s))[:300])
    return Table(
        f"Database server: pg_stat_statements beside the probe (top {TOP_QUERIES})",
        table.drop(columns=["fingerprint_id"]),
        "server_ms is PostgreSQL's execution time; outside_server_ms is the probe's time "
        "minus it (round trip, driver, waiting); cache_hit_share is shared buffers hit over "
        "hit + read. A statement with server calls and no probe calls came from another "
        "client or from code the probe was not in.",
    )


def _revision(target: dict[str, Any]) -> str:
    """The target's revision and its source; older bundles recorded deskprof's own
    revision as ``git_revision``, which says nothing about the target."""
    if target.get("revision"):
        return f"{str(target['revision'])[:12]} ({target.get('revision_source', '?')})"
    return str(target.get("revision_source") or "unknown")


def capture_facts(capture: Capture) -> list[tuple[str, str]]:
    """The capture's summary lines: what was watched, how, for how long, how complete."""
    m = capture.manifest
    target, workload, options, tools = m.target, m.workload or {}, m.options, m.tools
    load = workload.get("scenario", "none")
    if workload:
        load += (
            f", open loop at {workload.get('rate_per_s')} req/s"
            if workload.get("mode") == "open"
            else f", closed loop, {workload.get('users')} users"
        )
    sources = options.get("sources", [])
    opendesk = bool(target.get("opendesk_fixes")) or "opendesk" in str(target.get("command"))
    facts = [
        ("status", m.status),
        ("target", f"{target.get('url', options.get('url', '?'))}"),
        *([("OPENDESK_FIXES", target.get("opendesk_fixes") or "none")] if opendesk else []),
        ("command", target.get("command") or f"attached to PIDs {target.get('pids')}"),
        ("target revision", _revision(target)),
        (
            "deskprof",
            f"{tools.get('deskprof', '?')} ({str(tools.get('deskprof_revision') or '?')[:12]})",
        ),
        ("window", f"{_utc(m.start_ns)}, {m.duration_s or 0:.1f} s"),
        ("workload", load),
        ("sources", ", ".join(sources)),
        *(
            [("CPU sampling", f"py-spy at {options.get('cpu_rate_hz', '?')} Hz")]
            if "cpu" in sources
            else []
        ),
        *(
            [("memory mode", f"memray {options.get('memory_mode', '?')}")]
            if "memory" in sources
            else []
        ),
        ("rows", ", ".join(f"{k} {v:,}" for k, v in sorted(m.counts.items()))),
        ("requests", _requests_text(m.integrity or {})),
        ("CPU attribution", _samples_text(m.integrity or {})),
        *_server_fact(m.integrity or {}),
        ("overhead estimate", "see the table 'Overhead estimate' below"),
        ("tools", ", ".join(f"{k} {v}" for k, v in sorted(tools.items()) if v)),
    ]
    return [(key, scrub_text(str(value))) for key, value in facts]


def _query_anchor(number: int, fingerprint_id: str) -> str:
    """The id of a fingerprint's row in capture ``number``'s query profile."""
    return f"query-{number}-{fingerprint_id}"


def _profile_table(capture: Capture, number: int, profile: pd.DataFrame) -> Table:
    stats = overall_stats(capture.queries)
    shown = pd.DataFrame(
        {
            "rank": profile["rank"],
            "fingerprint": profile["fingerprint"].map(lambda s: scrub_sql(str(s))[:300]),
            "calls": profile["calls"],
            "total_ms": profile["total_ms"],
            "mean_ms": profile["mean_ms"],
            "p95_ms": profile["p95_ms"],
            "share": profile["share"],
            "endpoints": profile["endpoints"].map(lambda v: ", ".join(list(v)[:3])),
            "call sites": profile["call_sites"].map(lambda v: ", ".join(list(v)[:2])),
        }
    )
    note = ", ".join(
        f"{k.replace('_', ' ')} {format_number(v, k)}"
        for k, v in stats.items()
        if not isinstance(v, dict | list) and not k.endswith("_ns")  # clock values: no use
    )
    return Table(
        f"Query profile (top {TOP_QUERIES} fingerprints by total time)",
        shown,
        f"Measured by the in-process probe around each DBAPI execute. {note}",
        row_ids=[_query_anchor(number, fp_id) for fp_id in profile["fingerprint_id"]],
    )


def _endpoint_table(capture: Capture) -> Table:
    summary = endpoint_summary(capture)
    shown = summary.drop(columns=["bytes_allocated", "peak_bytes"]).assign(
        allocated_mib=summary["bytes_allocated"] / 2**20, peak_mib=summary["peak_bytes"] / 2**20
    )
    shown.columns = [c.replace("_per_request", "/req") for c in shown.columns]
    return Table(
        "Per endpoint",
        shown,
        "Latency from the probe (server time); CPU and waiting seconds from py-spy samples "
        f"at {capture.cpu_rate_hz:g} Hz attributed by the handler on the stack; DB time "
        "from the probe; bytes from memray.",
    )


def _capture_figures(capture: Capture, findings: list[dict[str, Any]]) -> list[Figure]:
    from deskprof import views

    figures = []
    latency_source = capture.workload if len(capture.workload) else capture.requests
    if len(latency_source):
        figures.append(
            Figure.from_matplotlib(
                views.latency_ecdf(latency_source),
                "Latency ECDF per endpoint",
                "client latency from the intended send time (load generator)"
                if len(capture.workload)
                else "server time (probe)",
            )
        )
    if len(capture.requests) or len(capture.metrics):
        figures.append(
            Figure.from_matplotlib(
                views.timeline(
                    capture.requests,
                    capture.queries,
                    capture.metrics,
                    capture.memory,
                    start_ns=capture.manifest.start_ns,
                ),
                "Timeline",
                "requests, queries, CPU and RSS on one clock (seconds since capture start)",
            )
        )
    if len(capture.queries):
        figures.append(
            Figure.from_matplotlib(
                views.query_profile_plot(query_profile(capture.queries)),
                "Query profile",
                "DB time per fingerprint",
            )
        )
    if findings:
        figures.append(
            Figure.from_matplotlib(
                views.findings_summary_plot(pd.DataFrame(findings)),
                "Findings",
                "estimated time saved per request, by severity",
            )
        )
    return figures


def _fingerprint_ids(capture: Capture) -> dict[str, str]:
    """Fingerprint text -> id, for findings whose evidence names the text only."""
    if not len(capture.queries):
        return {}
    first = capture.queries.drop_duplicates("fingerprint_id")
    return dict(
        zip(first["fingerprint"].astype(str), first["fingerprint_id"].astype(str), strict=True)
    )


def finding_links(
    finding: Any, number: int, ids: dict[str, str], shown: set[str], has_samples: bool
) -> dict[str, Any]:
    """Where a finding's evidence is in the report: its statements' rows in the query
    profile (those shown there) and the frames to search for in the flame graph."""
    queries, search = [], ""
    for row in finding.evidence:
        if not isinstance(row, dict):
            continue
        for key in ("fingerprint", "page_fingerprint", "count_fingerprint"):
            fp_id = row.get("fingerprint_id") if key == "fingerprint" else None
            fp_id = fp_id or ids.get(str(row.get(key, "")))
            anchor = _query_anchor(number, fp_id) if fp_id in shown else ""
            if anchor and anchor not in queries:
                queries.append(anchor)
        if not search:
            frame = row.get("function") or row.get("called_from") or row.get("call_function")
            search = str(frame).split(" (")[0].split("<locals>")[0].rstrip(".") if frame else ""
    return {
        "queries": queries[:5],
        "flamegraph": f"flamegraph-{number}" if has_samples and search else "",
        "search": search,
    }


def capture_section(
    capture: Capture,
    *,
    number: int = 1,
    explain_url: str | None = None,
    app_packages: tuple[str, ...] = (),
) -> Section:
    """Everything a reader needs about one capture."""
    from deskprof.views import flamegraph_html

    label = capture.manifest.label.strip("-") or capture.path.name
    section = Section(f"capture-{number}", f"Capture: {scrub_text(label)}")
    section.facts = capture_facts(capture)
    section.notices = [scrub_text(f"partial: {r}") for r in capture.partial_reasons]
    section.notices += [scrub_text(w) for w in capture.warnings]
    found = detect_all(capture, explain_url=explain_url, app_packages=app_packages)
    section.findings = [scrub_value(f.to_dict()) for f in found]
    section.by_design = [scrub_text(by_design_line(f)) for f in found.by_design]
    ids = _fingerprint_ids(capture)
    profile = query_profile(capture.queries, top=TOP_QUERIES)
    shown = set(profile["fingerprint_id"])
    section.finding_links = [
        finding_links(f, number, ids, shown, bool(len(capture.samples))) for f in found
    ]
    section.notices += [
        scrub_sql(skip_line(skip)) for skip in found.skipped if skip.get("statement")
    ]
    if len(capture.requests):
        section.tables.append(_endpoint_table(capture))
    if len(capture.queries):
        section.tables.append(_profile_table(capture, number, profile))
    if len(capture.db_statements):
        section.tables.append(_server_table(capture))
    if capture.manifest.overhead:
        section.tables.append(overhead_table(capture.manifest.overhead))
    if len(capture.samples):
        section.embeds.append(
            Embed(
                "CPU flame graph",
                flamegraph_html(
                    capture.samples,
                    capture.stacks,
                    title=f"CPU flame graph: {label}",
                    rate_hz=capture.cpu_rate_hz,
                ),
                "Click a frame to zoom, search by name, filter by endpoint, switch between "
                "on-CPU and waiting.",
                element_id=f"flamegraph-{number}",
            )
        )
    section.figures = _capture_figures(capture, section.findings)
    return section


def _arm_facts(result: ExperimentResult) -> list[tuple[str, str]]:
    config = result.config
    design = config.get("design") or {}
    workload = config.get("workload") or {}
    facts = [("status", result.status)]
    for role in ("baseline", "candidate"):
        variant = config.get(role) or {}
        facts.append((role, f"{variant.get('kind', '?')}: {variant.get('name', '?')}"))
    facts += [
        (
            "workload",
            f"{workload.get('scenario', '?')}, {workload.get('mode', '?')} loop"
            + (f" at {workload['rate_per_s']} req/s" if workload.get("rate_per_s") else ""),
        ),
        (
            "design",
            f"{design.get('kind', '?')}: {design.get('blocks', '?')} blocks, "
            f"{design.get('trials_per_arm', '?')} trials per arm "
            f"of {config.get('trial_s', '?')} s, "
            f"warm-up {design.get('warmup_s', '?')} s after each switch, "
            f"{design.get('state', '?')} state",
        ),
        ("statistics", str(config.get("statistics", "?"))),
        ("noise threshold", f"{config.get('threshold', 0.02):.0%}"),
        (
            "deskprof revision",
            str(config.get("deskprof_revision") or config.get("git_revision") or "?")[:12],
        ),
        ("started", str(config.get("started", "?"))),
    ]
    return [(key, scrub_text(value)) for key, value in facts]


def experiment_section(result: ExperimentResult, *, number: int = 1) -> Section:
    """The verdicts, with how they were measured, and the evidence behind them."""
    from deskprof import views

    name = result.config.get("label") or (result.path.name if result.path else "experiment")
    section = Section(f"experiment-{number}", f"Experiment: {scrub_text(str(name))}")
    section.facts = _arm_facts(result)
    section.notices = [scrub_text(f"partial: {r}") for r in result.partial_reasons]
    verdicts = result.verdicts[result.verdicts["metric"].isin(REPORT_METRICS)]
    section.tables.append(
        Table(
            "Verdicts",
            verdicts.drop(columns=["p_value"], errors="ignore"),
            "Ratio candidate/baseline of trial medians with a bootstrap 95% CI over trials; "
            "'faster'/'slower' only when the whole CI is beyond the noise threshold.",
        )
    )
    section.figures.append(
        Figure.from_matplotlib(
            views.verdict_ratio_plot(verdicts, "p50_ms"),
            "p50 ratio per endpoint",
            "dots: ratio of medians; bars: 95% CI; band: noise threshold",
        )
    )
    if len(result.requests):
        frame = result.requests.copy()
        main = frame["name"].value_counts().index[:4]
        frame = frame[frame["name"].isin(main)]
        frame["endpoint"] = frame["arm"].astype(str) + ": " + frame["name"].astype(str)
        section.figures.append(
            Figure.from_matplotlib(
                views.latency_ecdf(frame, top=8),
                "Latency ECDF per arm",
                "client latency from the intended send time, all trials",
            )
        )
    captures = result.config.get("captures") or {}
    if {"baseline", "candidate"} <= set(captures):
        base, cand = open_capture(captures["baseline"]), open_capture(captures["candidate"])
        diff = query_diff(base.queries, cand.queries, base.requests, cand.requests)
        diff["fingerprint"] = diff["fingerprint"].map(lambda s: scrub_sql(str(s))[:300])
        section.tables.append(
            Table(
                "Query diff (per request)",
                diff,
                f"calls and DB ms per {diff.attrs.get('unit', 'request')}, baseline vs "
                "candidate captures",
            )
        )
        if len(base.samples) and len(cand.samples):
            section.embeds.append(
                Embed(
                    "Differential flame graph",
                    views.diff_flamegraph_html(base, cand),
                    "red: more time in the candidate; blue: less; normalised per request",
                    element_id=f"diff-flamegraph-{number}",
                )
            )
    return section


def load_input(path: str | Path) -> Capture | ExperimentResult:
    """A capture bundle or an experiment result directory."""
    directory = Path(path)
    if (directory / MANIFEST).is_file():
        return open_capture(directory)
    if (directory / RESULT_FILE).is_file() or directory.name == RESULT_FILE:
        return load_result(directory)
    raise DeskprofError(
        f"{directory} is neither a capture bundle (no {MANIFEST}) nor an experiment result "
        f"(no {RESULT_FILE}); give a directory written by `deskprof capture` or "
        "`deskprof experiment`"
    )


SUMMARY_FIRST = 3  # findings named in "what to fix first"


def _as_findings(section: Section) -> list[Finding]:
    return [Finding(**{k: f[k] for k in DICT_KEYS if k in f}) for f in section.findings]


def summary_section(
    sections: list[Section], captures: list[Capture], experiments: list[ExperimentResult]
) -> Section | None:
    """What a reader needs at a glance, before the detail: what to fix first (the first
    capture's top findings by total saving), what changed between the first and the
    last capture, and each experiment's verdicts on its main metric."""
    summary = Section("summary", "Summary")
    capture_sections = [s for s in sections if s.section_id.startswith("capture")]
    if capture_sections:
        first = capture_sections[0]
        for f in first.findings[:SUMMARY_FIRST]:
            t = finding_text(f, 0)
            summary.lead.append(f"{t.kind} at {t.where}: {t.title} ({t.saving})")
        summary.facts.append(
            (first.title.removeprefix("Capture: "), f"{len(first.findings)} findings"
             + (f", {len(first.by_design)} by design" if first.by_design else ""))
        )  # fmt: skip
    if len(capture_sections) > 1:
        last = capture_sections[-1]
        diff = compare_findings(_as_findings(capture_sections[0]), _as_findings(last))
        summary.facts.append(
            (f"{capture_sections[0].title.removeprefix('Capture: ')} -> "
             f"{last.title.removeprefix('Capture: ')}", diff.summary())
        )  # fmt: skip
        summary.tables.append(
            Table(
                "Findings, first capture -> last",
                diff.findings_table(),
                "matched by cause (kind, endpoint and what the detector names), not by title; "
                "savings are totals over each capture",
            )
        )
        deltas = endpoint_deltas(endpoint_summary(captures[0]), endpoint_summary(captures[-1]))
        summary.tables.append(
            Table(
                "Per endpoint, first capture -> last",
                deltas,
                "each capture's own figures side by side (descriptive: for a verdict with a "
                "confidence interval, run an experiment or deskprof check --baseline)",
            )
        )
    for result in experiments:
        name = result.config.get("label") or (result.path.name if result.path else "experiment")
        main = result.verdicts[result.verdicts["metric"] == "p50_ms"].head(4)
        for row in main.itertuples():
            summary.facts.append(
                (
                    f"experiment {scrub_text(str(name))}",
                    f"{row.endpoint} p50: {row.verdict} (ratio {format_number(row.ratio)}, "
                    f"95% CI [{format_number(row.ci_low)}, {format_number(row.ci_high)}])",
                )
            )
    if not (summary.lead or summary.facts):
        return None
    return summary


def build_report(
    inputs: list[Capture | ExperimentResult | str | Path],
    *,
    title: str = "deskprof findings",
    explain_url: str | Mapping[str, str] | None = None,
    app_packages: tuple[str, ...] = (),
) -> ReportDocument:
    """One document with a section per input, in the order given.

    ``explain_url`` is the database to EXPLAIN slow SELECTs on: one URL for every
    capture, or a mapping from a capture's directory to the database *as it was when
    that capture ran* (an index migration in between would make the plans lie).
    ``app_packages``: top-level packages that are the service's own code besides its
    request handlers' (a service installed with pip)."""
    if not inputs:
        raise DeskprofError("nothing to report: give at least one capture or experiment")
    document = ReportDocument(title, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    captures = experiments = 0
    opened: list[Capture] = []
    results: list[ExperimentResult] = []
    for item in inputs:
        loaded = load_input(item) if isinstance(item, str | Path) else item
        if isinstance(loaded, Capture):
            opened.append(loaded)
            captures += 1
            url = (
                explain_url.get(str(loaded.path))
                if isinstance(explain_url, Mapping)
                else explain_url
            )
            document.sections.append(
                capture_section(loaded, number=captures, explain_url=url, app_packages=app_packages)
            )
        else:
            results.append(loaded)
            experiments += 1
            document.sections.append(experiment_section(loaded, number=experiments))
    summary = summary_section(document.sections, opened, results)
    if summary is not None:
        document.sections.insert(0, summary)
    return document
