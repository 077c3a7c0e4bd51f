"""A FastAPI app over a 40,000-row event log with the index mistakes real schemas have:
``uvicorn tests.apps.events_app:app``.

- ``GET /events/recent``: open events after a time, newest first. ``status`` and
  ``created`` each have an index; SQLite, without statistics, looks up by the equality
  on ``status`` (half the table per value) and sorts, where an index on
  ``(status, created)`` reads the 20 rows it returns.
- ``GET /events/board``: ordered by ``coalesce(closed, created)``, an expression no
  index on the bare columns serves: only an expression index does.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from tests.apps.models import make_engine

N_EVENTS = 40_000
metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(10), nullable=False),
    Column("created", Integer, nullable=False),
    Column("closed", Integer),
    Column("title", String(60), nullable=False),
    Index("ix_events_created", "created"),
    Index("ix_events_status", "status"),
)
engine = make_engine()
metadata.create_all(engine)
with engine.begin() as conn:
    if not conn.scalar(select(func.count()).select_from(events)):
        conn.execute(
            insert(events),
            [
                {"status": ("open", "closed")[n % 2], "created": n,
                 "closed": n + 5 if n % 2 else None, "title": f"event {n}"}
                for n in range(N_EVENTS)
            ],
        )  # fmt: skip

app = FastAPI()


@app.get("/events/recent")
def recent(since: int = N_EVENTS - 2_000) -> list[dict]:
    query = (
        select(events.c.id, events.c.title)
        .where(events.c.status == "open", events.c.created > since)
        .order_by(events.c.created.desc())
        .limit(20)
    )
    with Session(engine) as session:
        return [dict(row._mapping) for row in session.execute(query)]


@app.get("/events/board")
def board() -> list[dict]:
    query = (
        select(events.c.id, events.c.title)
        .order_by(func.coalesce(events.c.closed, events.c.created).desc())
        .limit(20)
    )
    with Session(engine) as session:
        return [dict(row._mapping) for row in session.execute(query)]
