"""A plain Starlette app with sync endpoints (run in Starlette's threadpool), as small
services write them: ``uvicorn tests.apps.starlette_app:app``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.apps.models import Base, Item, make_engine

engine = make_engine()
Base.metadata.create_all(engine)


def list_items(request: Request) -> JSONResponse:
    with Session(engine) as session:
        items = session.scalars(select(Item).order_by(Item.id)).all()
        return JSONResponse([{"id": i.id, "owner": i.owner.name} for i in items])


def get_item(request: Request) -> JSONResponse:
    with Session(engine) as session:
        item = session.get(Item, request.path_params["item_id"])
        if item is None:
            return JSONResponse({"detail": "no such item"}, status_code=404)
        return JSONResponse({"id": item.id, "owner": item.owner.name})


app = Starlette(
    routes=[Route("/items", list_items), Route("/items/{item_id:int}", get_item)],
)
