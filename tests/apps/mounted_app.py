"""A FastAPI app that mounts the Flask test app through WSGI middleware, as apps that
grow from Flask into FastAPI do: ``uvicorn tests.apps.mounted_app:app``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.wsgi import WSGIMiddleware

from tests.apps.flask_app import app as flask_app

app = FastAPI()


@app.get("/ping")
def ping() -> dict:
    return {"ok": True}


app.mount("/flask", WSGIMiddleware(flask_app))
