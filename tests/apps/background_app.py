"""A FastAPI app with work outside requests, as real services have: an asyncio task
started at start-up (a refresh loop with one slow statement) and a worker thread (a
clean-up job): ``uvicorn tests.apps.background_app:app``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)
# 120 to 400 ms on SQLite (by machine): slower than the slow-query threshold (p95 100 ms)
SLOW = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) "
    "SELECT count(*) FROM c"
)
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
