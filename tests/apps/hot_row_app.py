"""A FastAPI app that counts page views in the row it shows, as forums do
(``UPDATE items SET views = views + 1 WHERE id = ?`` on every view), and then renders
inside the same transaction: every view of the popular item waits for the one before it
to commit. ``uvicorn tests.apps.hot_row_app:app``."""

from __future__ import annotations

import time

from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)
RENDER_S = 0.03  # the page's work done while the write's lock is held

app = FastAPI()


@app.get("/items/{item_id}")
def view_item(item_id: int) -> dict:
    with Session(engine) as session:
        session.execute(update(Item).where(Item.id == item_id).values(views=Item.views + 1))
        item = session.scalars(select(Item).where(Item.id == item_id)).one()
        time.sleep(RENDER_S)
        session.commit()
        return {"id": item.id, "title": item.title, "views": item.views}
