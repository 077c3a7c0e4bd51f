"""A FastAPI app that leaks on purpose: every list request adds its rendered page to a
module-level cache that is never bounded (the classic "memoise everything" leak):
``uvicorn tests.apps.leaky_app:app``."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()
_RENDERED: list[bytes] = []  # grows by one page per request, never trimmed


@app.get("/items")
def list_items() -> dict:
    page = bytes(200_000) + str(len(_RENDERED)).encode()
    _RENDERED.append(page)
    return {"cached_pages": len(_RENDERED)}


@app.get("/items/{item_id}")
def get_item(item_id: int) -> dict:
    return {"id": item_id}
