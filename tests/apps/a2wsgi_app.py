"""A FastAPI app mounting the Flask test app through a2wsgi's WSGIMiddleware (the
adapter Starlette's own docs point to): ``uvicorn tests.apps.a2wsgi_app:app``; the
Flask views are under ``/legacy``."""

from __future__ import annotations

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI

from tests.apps.flask_app import app as flask_app

app = FastAPI()


@app.get("/health")
def health() -> dict:
    return {"ok": True}


app.mount("/legacy", WSGIMiddleware(flask_app))
