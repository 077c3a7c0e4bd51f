"""Statistics on trial-level summaries: a ratio with a CI, a rank test, and a verdict.

Requests within one trial share the server's state, its caches and the machine's mood at
that moment, so they are not independent observations; the unit here is the *trial*
(one number per trial: its p50, its throughput...). Given those numbers for a baseline
and a candidate arm, the caller gets:

- the ratio candidate/baseline of the arms' trial medians, with a bootstrap 95% CI
  (``scipy.stats.bootstrap``), resampling *pairs* of adjacent trials when the design is
  blocked (both arms of a pair saw the same machine, so drift cancels) and each arm
  independently when it is not;
- a rank test: Wilcoxon signed-rank on the pairs' log ratios, or Mann-Whitney U;
- a verdict in criterion's spirit: an improvement only when the *whole* CI is beyond the
  noise threshold, a regression likewise, else "no detectable change". Anything that
  makes the statistics meaningless (too few trials, zero variance, NaN) gives
  "inconclusive", never a change.

Bootstrap percentile intervals are too narrow for a handful of units; the interval is
therefore Hesterberg's *expanded* percentile interval (Hesterberg 2015, "What teachers
should know about the bootstrap"): the percentile interval at the confidence level whose
normal quantile equals ``sqrt(n/(n-1)) * t(n-1)``, which matches the t interval's width
for small n and tends to the plain interval as n grows. The A/A simulation in
tests/unit/test_experiment_stats.py is what keeps this honest.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

DEFAULT_THRESHOLD = 0.02
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
UNSTABLE_CV = 0.10
FEW_TRIALS = 5
MIN_UNITS = 3  # pairs (paired) or trials per arm (unpaired) below which nothing is said

NO_CHANGE = "no detectable change"
INCONCLUSIVE = "inconclusive"
# what an improvement and a regression are called, by kind of metric
WORDS = {"time": ("faster", "slower"), "amount": ("lower", "higher")}


@dataclass(frozen=True)
class RatioCI:
    """candidate/baseline of the medians, and its confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float  # the nominal level asked for (the expanded level is internal)
    units: int  # pairs (paired) or the smaller arm's size (unpaired)


@dataclass(frozen=True)
class Comparison:
    """Everything one verdict row says; ``warnings`` are short, human sentences."""

    baseline: float  # median of the baseline trials
    candidate: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    n_baseline: int
    n_candidate: int
    paired: bool
    warnings: list[str] = field(default_factory=list)


