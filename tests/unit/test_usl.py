"""The USL fit on throughput from a law with known contention and coherency: the intervals
cover the truth (in most seeds, as a 95% interval should), a peak inside the range is
found, and too few configurations are one clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deskprof.analysis.usl import fit_usl, peak_n, usl
from deskprof.errors import DeskprofError

SIGMA, KAPPA, LAM = 0.08, 0.004, 50.0


def _measured(seed: int, runs: int = 3, noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = np.repeat([1, 2, 4, 6, 8, 12, 16, 24], runs).astype(float)
    return n, usl(n, LAM, SIGMA, KAPPA) * rng.normal(1.0, noise, len(n))


def test_the_fit_recovers_known_contention_and_coherency_within_its_intervals() -> None:
    fit = fit_usl(*_measured(1), resamples=400)
    assert fit.sigma.covers(SIGMA) and fit.kappa.covers(KAPPA) and fit.lam.covers(LAM)
    truth = peak_n(SIGMA, KAPPA)  # 14.5: inside the measured range
    assert fit.peak.covers(truth) and abs(fit.peak.value - truth) < 3
    y, low, high = fit.predict([4.0, 30.0])
    assert (low <= y).all() and (y <= high).all()
    assert "contention sigma" in fit.summary() and "peak at N" in fit.summary()


def test_the_intervals_cover_the_truth_about_as_often_as_they_say() -> None:
    covered = sum(
        fit_usl(*_measured(seed), resamples=200, seed=seed).sigma.covers(SIGMA)
        for seed in range(20)
    )
    assert covered >= 16  # a 95% interval: 19 of 20 expected, 16 allows for the bootstrap


def test_single_runs_use_the_residuals_and_a_flat_curve_has_no_finite_peak() -> None:
    n = np.array([1.0, 2, 3, 4, 6, 8])
    flat = fit_usl(n, usl(n, 10.0, 0.5, 0.0) * (1 + 0.01 * np.sin(n)), resamples=200)
    assert flat.sigma.covers(0.5) or abs(flat.sigma.value - 0.5) < 0.05
    assert flat.kappa.value < 0.01
    assert math.isinf(flat.peak.value) or flat.peak.value > flat.max_n


def test_too_few_configurations_is_one_line() -> None:
    with pytest.raises(DeskprofError, match="3 or more different N, got 2"):
        fit_usl([1, 1, 2, 2], [10, 11, 19, 18])
