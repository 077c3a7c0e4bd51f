"""When a request's asyncio task actually ran: the slices between its awaits.

py-spy sees a thread, not a task: on an event loop thread the samples of many concurrent
requests interleave, and a time window cannot tell them apart. The ASGI middleware drives
the request's coroutine through :class:`Sliced`, which notes each step (from being
resumed to its next suspension) as a ``[start, end]`` slice of wall-clock time on this
thread. The analysis puts a CPU sample in the request whose slice holds it.

Tasks the request starts are the request's too: Starlette's ``BaseHTTPMiddleware``
(``@app.middleware("http")``) runs the endpoint in a child task, and so do task groups
and ``asyncio.gather``. :func:`slice_child_tasks` puts a task factory on the event loop
(chaining any the loop had) that drives every task created inside a request's context
through :class:`Sliced` into the same list; steps on one loop thread never overlap, so
the list stays in time order.

Cost: two ``time.time_ns()`` and a list append per step that suspends; steps a few
microseconds apart are merged, and a request keeps at most ``MAX_SLICES`` slices (the
rest are merged into the last one, which only coarsens it).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Coroutine, Generator
from typing import Any

MAX_SLICES = 512
MERGE_GAP_NS = 20_000  # steps closer than this are one slice (nothing else ran between)


class Sliced:
    """Awaitable that runs ``coroutine`` step by step, appending ``start, end`` pairs of
    each step to ``slices`` (a flat list, for cheap appends)."""

    __slots__ = ("coroutine", "slices")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], slices: list[int]) -> None:
        self.coroutine = coroutine
        self.slices = slices

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, slices = self.coroutine, self.slices
        value: Any = None
        error: BaseException | None = None
        while True:
            start = time.time_ns()
            try:
                yielded = coroutine.send(value) if error is None else coroutine.throw(error)
            except StopIteration as stop:
                _note(slices, start, time.time_ns())
                return stop.value
            except BaseException:
                _note(slices, start, time.time_ns())
                raise
            _note(slices, start, time.time_ns())
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as exc:  # cancellation and the like go to the coroutine
                value, error = None, exc


def _note(slices: list[int], start: int, end: int) -> None:
    if slices and (start - slices[-1] < MERGE_GAP_NS or len(slices) >= 2 * MAX_SLICES):
        slices[-1] = end
    else:
        slices.extend((start, end))


def relative_us(slices: list[int], origin_ns: int) -> list[int]:
    """The slices as microseconds after ``origin_ns`` (the request's start): small
    integers in the record instead of epoch nanoseconds."""
    return [(ns - origin_ns) // 1000 for ns in slices]


async def _sliced_task(coroutine: Coroutine[Any, Any, Any], slices: list[int]) -> Any:
    return await Sliced(coroutine, slices)


def slice_child_tasks(
    loop: asyncio.AbstractEventLoop, current: contextvars.ContextVar[Any]
) -> None:
    """Once per loop: tasks created while ``current`` holds a request (its ``slices``
    list) note their steps into that request's slices."""
    if getattr(loop, "_deskprof_slicing", False):
        return
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future:
        info = current.get(None)
        slices = getattr(info, "slices", None)
        if slices is not None and asyncio.iscoroutine(coro):
            coro = _sliced_task(coro, slices)
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    loop._deskprof_slicing = True  # type: ignore[attr-defined]
