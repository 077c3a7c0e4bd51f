"""What one probe record costs on this host, measured, for a capture's overhead estimate.

A capture knows how many records each target process wrote per second; multiplied by the
cost of one record it gives the probe's share of the target's time. The cost is measured
here, in the capturing process on the same host, by timing the real hooks against the
same work without them:

- a query: the SQL hooks (before and after the cursor executes) called with the real
  arguments of an ORM ``SELECT`` on in-memory SQLite, median of repeats;
- a request: the ASGI middleware around a minimal ASGI app vs the bare app;
- a pool event: the checkout hook called directly;
- writing: ``json.dumps`` of the records produced, which the flush thread does in the
  target (another thread, but it holds the GIL while it runs).

It is an estimate: the target's stacks are deeper than this benchmark's (the call-site
walk is per frame), and its cache state differs. ``benchmarks/capture_overhead.py``
measures the cost end to end on the reference service.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deskprof.probe.asgi import ProbeASGIMiddleware
from deskprof.probe.recorder import Recorder
from deskprof.probe.sql import SqlHooks

METHOD = (
    "deskprof.probe.cost: real hooks timed against the same work without them in the "
    "capturing process on this host (SQL hooks with the arguments of an ORM SELECT on "
    "in-memory SQLite; ASGI middleware around a minimal app vs the bare app, interleaved), "
    "medians of repeats, plus json serialisation of the records written"
)


def _query_cost_ns(hooks: SqlHooks, n: int, repeats: int) -> list[float]:
    """The before/after hook pair, called with the real arguments of one ORM SELECT."""
    from sqlalchemy import Integer, String, create_engine, event, select
    from sqlalchemy.orm import DeclarativeBase, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = "rows"
        id = mapped_column(Integer, primary_key=True)
        name = mapped_column(String(20))

    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    seen: list[tuple[Any, ...]] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args))
    with Session(engine) as session:
        session.add(Row(id=3, name="row 3"))
        session.flush()
        seen.clear()
        session.execute(select(Row).where(Row.id == 3)).all()
        args = seen[-1]
        before, after = hooks.before, hooks.after_cursor_execute
        timings = []
        for _ in range(repeats):
            started = time.perf_counter_ns()
            for _ in range(n):
                before(*args)
                after(*args)
            timings.append((time.perf_counter_ns() - started) / n)
    engine.dispose()
    return timings


def _asgi_arm(recorder: Recorder | None) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = ProbeASGIMiddleware(app, recorder) if recorder is not None else app
    headers = [(b"host", b"127.0.0.1"), (b"x-request-id", b"0123456789abcdef")]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    async def many(n: int) -> None:
        for _ in range(n):
            scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}
            await wrapped(scope, receive, send)

    def timed(n: int) -> float:
        loop = asyncio.new_event_loop()
        try:
            started = time.perf_counter_ns()
            loop.run_until_complete(many(n))
            return (time.perf_counter_ns() - started) / n
        finally:
            loop.close()

    def run(n: int) -> float:
        # on a thread of its own: the caller may be inside a running event loop (a
        # Jupyter kernel), where a second loop cannot run on the same thread
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(timed, n).result()

    return run


def measure(n: int = 1000, repeats: int = 5) -> dict[str, Any]:
    """Per-record costs in microseconds: ``query_us``, ``request_us``, ``pool_event_us``,
    ``write_us`` (serialising one record), with how they were measured."""
    with tempfile.TemporaryDirectory(prefix="deskprof-cost-") as tmp:
        recorder = Recorder(tmp, start=False, max_records=10 * n * repeats + 100)
        hooks = SqlHooks(recorder)
        asgi_with = _asgi_arm(recorder)
        asgi_bare = _asgi_arm(None)
        query = _query_cost_ns(hooks, n, repeats)
        request = []
        asgi_with(20), asgi_bare(20)  # warm up
        for i in range(repeats):
            if i % 2:
                t_off, t_on = asgi_bare(n), asgi_with(n)
            else:
                t_on, t_off = asgi_with(n), asgi_bare(n)
            request.append(t_on - t_off)
        records = list(recorder._buf)
        recorder._buf.clear()
        started = time.perf_counter_ns()
        for _ in range(3):
            for record in records:
                json.dumps(record, separators=(",", ":"), default=repr)
        write_ns = (time.perf_counter_ns() - started) / max(1, 3 * len(records))
        started = time.perf_counter_ns()
        for _ in range(n):
            hooks.on_checkout(recorder, None, None)
        pool_ns = (time.perf_counter_ns() - started) / n
        recorder._buf.clear()
        recorder.close()
    return {
        "query_us": round(max(0.0, statistics.median(query)) / 1000, 2),
        "request_us": round(max(0.0, statistics.median(request)) / 1000, 2),
        "pool_event_us": round(pool_ns / 1000, 2),
        "write_us": round(write_ns / 1000, 2),
        "n": n,
        "repeats": repeats,
        "method": METHOD,
    }
