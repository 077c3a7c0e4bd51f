"""CPU time of sampled runs: what the kernel says a thread ran, not what it wanted.

A run's ``state`` says whether its thread wanted a CPU (on one, or runnable and waiting
for one): that is the flame graph's shape. On a crowded host a busy thread spends much of
that in the run queue, so CPU *time* per endpoint or hot spot is weighted by the run's
kernel-counted ``cpu_ns`` (see :func:`deskprof.capturing.cpu.apply_os_state`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def cpu_weight(samples: pd.DataFrame, rate_hz: float = 100.0) -> np.ndarray:
    """Samples' worth of CPU time per run: the kernel's ``cpu_ns`` in sampling periods
    (at ``rate_hz``) where the kernel decided, ``n_samples`` for a leaf-decided ``cpu``
    run (older bundles too), 0 when waiting."""
    n = samples["n_samples"].to_numpy(dtype=np.float64)
    cpu = samples["state"].to_numpy() == "cpu"
    if "state_from" not in samples or "cpu_ns" not in samples:
        return np.where(cpu, n, 0.0)
    by_os = samples["state_from"].to_numpy() == "os"
    periods = samples["cpu_ns"].to_numpy(dtype=np.float64) * rate_hz / 1e9
    return np.where(cpu, np.where(by_os, periods, n), 0.0)
