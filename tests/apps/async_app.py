"""A FastAPI app on async SQLAlchemy (``sqlite+aiosqlite`` or ``postgresql+asyncpg``, from
``TESTAPP_ASYNC_DATABASE_URL``): ``uvicorn tests.apps.async_app:app``.

Lazy loads cannot run under asyncio, so async apps write their N+1 by hand: one awaited
``session.get`` per row.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.apps.models import Item, Owner

engine = create_async_engine(os.environ["TESTAPP_ASYNC_DATABASE_URL"])
app = FastAPI()


async def _owner_name(session: AsyncSession, owner_id: int) -> str:
    owner = await session.get(Owner, owner_id)
    return owner.name if owner else ""


@app.get("/items")
async def list_items() -> list[dict]:
    async with AsyncSession(engine) as session:
        items = (await session.scalars(select(Item).order_by(Item.id))).all()
        return [{"id": i.id, "owner": await _owner_name(session, i.owner_id)} for i in items]


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict:
    async with AsyncSession(engine) as session:
        item = await session.get(Item, item_id)
        if item is None:
            raise HTTPException(404, "no such item")
        return {"id": item.id, "owner": await _owner_name(session, item.owner_id)}
