"""The Universal Scalability Law, fitted to measured capacity with confidence intervals.

Gunther's USL says how throughput grows with N (workers, instances, cores):

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``lambda`` is the throughput of one, ``sigma`` the share of work that is serial
(contention: a lock, a single database row, one Redis connection) and ``kappa`` the cost of
keeping N copies coherent (crosstalk: cache invalidations, lock hand-offs between every
pair). With ``kappa > 0`` throughput peaks at ``N* = sqrt((1 - sigma) / kappa)`` and then
falls, so more workers make things worse.

The fit is least squares on the measured points (``scipy.optimize.curve_fit`` with
``sigma`` and ``kappa`` bounded to [0, 1]); the intervals come from a residual bootstrap
(relative residuals, since throughput noise grows with throughput, inflated for the
three fitted parameters), as percentiles, and so does the band of
:meth:`UslFit.predict`. Repeated runs at one N simply add points. Few
points make wide intervals, and the fit says so rather than printing a confident peak: on
a 2-core host the curve flattens at 2, and a peak beyond the measured range is a
prediction, reported with its interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from deskprof.errors import DeskprofError

MIN_LEVELS = 3  # distinct N: three parameters need at least three points of the curve


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray:
    """Throughput at ``n`` under the USL."""
    n = np.asarray(n, dtype=float)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def peak_n(sigma: float, kappa: float) -> float:
    """Where throughput peaks: ``sqrt((1 - sigma) / kappa)``, infinite without crosstalk."""
    if kappa <= 0:
        return math.inf
    return math.sqrt(max(1 - sigma, 0.0) / kappa)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class UslFit:
    """The fitted law, each parameter with its bootstrap interval."""

    lam: Interval
    sigma: Interval
    kappa: Interval
    peak: Interval  # N at the peak (inf: no peak, throughput only flattens)
    confidence: float
    n_levels: int
    n_points: int
    boot: np.ndarray  # (resamples, 3): lambda, sigma, kappa per bootstrap fit
    max_n: float  # the largest N measured

    def predict(self, n: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(throughput, low, high) at ``n``: the fit and its bootstrap band."""
        n = np.atleast_1d(np.asarray(n, dtype=float))
        curves = np.array([usl(n, *row) for row in self.boot])
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.nanpercentile(curves, [tail, 100 - tail], axis=0)
        return usl(n, self.lam.value, self.sigma.value, self.kappa.value), low, high

    def summary(self) -> str:
        """One line: the parameters with their intervals and what they predict."""
        pct = f"{self.confidence:.0%}"
        peak = (
            "no peak (throughput flattens)"
            if math.isinf(self.peak.value)
            else f"peak at N = {self.peak.value:.1f} [{self.peak.low:.1f}, {self.peak.high:.1f}]"
        )
        beyond = (
            " (beyond the measured range: a prediction)" if self.peak.value > self.max_n else ""
        )
        return (
            f"lambda {self.lam.value:.3g}/s per unit; contention sigma {self.sigma.value:.3f} "
            f"[{self.sigma.low:.3f}, {self.sigma.high:.3f}]; coherency kappa "
            f"{self.kappa.value:.4f} [{self.kappa.low:.4f}, {self.kappa.high:.4f}] ({pct} CI, "
            f"{self.n_points} points at {self.n_levels} levels); {peak}{beyond}"
        )


def _fit(n: np.ndarray, x: np.ndarray, start: tuple[float, float, float]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, _ = curve_fit(
            usl, n, x, p0=start, bounds=([0.0, 0.0, 0.0], [np.inf, 1.0, 1.0]), maxfev=20000
        )
    return params


def fit_usl(
    n: np.ndarray | list[float],
    throughput: np.ndarray | list[float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> UslFit:
    """Fit the USL to measured (N, throughput) points; N may repeat (several runs at one
    configuration)."""
    n = np.asarray(n, dtype=float)
    x = np.asarray(throughput, dtype=float)
    keep = np.isfinite(n) & np.isfinite(x) & (n >= 1) & (x > 0)
    n, x = n[keep], x[keep]
    levels = np.unique(n)
    if len(levels) < MIN_LEVELS:
        raise DeskprofError(
            f"the USL needs throughput at {MIN_LEVELS} or more different N, got "
            f"{len(levels)}; measure more configurations (workers, instances)"
        )
    at_one = x[n == levels[0]].mean() / levels[0]
    params = _fit(n, x, (at_one, 0.05, 0.001))
    fitted = usl(n, *params)
    # relative residuals (throughput noise scales with throughput), inflated by
    # sqrt(n / (n - p)) as a residual bootstrap must be: the fit has already absorbed
    # three parameters' worth of the noise, and uninflated intervals come out too narrow
    relative = (x / fitted - 1) * math.sqrt(len(n) / max(len(n) - 3, 1))
    rng = np.random.default_rng(seed)
    boot = np.empty((resamples, 3))
    for i in range(resamples):
        sample_x = fitted * (1 + rng.choice(relative, size=len(n)))
        try:
            boot[i] = _fit(n, np.clip(sample_x, 1e-9, None), tuple(params))
        except (RuntimeError, ValueError):
            boot[i] = np.nan
    boot = boot[np.isfinite(boot).all(axis=1)]
    tail = (1 - confidence) / 2 * 100

    def interval(values: np.ndarray, point: float) -> Interval:
        low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (np.nan,) * 2
        return Interval(float(point), float(low), float(high))

    peaks = np.array([peak_n(s, k) for _, s, k in boot])
    finite = np.where(np.isfinite(peaks), peaks, np.inf)
    return UslFit(
        lam=interval(boot[:, 0], params[0]),
        sigma=interval(boot[:, 1], params[1]),
        kappa=interval(boot[:, 2], params[2]),
        peak=interval(finite, peak_n(params[1], params[2])),
        confidence=confidence,
        n_levels=len(levels),
        n_points=len(n),
        boot=boot,
        max_n=float(levels[-1]),
    )
