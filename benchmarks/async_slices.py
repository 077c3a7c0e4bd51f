"""What noting task slices costs an async request: plain ``await`` vs :class:`Sliced`.

The probe drives every ASGI request's coroutine through ``deskprof.probe.slices.Sliced``
so that CPU samples on an event-loop thread can be given to the request whose task was
running. This prices that wrapper, side by side in one process, on two workloads:

    steps     a coroutine that suspends ``--steps`` times (``asyncio.sleep(0)``): the
              wrapper's cost per step, with nothing else to hide it
    request   an async handler doing ``--queries`` aiosqlite queries on a small table
              (real awaits on a database thread, as the matrix's async cells do)

Each round runs both arms in a new random order; a round's figure is the median over
``--repeats`` runs. Ratios are of the medians over rounds, with a 95% bootstrap CI paired
by round (``deskprof.experiment.stats.compare``).

    python benchmarks/async_slices.py [--rounds 15] [--steps 2000] [--queries 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiosqlite

from deskprof.experiment.stats import compare
from deskprof.probe.slices import Sliced

Factory = Callable[[], Coroutine[Any, Any, Any]]


async def suspending(steps: int) -> None:
    for _ in range(steps):
        await asyncio.sleep(0)


async def plain(factory: Factory) -> None:
    await factory()


async def sliced(factory: Factory) -> None:
    await Sliced(factory(), [])


async def timed(arm: Callable[[Factory], Awaitable[None]], factory: Factory, repeats: int) -> float:
    """Median wall time of ``repeats`` runs of ``arm`` on a fresh coroutine, in µs."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        await arm(factory)
        times.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(times)


async def run(args: argparse.Namespace, database: Path) -> dict[str, dict[str, list[float]]]:
    async with aiosqlite.connect(database) as connection:
        await connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        await connection.executemany(
            "INSERT INTO item (name) VALUES (?)", [(f"item {i}",) for i in range(200)]
        )
        await connection.commit()

        async def request() -> None:
            for i in range(args.queries):
                async with connection.execute("SELECT name FROM item WHERE id = ?", (i + 1,)) as c:
                    await c.fetchall()

        workloads: dict[str, Factory] = {
            "steps": lambda: suspending(args.steps),
            "request": request,
        }
        arms = {"plain": plain, "sliced": sliced}
        results = {w: {a: [] for a in arms} for w in workloads}
        for factory in workloads.values():
            for arm in arms.values():  # warm-up, not recorded
                await timed(arm, factory, 3)
        order = list(arms)
        for _ in range(args.rounds):
            for workload, factory in workloads.items():
                random.shuffle(order)
                for name in order:
                    results[workload][name].append(await timed(arms[name], factory, args.repeats))
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=10)
    args, _ = parser.parse_known_args()  # make bench passes every benchmark the same flags
    random.seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        results = asyncio.run(run(args, Path(scratch) / "bench.sqlite3"))
    print(f"{args.rounds} rounds, median of {args.repeats} runs each; ratio sliced/plain, 95% CI")
    print(f"{'workload':<34}{'plain µs':>10}{'sliced µs':>11}{'ratio':>8}  CI")
    labels = {
        "steps": f"steps ({args.steps} suspensions)",
        "request": f"request ({args.queries} aiosqlite queries)",
    }
    for workload, arms in results.items():
        result = compare(arms["plain"], arms["sliced"], paired=True)
        print(
            f"{labels[workload]:<34}{result.baseline:>10.0f}{result.candidate:>11.0f}"
            f"{result.ratio:>8.3f}  [{result.ci_low:.3f}, {result.ci_high:.3f}]"
        )
        if workload == "steps":
            extra_ns = (result.candidate - result.baseline) * 1000 / args.steps
            print(f"{'':<34}about {extra_ns:.0f} ns more per suspension")
    return 0


if __name__ == "__main__":
    sys.exit(main())
