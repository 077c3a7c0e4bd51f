"""A FastAPI app with work outside requests, as real services have: an asyncio task
started at start-up (a refresh loop with one slow statement) and a worker thread (a
clean-up job): ``uvicorn tests.apps.background_app:app``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import TextClause, func, select, text
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)


def _slow_statement(target_s: float = 0.25) -> TextClause:
    """A statement taking about ``target_s`` on this host, over the slow-query threshold
    (p95 100 ms) however fast the host is: the count is calibrated here, once."""
    probe = 100_000
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text(_COUNT.format(n=probe))).scalar()
    elapsed = max(time.perf_counter() - started, 1e-4)
    return text(_COUNT.format(n=int(probe * target_s / elapsed)))


_COUNT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
    "SELECT count(*) FROM c"
)
SLOW = _slow_statement()
stop = threading.Event()


async def refresh_loop() -> None:
    while not stop.is_set():
        with engine.connect() as conn:
            conn.execute(SLOW).scalar()
        await asyncio.sleep(0.1)


def cleanup_worker() -> None:
    while not stop.wait(0.1):
        with Session(engine) as session:
            session.scalar(select(func.count()).select_from(Item))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(refresh_loop())
    worker = threading.Thread(target=cleanup_worker, name="cleanup", daemon=True)
    worker.start()
    yield
    stop.set()
    await task


app = FastAPI(lifespan=lifespan)


@app.get("/items")
def list_items() -> list[dict]:
    with Session(engine) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        return [{"id": i.id, "owner": i.owner.name} for i in items]
