"""An experiment's result: trials, verdicts, configuration; saved and loaded again.

The directory format is :mod:`deskprof.bundle.experiment`. The verdict table is
recomputed from the trials on demand (``verdict_table``) and also stored.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deskprof.bundle.experiment import (
    VERDICT_COLUMNS,
    read_result,
    write_result,
)
from deskprof.errors import DeskprofError
from deskprof.experiment.design import BASELINE, CANDIDATE
from deskprof.experiment.measure import ALL, METRICS
from deskprof.experiment.stats import DEFAULT_THRESHOLD, compare

FEW_REQUESTS = 20
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


def _arm_values(rows: pd.DataFrame, metric: str, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Trial values per arm, aligned by ``pair`` when paired (NaN where a side is missing)."""
    if paired:
        wide = rows.pivot_table(index="pair", columns="arm", values=metric, aggfunc="first")
        wide = wide.reindex(columns=[BASELINE, CANDIDATE])
        return wide[BASELINE].to_numpy(float), wide[CANDIDATE].to_numpy(float)
    base = rows.loc[rows["arm"] == BASELINE, metric].to_numpy(float)
    cand = rows.loc[rows["arm"] == CANDIDATE, metric].to_numpy(float)
    return base, cand


def verdict_table(
    trials: pd.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    metrics: list[str] | None = None,
    endpoints: list[str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Per endpoint and metric: medians, ratio, CI, p-value, verdict and warnings.

    Paired by adjacent trials when the trials carry a ``pair`` (blocked design), else
    unpaired. ``endpoints``: exact names or shell patterns (``GET /reports/*``); the
    ``(all)`` row is always kept. Metrics without data in both arms are left out.
    """
    wanted = [m for m in METRICS if metrics is None or m.name in metrics]
    rows: list[dict[str, Any]] = []
    if trials.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    paired = bool((trials["pair"] >= 0).all())
    names = [*sorted(set(trials["endpoint"]) - {ALL}), ALL]
    if endpoints:
        names = [n for n in names if n == ALL or any(fnmatch.fnmatchcase(n, p) for p in endpoints)]
    for endpoint in names:
        group = trials[trials["endpoint"] == endpoint]
        few = group["requests"].median()
        for metric in wanted:
            if metric.name not in group:
                continue
            measured = group.loc[group[metric.name].notna(), "arm"]
            if not {BASELINE, CANDIDATE} <= set(measured):
                continue  # e.g. no probe on a URL arm: nothing to compare
            base, cand = _arm_values(group, metric.name, paired)
            result = compare(
                base,
                cand,
                paired=paired,
                threshold=threshold,
                higher_is_better=metric.higher_is_better,
                kind=metric.kind,
                seed=seed,
            )
            notes = list(result.warnings)
            if metric.name in PERCENTILES and few < FEW_REQUESTS:
                notes.append(f"few requests per trial ({few:g}): percentiles are rough")
            errors = group.groupby("arm")["errors"].sum()
            if errors.sum():
                notes.append(
                    "errors: " + ", ".join(f"{arm} {int(n)}" for arm, n in errors.items() if n)
                )
            rows.append(
                {
                    "endpoint": endpoint,
                    "metric": metric.name,
                    "baseline": result.baseline,
                    "candidate": result.candidate,
                    "ratio": result.ratio,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "verdict": result.verdict,
                    "n_baseline": result.n_baseline,
                    "n_candidate": result.n_candidate,
                    "warnings": "; ".join(notes),
                }
            )
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


@dataclass
class ExperimentResult:
    """What an experiment found. ``trials`` is the per-trial table, ``verdicts`` the
    per-endpoint verdict table, ``requests`` every measured request."""

    trials: pd.DataFrame
    verdicts: pd.DataFrame
    config: dict[str, Any]
    requests: pd.DataFrame = field(default_factory=pd.DataFrame)
    status: str = "complete"
    partial_reasons: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def complete(self) -> bool:
        return not self.partial_reasons

    def verdict(self, endpoint: str, metric: str = "p50_ms") -> str:
        """The verdict string for one row, e.g. ``result.verdict("GET /tickets")``."""
        row = self.verdicts[
            (self.verdicts["endpoint"] == endpoint) & (self.verdicts["metric"] == metric)
        ]
        if row.empty:
            known = ", ".join(sorted(set(self.verdicts["endpoint"])))
            raise DeskprofError(f"no verdict for {endpoint!r} {metric}; endpoints: {known}")
        return str(row["verdict"].iloc[0])

    def table(self, metrics: list[str] | None = None) -> str:
        """The verdict table as aligned text (what the CLI prints)."""
        return format_table(self.verdicts, metrics)

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise DeskprofError("no directory to save the result in: pass a path")
        write_result(
            target,
            trials=self.trials,
            requests=self.requests,
            verdicts=self.verdicts,
            status=self.status,
            partial_reasons=self.partial_reasons,
            config=self.config,
        )
        self.path = target
        return target

    def _repr_html_(self) -> str:
        return self.verdicts.to_html(index=False, float_format=lambda x: f"{x:.3g}")


def load_result(path: str | Path) -> ExperimentResult:
    """An experiment directory (or its ``result.json``) → ``ExperimentResult``."""
    files = read_result(path)
    return ExperimentResult(
        trials=files.trials,
        verdicts=files.verdicts,
        config=files.document.get("config", {}),
        requests=files.requests,
        status=files.document.get("status", "partial"),
        partial_reasons=list(files.document.get("partial_reasons", [])),
        path=files.directory,
    )


def format_table(verdicts: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """Aligned text: endpoint, metric, medians, ratio [CI], p, verdict, warnings."""
    rows = verdicts if metrics is None else verdicts[verdicts["metric"].isin(metrics)]
    if rows.empty:
        return "(no verdicts: no trial measured both arms)"

    def num(x: float) -> str:
        return "-" if not math.isfinite(x) else f"{x:.4g}"

    lines = [
        (
            "endpoint",
            "metric",
            "baseline",
            "candidate",
            "ratio [95% CI]",
            "p",
            "verdict",
            "warnings",
        )
    ]
    for r in rows.itertuples(index=False):
        ci = f"{num(r.ratio)} [{num(r.ci_low)}, {num(r.ci_high)}]"
        p = num(r.p_value)
        lines.append(
            (r.endpoint, r.metric, num(r.baseline), num(r.candidate), ci, p, r.verdict, r.warnings)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(7)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:7], widths, strict=False)).rstrip()
        + (f"  {line[7]}" if line[7] else "")
        for line in lines
    )
