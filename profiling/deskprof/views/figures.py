"""seaborn figures of a capture: latency ECDF, one shared-time timeline, query profile,
findings summary.

Each takes tidy frames as the analysis layer returns them, draws on ``ax`` when given,
returns the matplotlib Axes (or Figure) so it can be restyled, and computes nothing a
reader cannot see: unit conversions (ns to ms, bytes to MiB, epoch to seconds since
capture start) and the binning a histogram shows are the only transformations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deskprof.errors import DeskprofError

SEVERITY_ORDER = ["high", "medium", "low"]
SEVERITY_COLOURS = {"high": "#c62828", "medium": "#ef8f00", "low": "#7e9cc0"}
MIB = 1024 * 1024


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DeskprofError(f"{what} needs columns {', '.join(missing)}; got {list(frame.columns)}")


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#777")


def endpoint_labels(frame: pd.DataFrame) -> pd.Series:
    """``endpoint`` when the analysis layer added it, the load generator's request
    ``name`` for a workload frame, else ``"{method} {route}"``."""
    if "endpoint" in frame.columns:
        return frame["endpoint"].astype(str)
    if "name" in frame.columns:
        return frame["name"].astype(str)
    _require(frame, ["method", "route"], "an endpoint label")
    return frame["method"].astype(str) + " " + frame["route"].astype(str)


def latency_ecdf(
    requests_or_workload: pd.DataFrame,
    ax: Axes | None = None,
    *,
    top: int | None = 12,
    log_scale: bool = True,
) -> Axes:
    """One ECDF line per endpoint: server-side ``duration_ns`` for the requests table,
    client-side ``latency_ns`` (from the intended send time) for the workload table.

    ``top`` keeps the endpoints with the most requests (say so in the title when some
    were left out); the legend lists endpoints slowest p95 first."""
    frame = requests_or_workload
    column = "latency_ns" if "latency_ns" in frame.columns else "duration_ns"
    _require(frame, [column], "latency_ecdf")
    ax = _axes(ax, (8, 4.5))
    data = pd.DataFrame(
        {
            "latency_ms": frame[column].to_numpy(dtype="float64") / 1e6,
            "endpoint": endpoint_labels(frame),
        }
    )
    if log_scale:
        data = data[data["latency_ms"] > 0]
    if data.empty:
        _no_data(ax, "no requests")
        return ax
    counts = data["endpoint"].value_counts()
    kept = list(counts.index[:top]) if top else list(counts.index)
    data = data[data["endpoint"].isin(kept)]
    order = data.groupby("endpoint")["latency_ms"].quantile(0.95).sort_values(ascending=False)
    sns.ecdfplot(
        data=data,
        x="latency_ms",
        hue="endpoint",
        hue_order=list(order.index),
        ax=ax,
        log_scale=log_scale,
    )
    source = "client latency" if column == "latency_ns" else "server time"
    left_out = (
        f"; {len(counts) - len(kept)} smaller endpoints left out" if len(kept) < len(counts) else ""
    )
    ax.set(
        xlabel=f"{source} (ms)",
        ylabel="share of requests",
        title=f"Latency per endpoint ({len(data):,} requests{left_out})",
    )
    return ax


def _relative_s(ns: pd.Series, start_ns: int) -> np.ndarray:
    return (ns.to_numpy(dtype="int64") - start_ns) / 1e9


def _first_ns(frames: list[tuple[pd.DataFrame, str]]) -> int:
    starts = [int(f[c].min()) for f, c in frames if f is not None and len(f) and c in f.columns]
    if not starts:
        raise DeskprofError("timeline needs at least one non-empty frame with timestamps")
    return min(starts)


def timeline(
    requests: pd.DataFrame,
    queries: pd.DataFrame,
    metrics: pd.DataFrame,
    memory: pd.DataFrame | None = None,
    *,
    start_ns: int | None = None,
    bin_s: float = 1.0,
    figsize: tuple[float, float] = (11, 9),
) -> Figure:
    """Four panels on one time axis (seconds since ``start_ns``, the capture start; by
    default the earliest timestamp given): each request's duration at its start time,
    queries per second (histogram with ``bin_s`` bins), CPU % and RSS per process (plus
    memray's tracked heap when ``memory`` has rows)."""
    if start_ns is None:
        start_ns = _first_ns(
            [(requests, "start_ns"), (queries, "start_ns"), (metrics, "ts_ns"), (memory, "ts_ns")]
        )
    fig, axes = plt.subplots(4, 1, sharex=True, figsize=figsize, layout="constrained")
    ax_req, ax_sql, ax_cpu, ax_mem = axes

    if len(requests):
        data = pd.DataFrame(
            {
                "t_s": _relative_s(requests["start_ns"], start_ns),
                "duration_ms": requests["duration_ns"].to_numpy(dtype="float64") / 1e6,
                "endpoint": endpoint_labels(requests),
            }
        )
        sns.scatterplot(
            data=data,
            x="t_s",
            y="duration_ms",
            hue="endpoint",
            s=10,
            linewidth=0,
            ax=ax_req,
            rasterized=len(data) > 5000,
        )
        ax_req.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    else:
        _no_data(ax_req, "no requests")
    ax_req.set(ylabel="request (ms)", title=f"Requests ({len(requests):,})")

    if len(queries):
        t = _relative_s(queries["start_ns"], start_ns)
        sns.histplot(
            x=t,
            binwidth=bin_s,
            weights=np.full(len(t), 1.0 / bin_s),
            element="step",
            ax=ax_sql,
            color="#4c72b0",
        )
    else:
        _no_data(ax_sql, "no queries")
    ax_sql.set(ylabel="queries / s", title=f"SQL statements ({len(queries):,}; {bin_s:g} s bins)")

    if len(metrics):
        cpu = pd.DataFrame(
            {
                "t_s": _relative_s(metrics["ts_ns"], start_ns),
                "cpu_percent": metrics["cpu_percent"].to_numpy(dtype="float64"),
                "pid": metrics["pid"].astype(str),
            }
        )
        sns.lineplot(data=cpu, x="t_s", y="cpu_percent", hue="pid", estimator=None, ax=ax_cpu)
        ax_cpu.legend(
            title="pid", fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False
        )
    else:
        _no_data(ax_cpu, "no system metrics")
    ax_cpu.set(ylabel="CPU % (100 = 1 core)", title="CPU per process")

    memory_rows = [
        pd.DataFrame(
            {
                "t_s": _relative_s(frame["ts_ns"], start_ns),
                "MiB": frame[column].to_numpy(dtype="float64") / MIB,
                "pid": frame["pid"].astype(str),
                "series": series,
            }
        )
        for frame, column, series in (
            (metrics, "rss_bytes", "RSS (psutil)"),
            (memory, "heap_bytes", "tracked heap (memray)"),
        )
        if frame is not None and len(frame) and column in frame.columns
    ]
    if memory_rows:
        mem = pd.concat(memory_rows, ignore_index=True)
        sns.lineplot(
            data=mem, x="t_s", y="MiB", hue="pid", style="series", estimator=None, ax=ax_mem
        )
        ax_mem.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    else:
        _no_data(ax_mem, "no memory data")
    ax_mem.set(ylabel="MiB", title="Memory per process", xlabel="seconds since capture start")
    return fig


def query_profile_plot(
    profile_frame: pd.DataFrame, ax: Axes | None = None, *, top: int = 15, width: int = 70
) -> Axes:
    """Horizontal bars of total time per fingerprint, largest first (the query digest's
    profile table: rank, fingerprint_id, fingerprint, calls, total_ms, mean_ms, p95_ms);
    each bar is annotated with its calls and mean."""
    _require(profile_frame, ["fingerprint", "calls", "total_ms"], "query_profile_plot")
    ax = _axes(ax, (9, 0.45 * min(top, max(len(profile_frame), 1)) + 1.2))
    if profile_frame.empty:
        _no_data(ax, "no queries")
        return ax
    rows = profile_frame.sort_values("total_ms", ascending=False).head(top).reset_index(drop=True)
    ranks = rows["rank"] if "rank" in rows.columns else pd.Series(range(1, len(rows) + 1))
    text = rows["fingerprint"].astype(str)
    labels = [
        f"#{r} {t[:width]}…" if len(t) > width else f"#{r} {t}"
        for r, t in zip(ranks, text, strict=True)
    ]
    data = pd.DataFrame({"label": labels, "total_ms": rows["total_ms"].astype(float)})
    sns.barplot(
        data=data, x="total_ms", y="label", orient="h", color="#4c72b0", ax=ax, errorbar=None
    )
    mean = rows["mean_ms"] if "mean_ms" in rows.columns else rows["total_ms"] / rows["calls"]
    for i, (calls, m) in enumerate(zip(rows["calls"], mean, strict=True)):
        ax.annotate(
            f" {int(calls):,} calls, {m:.2f} ms mean",
            (data["total_ms"][i], i),
            va="center",
            fontsize=8,
        )
    ax.set(
        xlabel="total time (ms)", ylabel="", title=f"Query profile: top {len(rows)} by total time"
    )
    ax.tick_params(axis="y", labelsize=8)
    return ax


def _findings_frame(findings: Any) -> pd.DataFrame:
    if isinstance(findings, pd.DataFrame):
        return findings
    return pd.DataFrame([f.to_dict() if hasattr(f, "to_dict") else dict(f) for f in findings])


def findings_summary_plot(findings_frame: Any, ax: Axes | None = None, *, top: int = 20) -> Axes:
    """One bar per finding (largest estimated saving per request first), coloured by
    severity. Takes a DataFrame of finding dicts (kind, severity, endpoint,
    estimated_saving_ms, and title when present) or a list of Findings."""
    frame = _findings_frame(findings_frame)
    ax = _axes(ax, (9, 0.4 * min(top, max(len(frame), 1)) + 1.2))
    if frame.empty:
        _no_data(ax, "no findings")
        return ax
    _require(
        frame, ["kind", "severity", "endpoint", "estimated_saving_ms"], "findings_summary_plot"
    )
    rows = (
        frame.sort_values("estimated_saving_ms", ascending=False).head(top).reset_index(drop=True)
    )
    labels = [
        f"{k} · {e}" if e else str(k) for k, e in zip(rows["kind"], rows["endpoint"], strict=True)
    ]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:  # two findings of one kind on one endpoint stay two bars
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    data = pd.DataFrame(
        {
            "finding": unique,
            "estimated_saving_ms": rows["estimated_saving_ms"].astype(float),
            "severity": rows["severity"].astype(str),
        }
    )
    levels = [s for s in SEVERITY_ORDER if s in set(data["severity"])]
    levels += sorted(set(data["severity"]) - set(levels))
    sns.barplot(
        data=data,
        x="estimated_saving_ms",
        y="finding",
        hue="severity",
        hue_order=levels,
        palette={s: SEVERITY_COLOURS.get(s, "#999999") for s in levels},
        dodge=False,
        orient="h",
        errorbar=None,
        ax=ax,
    )
    ax.set(
        xlabel="estimated saving per request (ms)",
        ylabel="",
        title=f"Findings ({len(frame)}; top {len(rows)} by estimated saving)",
    )
    ax.tick_params(axis="y", labelsize=8)
    return ax


def verdict_ratio_plot(
    verdicts: pd.DataFrame, metric: str = "p50_ms", ax: Axes | None = None, *, threshold=0.02
) -> Axes:
    """Candidate/baseline ratio per endpoint with its 95% CI, for one metric of an
    experiment's verdict table (columns endpoint, metric, ratio, ci_low, ci_high,
    verdict). The shaded band is the noise threshold: a CI inside it is "no detectable
    change"; a ratio below 1 is lower (faster, for latencies)."""
    _require(verdicts, ["endpoint", "metric", "ratio", "ci_low", "ci_high", "verdict"], metric)
    rows = verdicts[(verdicts["metric"] == metric) & verdicts["ratio"].notna()]
    ax = _axes(ax, (8, 0.45 * max(len(rows), 1) + 1.4))
    if rows.empty:
        _no_data(ax, f"no {metric} ratios")
        return ax
    rows = rows.sort_values("ratio").reset_index(drop=True)
    colours = {
        "faster": "#2e7d32",
        "slower": "#c62828",
        "no detectable change": "#607d8b",
        "inconclusive": "#9e9e9e",
    }
    y = np.arange(len(rows))
    low = (rows["ratio"] - rows["ci_low"]).clip(lower=0).fillna(0)
    high = (rows["ci_high"] - rows["ratio"]).clip(lower=0).fillna(0)
    ax.axvspan(1 - threshold, 1 + threshold, color="#eceff1", zorder=0)
    ax.axvline(1.0, color="#455a64", lw=1)
    for verdict, colour in colours.items():
        chosen = (rows["verdict"] == verdict).to_numpy()
        if chosen.any():
            ax.errorbar(
                rows["ratio"][chosen],
                y[chosen],
                xerr=[low[chosen], high[chosen]],
                fmt="o",
                color=colour,
                capsize=3,
                label=verdict,
            )
    ax.set_yticks(y, rows["endpoint"].astype(str))
    ax.set_xscale("log")
    ax.set(xlabel=f"candidate / baseline, {metric} (95% CI, log scale)", title=f"{metric} ratio")
    ax.legend(loc="best", fontsize=8)
    return ax
