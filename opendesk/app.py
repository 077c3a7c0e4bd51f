"""The FastAPI application factory.

``create_app()`` reads settings from the environment (what ``uvicorn --factory`` calls in
each worker); tests pass ``Settings`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from opendesk import metrics
from opendesk.api import articles, auth, reports, tickets, validation
from opendesk.config import Settings
from opendesk.context import AppContext

log = logging.getLogger("opendesk")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    ctx = AppContext.build(settings)
    metrics.instrument_engine(ctx.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = FastAPI(title="OpenDesk", version="1.0", lifespan=lifespan)
    app.state.ctx = ctx
    app.add_middleware(metrics.MetricsMiddleware)
    for module in (auth, tickets, reports, articles):
        app.include_router(module.router)
    validation.install(app)  # bad input is a 422 with FastAPI's body, never a 500
    app.add_route("/metrics", metrics.metrics_endpoint, include_in_schema=False)

    @app.get("/health", tags=["system"])
    def health() -> JSONResponse:
        status = {"status": "ok", "fixes": sorted(settings.fixes)}
        try:
            with ctx.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            status["database"] = "ok"
        except Exception as exc:
            status.update(status="degraded", database=f"error: {type(exc).__name__}")
        if ctx.redis is None:
            status["redis"] = "not configured"
        else:
            try:
                ctx.redis.ping()
                status["redis"] = "ok"
            except Exception as exc:
                status.update(status="degraded", redis=f"error: {type(exc).__name__}")
        return JSONResponse(status, status_code=200 if status["status"] == "ok" else 503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # a bug, not a user mistake: log it, answer JSON rather than a bare 500 page
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
