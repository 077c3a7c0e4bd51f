"""A FastAPI app on SQLModel (its own table models over the same tables), with
``def`` endpoints and a lazy relationship: ``uvicorn tests.apps.sqlmodel_app:app``."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from sqlmodel import Field, Relationship, Session, SQLModel, select

from tests.apps.models import make_engine


class OwnerRow(SQLModel, table=True):
    __tablename__ = "owners"
    id: int | None = Field(default=None, primary_key=True)
    name: str


class ItemRow(SQLModel, table=True):
    __tablename__ = "items"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    owner_id: int = Field(foreign_key="owners.id")
    owner: OwnerRow = Relationship()  # lazy: one query per item


engine = make_engine()
app = FastAPI()


@app.get("/items")
def list_items() -> list[dict]:
    with Session(engine) as session:
        items = session.exec(select(ItemRow).order_by(ItemRow.id)).all()
        return [{"id": i.id, "owner": i.owner.name} for i in items]


@app.get("/items/{item_id}")
def get_item(item_id: int) -> dict:
    with Session(engine) as session:
        item = session.get(ItemRow, item_id)
        if item is None:
            raise HTTPException(404, "no such item")
        return {"id": item.id, "owner": item.owner.name}
