"""An ordinary FastAPI + SQLAlchemy app: ``uvicorn tests.apps.fastapi_app:app``."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)  # at import, in every worker (tables exist: only checks)
app = FastAPI()


def _item(session: Session, item_id: int) -> dict:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return {"id": item.id, "title": item.title, "owner": item.owner.name}


@app.get("/items")
def list_items() -> list[dict]:
    with Session(engine) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        return [{"id": i.id, "title": i.title, "owner": i.owner.name} for i in items]


@app.get("/items/{item_id}")
def get_item(item_id: int) -> dict:
    with Session(engine) as session:
        return _item(session, item_id)


@app.get("/async/items/{item_id}")
async def get_item_async(item_id: int) -> dict:
    with Session(engine) as session:
        return _item(session, item_id)


@app.get("/stream")
def stream() -> StreamingResponse:
    def chunks():
        for n in range(3):
            with engine.connect() as conn:
                yield f"{conn.execute(text('SELECT :n'), {'n': n}).scalar()}\n"

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/boom")
def boom() -> dict:
    raise RuntimeError("boom")
