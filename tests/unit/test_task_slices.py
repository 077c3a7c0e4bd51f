"""When a request's task ran (the probe's slices) and which request a loop-thread CPU
sample belongs to (the analysis, with py-spy's clock offset measured)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from deskprof.analysis.task_slices import task_owners
from deskprof.probe.slices import MERGE_GAP_NS, Sliced, relative_us


def test_slices_cover_the_steps_and_results_and_errors_pass_through() -> None:
    slices: list[int] = []

    async def handler() -> str:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        return "done"

    async def main() -> str:
        return await Sliced(handler(), slices)

    assert asyncio.run(main()) == "done"
    assert len(slices) == 6  # three steps: start, after each sleep
    assert slices == sorted(slices)
    assert slices[2] - slices[1] > MERGE_GAP_NS  # the sleeps are gaps between slices

    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def run_failing() -> None:
        await Sliced(failing(), [])

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(run_failing())


def test_cancellation_reaches_the_wrapped_coroutine() -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.create_task(_drive(slow()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def _drive(coroutine) -> None:
        await Sliced(coroutine, [])

    asyncio.run(main())
    assert seen == ["cancelled"]


def test_relative_microseconds() -> None:
    assert relative_us([1_000_000, 1_005_000], 1_000_000) == [0, 5]


def _requests(slices_by_request: dict[str, tuple[str, list[tuple[int, int]]]]) -> pd.DataFrame:
    rows = []
    for request_id, (endpoint, slices) in slices_by_request.items():
        rows.append(
            {
                "request_id": request_id,
                "pid": 1,
                "thread_id": 7,
                "start_ns": 0,
                "endpoint": endpoint,
                "task_slices_us": [us for pair in slices for us in pair],
            }
        )
    return pd.DataFrame(rows)


def test_samples_go_to_the_request_whose_task_ran_with_the_clock_offset_measured() -> None:
    # two requests interleave on one loop thread (1 ms steps, idle gaps between); samples
    # whose handler is on the stack fix py-spy's clock offset, then each sample gets the
    # request whose step holds it, stack or not
    rng = np.random.default_rng(7)
    slices: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    t = 0
    while t < 300_000:  # µs: steps of 0.3-1.5 ms, idle gaps of 0.1-1.5 ms, in turn
        length, gap = int(rng.integers(300, 1500)), int(rng.integers(100, 1500))
        slices[len(slices[0]) > len(slices[1])].append((t, t + length))
        t += length + gap
    requests = _requests({"a": ("GET /items", slices[0]), "b": ("GET /items/{id}", slices[1])})
    true_ts = np.arange(0, 299_000_000, 700_000)
    truth = np.full(len(true_ts), -1)
    for row, pairs in slices.items():
        for start, end in pairs:
            truth[(true_ts >= start * 1000) & (true_ts <= end * 1000)] = row
    offset_ns = 37_000_000  # py-spy's samples are early by its start-up delay
    samples = pd.DataFrame({"pid": 1, "thread_id": 7, "ts_ns": true_ts - offset_ns})
    by_stack = np.array(["GET /items", "GET /items/{id}", ""], dtype=object)[truth]
    by_stack[::3] = ""  # a third of the samples have no handler frame (framework code)
    owner, shifts = task_owners(samples, by_stack, requests)
    assert abs(shifts[1] - offset_ns) <= 500_000
    assert (owner == truth).mean() > 0.95


def test_no_task_attribution_without_agreement() -> None:
    requests = _requests({"a": ("GET /items", [(0, 1000)])})
    samples = pd.DataFrame({"pid": 1, "thread_id": 7, "ts_ns": np.arange(0, 50) * 10_000_000})
    by_stack = np.full(len(samples), "GET /other", dtype=object)
    owner, shifts = task_owners(samples, by_stack, requests)
    assert shifts == {} and (owner == -1).all()
