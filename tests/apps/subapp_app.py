"""A FastAPI app with its API in a mounted sub-application (``app.mount``), as versioned
APIs are built: ``uvicorn tests.apps.subapp_app:app``; the items are under ``/api``."""

from __future__ import annotations

from fastapi import FastAPI

from tests.apps.fastapi_app import app as api

app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {"ok": True}


app.mount("/api", api)
