"""Before/after comparison of two captures' SQL: which fingerprints appeared, vanished
or changed, per request.

Two captures of one workload differ in length and in how many requests they served, so
every figure is normalised per request of the capture (per second when a capture has
no requests table), and both normalisations are named in the result's ``attrs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.digest import query_profile

DIFF_COLUMNS = [
    "fingerprint_id",
    "fingerprint",
    "baseline_calls_per_unit",
    "candidate_calls_per_unit",
    "baseline_ms_per_unit",
    "candidate_ms_per_unit",
    "delta_ms_per_unit",
    "change",
]


def _denominator(requests: pd.DataFrame, queries: pd.DataFrame) -> tuple[float, str]:
    if len(requests):
        return float(len(requests)), "request"
    if len(queries):
        span_s = (queries["start_ns"].max() - queries["start_ns"].min()) / 1e9
        return max(span_s, 1.0), "second"
    return 1.0, "capture"


def query_diff(
    baseline_queries: pd.DataFrame,
    candidate_queries: pd.DataFrame,
    baseline_requests: pd.DataFrame | None = None,
    candidate_requests: pd.DataFrame | None = None,
    *,
    top: int | None = 20,
) -> pd.DataFrame:
    """One row per fingerprint seen in either capture, largest change in DB time first.

    ``change`` is ``new`` (only in the candidate), ``gone`` (only in the baseline),
    ``fewer``/``more`` calls, or ``same``. Queries need the analysis layer's
    ``fingerprint``/``fingerprint_id`` columns (a Capture's ``queries`` has them)."""
    empty = pd.DataFrame(columns=[])
    base_n, base_unit = _denominator(
        baseline_requests if baseline_requests is not None else empty, baseline_queries
    )
    cand_n, cand_unit = _denominator(
        candidate_requests if candidate_requests is not None else empty, candidate_queries
    )
    unit = base_unit if base_unit == cand_unit else f"{base_unit}/{cand_unit}"
    sides = []
    for name, queries, n in (
        ("baseline", baseline_queries, base_n),
        ("candidate", candidate_queries, cand_n),
    ):
        profile = query_profile(queries)[["fingerprint_id", "fingerprint", "calls", "total_ms"]]
        profile = profile.set_index("fingerprint_id")
        sides.append(
            pd.DataFrame(
                {
                    f"{name}_fingerprint": profile["fingerprint"],
                    f"{name}_calls_per_unit": profile["calls"].astype(float) / n,
                    f"{name}_ms_per_unit": profile["total_ms"].astype(float) / n,
                }
            )
        )
    merged = sides[0].join(sides[1], how="outer")
    if merged.empty:
        out = pd.DataFrame(columns=DIFF_COLUMNS)
        out.attrs["unit"] = unit
        return out
    merged["fingerprint"] = merged["baseline_fingerprint"].fillna(merged["candidate_fingerprint"])
    for column in ("calls", "ms"):
        for side in ("baseline", "candidate"):
            merged[f"{side}_{column}_per_unit"] = merged[f"{side}_{column}_per_unit"].fillna(0.0)
    merged["delta_ms_per_unit"] = merged["candidate_ms_per_unit"] - merged["baseline_ms_per_unit"]
    base_calls = merged["baseline_calls_per_unit"].to_numpy()
    cand_calls = merged["candidate_calls_per_unit"].to_numpy()
    merged["change"] = np.select(
        [
            base_calls == 0,
            cand_calls == 0,
            cand_calls < base_calls * 0.9,
            cand_calls > base_calls * 1.1,
        ],
        ["new", "gone", "fewer", "more"],
        default="same",
    )
    merged = merged.reset_index(names="fingerprint_id")
    order = merged["delta_ms_per_unit"].abs().sort_values(ascending=False).index
    out = merged.loc[order, DIFF_COLUMNS].reset_index(drop=True)
    out.attrs["unit"] = unit
    return out.head(top) if top else out
