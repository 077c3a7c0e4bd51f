"""CPU samples on an event loop thread, put in the request whose task was running.

The probe notes when each request's asyncio task ran (``requests.task_slices_us``,
:mod:`deskprof.probe.slices`); py-spy sees only the thread. A sample inside a slice
belongs to that slice's request, exactly, even with many requests of the same endpoint
in flight on one loop, where a time window can only guess.

py-spy's clock is anchored when it is spawned and starts sampling a little later (the
manifest's anchor uncertainty, tens to hundreds of milliseconds), while slices are a
millisecond or less: the offset is measured, per process, as the shift that puts the
most samples whose handler is on their stack into a slice of a request of that same
endpoint. Without enough such samples, or without a clear agreement, the process's
samples keep the stack and time attribution (and nothing says "task").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# py-spy's samples are early by its start-up delay: shifts searched, coarse then fine
SEARCH_NS = (-50_000_000, 1_000_000_000)
COARSE_STEP_NS = 250_000  # shorter than the shortest steps that matter
FINE_STEP_NS = 25_000
MIN_CALIBRATION_SAMPLES = 20
MAX_CALIBRATION_SAMPLES = 5000
MIN_AGREEMENT = 0.6


def slice_table(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per slice: ``pid``, ``thread_id``, absolute ``start_ns``/``end_ns`` and
    ``row`` (the request's position in ``requests``), sorted by thread and start."""
    columns = ["pid", "thread_id", "start_ns", "end_ns", "row"]
    if "task_slices_us" not in requests or not len(requests):
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in columns})
    counts = requests["task_slices_us"].map(len).to_numpy(dtype=np.int64) // 2
    if not counts.sum():
        return pd.DataFrame({c: pd.Series([], dtype="int64") for c in columns})
    pairs = zip(requests["task_slices_us"], counts, strict=True)
    flat = np.concatenate([np.asarray(v, dtype=np.int64)[: 2 * n] for v, n in pairs])
    flat = flat.reshape(-1, 2)
    row = np.repeat(np.arange(len(requests)), counts)
    origin = requests["start_ns"].to_numpy(dtype=np.int64)[row]
    table = pd.DataFrame(
        {
            "pid": requests["pid"].to_numpy(dtype=np.int64)[row],
            "thread_id": requests["thread_id"].to_numpy(dtype=np.int64)[row],
            "start_ns": origin + flat[:, 0] * 1000,
            "end_ns": origin + flat[:, 1] * 1000,
            "row": row,
        }
    )
    return table.sort_values(["pid", "thread_id", "start_ns"], kind="stable", ignore_index=True)


def _owners(ts: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per time in ``ts``: the ``rows`` entry of the slice holding it, -1 when none."""
    at = np.searchsorted(starts, ts, side="right") - 1
    inside = (at >= 0) & (ts <= ends[np.clip(at, 0, None)])
    return np.where(inside, rows[np.clip(at, 0, None)], -1)


def task_owners(
    samples: pd.DataFrame, by_stack: np.ndarray, requests: pd.DataFrame
) -> tuple[np.ndarray, dict[int, int]]:
    """Per sample: the position in ``requests`` of the request whose task ran it (-1 for
    none), and the clock shift measured for each process (ns added to its samples)."""
    owner = np.full(len(samples), -1, dtype=np.int64)
    slices = slice_table(requests)
    shifts: dict[int, int] = {}
    if slices.empty or not len(samples):
        return owner, shifts
    endpoints = requests["endpoint"].to_numpy(dtype=object)
    pids = samples["pid"].to_numpy(dtype=np.int64)
    threads = samples["thread_id"].to_numpy(dtype=np.int64)
    ts = samples["ts_ns"].to_numpy(dtype=np.int64)
    for pid, own in slices.groupby("pid", sort=False):
        groups = []
        for thread, part in own.groupby("thread_id", sort=False):
            where = np.flatnonzero((pids == pid) & (threads == thread))
            if len(where):
                groups.append((where, part[["start_ns", "end_ns", "row"]].to_numpy(np.int64)))
        shift = _calibrate(groups, ts, by_stack, endpoints)
        if shift is None:
            continue
        shifts[int(pid)] = shift
        for where, part in groups:
            owner[where] = _owners(ts[where] + shift, part[:, 0], part[:, 1], part[:, 2])
    return owner, shifts


def _calibrate(
    groups: list[tuple[np.ndarray, np.ndarray]],
    ts: np.ndarray,
    by_stack: np.ndarray,
    endpoints: np.ndarray,
) -> int | None:
    """The shift that puts the most stack-attributed samples into a slice of a request of
    the same endpoint; None when too few samples say, or they do not agree."""
    known = [(w[by_stack[w] != ""], part) for w, part in groups]
    total = sum(len(w) for w, _ in known)
    if total < MIN_CALIBRATION_SAMPLES:
        return None
    if total > MAX_CALIBRATION_SAMPLES:  # evenly spread, enough to place a shift
        step = -(-total // MAX_CALIBRATION_SAMPLES)
        known = [(w[::step], part) for w, part in known]
        total = sum(len(w) for w, _ in known)

    def agreement(shift: int) -> float:
        hits = 0
        for where, part in known:
            rows = _owners(ts[where] + shift, part[:, 0], part[:, 1], part[:, 2])
            found = rows >= 0
            hits += int((endpoints[rows[found]] == by_stack[where][found]).sum())
        return hits / total

    low, high = SEARCH_NS
    coarse = np.arange(low, high + 1, COARSE_STEP_NS)
    best = _middle_of_best(coarse, np.array([agreement(int(s)) for s in coarse]))
    fine = np.arange(best - COARSE_STEP_NS, best + COARSE_STEP_NS + 1, FINE_STEP_NS)
    scores = np.array([agreement(int(s)) for s in fine])
    return _middle_of_best(fine, scores) if scores.max() >= MIN_AGREEMENT else None


def _middle_of_best(shifts: np.ndarray, scores: np.ndarray) -> int:
    """The middle of the shifts that score best: a sample is anywhere in its slice, so a
    run of equally good shifts is the uncertainty and its middle the estimate."""
    return int(np.median(shifts[scores == scores.max()]))