def expanded_level(n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The confidence level whose normal quantile is ``sqrt(n/(n-1)) * t_{n-1}``."""
    if n < 2:
        return float("nan")
    z = math.sqrt(n / (n - 1)) * stats.t.ppf(0.5 + confidence / 2, n - 1)
    return float(1 - 2 * stats.norm.sf(z))


def _median_ratio(baseline: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(candidate, axis=axis) / np.median(baseline, axis=axis)


def ratio_ci(
    baseline: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    paired: bool,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RatioCI:
    """median(candidate) / median(baseline) with an expanded bootstrap percentile CI.

    ``paired``: ``baseline[i]`` and ``candidate[i]`` were measured together (one block,
    one round) and are resampled together. The CI is NaN when there are fewer than two
    units; callers decide what that means (``compare`` says "inconclusive").
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if paired and base.shape != cand.shape:
        raise ValueError("paired samples need the same length")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(cand) / np.median(base)) if len(base) and len(cand) else math.nan
    units = len(base) if paired else min(len(base), len(cand))
    if units < 2 or not math.isfinite(ratio):
        return RatioCI(ratio, math.nan, math.nan, confidence, units)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples: reported as NaN below
        result = stats.bootstrap(
            (base, cand),
            _median_ratio,
            paired=paired,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=expanded_level(units, confidence),
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    interval = result.confidence_interval
    return RatioCI(ratio, float(interval.low), float(interval.high), confidence, units)


def rank_test(
    baseline: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    paired: bool,
) -> float:
    """Two-sided p-value: Wilcoxon signed-rank on paired log ratios, else Mann-Whitney U.

    NaN when the test cannot be computed (too few values, all differences zero)."""
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if paired:
                with np.errstate(divide="ignore", invalid="ignore"):
                    diffs = np.log(cand) - np.log(base)
                if not np.isfinite(diffs).all():
                    diffs = cand - base  # zeros in the data: signed ranks of differences
                if len(diffs) < 1 or not np.any(diffs):
                    return math.nan
                # exact when it can be; with ties or zeros scipy would fall back to a slow
                # permutation test, where the normal approximation (tie-corrected) does
                tied = len(np.unique(np.abs(diffs))) < len(diffs) or not np.all(diffs)
                method = "asymptotic" if tied or len(diffs) > 50 else "exact"
                return float(stats.wilcoxon(diffs, method=method).pvalue)
            if len(base) < 1 or len(cand) < 1:
                return math.nan
            return float(stats.mannwhitneyu(base, cand, alternative="two-sided").pvalue)
        except ValueError:
            return math.nan


def decide(
    low: float,
    high: float,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    higher_is_better: bool = False,
    kind: str = "time",
) -> str:
    """The verdict a CI supports: improvement/regression only when the whole CI is beyond
    ``1 ± threshold``; NaN anywhere → "inconclusive"."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return INCONCLUSIVE
    better, worse = WORDS[kind]
    if high < 1 - threshold:
        return worse if higher_is_better else better
    if low > 1 + threshold:
        return better if higher_is_better else worse
    return NO_CHANGE


def coefficient_of_variation(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan
    mean = float(np.mean(values))
    return float(np.std(values, ddof=1) / abs(mean)) if mean else math.nan


def compare(
    baseline: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    paired: bool,
    threshold: float = DEFAULT_THRESHOLD,
    higher_is_better: bool = False,
    kind: str = "time",
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """One metric, two arms of trial-level values → ratio, CI, p-value, verdict, warnings.

    ``paired``: element i of both arms form a pair (adjacent trials of one block); a pair
    with a missing (NaN) side is dropped. Unpaired: NaNs are dropped per arm.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    notes: list[str] = []
    if paired:
        if base.shape != cand.shape:
            raise ValueError("paired samples need the same length")
        keep = np.isfinite(base) & np.isfinite(cand)
        if not keep.all():
            notes.append(f"{int((~keep).sum())} pair(s) without data dropped")
        base, cand = base[keep], cand[keep]
    else:
        missing = int((~np.isfinite(base)).sum() + (~np.isfinite(cand)).sum())
        if missing:
            notes.append(f"{missing} trial(s) without data dropped")
        base, cand = base[np.isfinite(base)], cand[np.isfinite(cand)]

    def median(values: np.ndarray) -> float:
        return float(np.median(values)) if len(values) else math.nan

    def result(ratio: float, low: float, high: float, p: float, verdict: str) -> Comparison:
        counts = (len(base), len(cand), paired, notes)
        return Comparison(median(base), median(cand), ratio, low, high, p, verdict, *counts)

    units = len(base) if paired else min(len(base), len(cand))
    fewest = min(len(base), len(cand))
    if fewest < FEW_TRIALS:
        notes.append(f"too few trials ({fewest} per arm, want at least {FEW_TRIALS})")
    for arm, values in (("baseline", base), ("candidate", cand)):
        cv = coefficient_of_variation(values)
        if math.isfinite(cv) and cv >= UNSTABLE_CV:
            notes.append(f"unstable in {arm} (CV {cv:.0%})")
    if units < MIN_UNITS:
        what = "pair(s)" if paired else "trial(s) per arm"
        notes.append(f"inconclusive: {units} {what}, need at least {MIN_UNITS}")
        ratio = median(cand) / median(base) if units else math.nan
        return result(ratio, math.nan, math.nan, math.nan, INCONCLUSIVE)
    for arm, values in (("baseline", base), ("candidate", cand)):
        if np.ptp(values) == 0:
            notes.append(
                f"inconclusive: zero variance in {arm} (every trial {values[0]:g}); "
                "compare the values directly"
            )
    if np.ptp(base) == 0 or np.ptp(cand) == 0:
        return result(median(cand) / median(base), math.nan, math.nan, math.nan, INCONCLUSIVE)
    ci = ratio_ci(
        base, cand, paired=paired, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    p_value = rank_test(base, cand, paired=paired)
    if not all(math.isfinite(x) for x in (ci.ratio, ci.low, ci.high)):
        notes.append("inconclusive: the ratio or its CI is not a number (zero baseline?)")
        return result(ci.ratio, ci.low, ci.high, p_value, INCONCLUSIVE)
    verdict = decide(
        ci.low, ci.high, threshold=threshold, higher_is_better=higher_is_better, kind=kind
    )
    return result(ci.ratio, ci.low, ci.high, p_value, verdict)
