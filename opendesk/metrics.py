"""Prometheus metrics: request counts and latency by route, database pool activity.

With several worker processes, ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so every
worker writes its samples there and /metrics aggregates them, as prometheus_client's
multiprocess mode documents.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("opendesk_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "opendesk_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_CONNECTIONS = Counter("opendesk_db_connections_opened_total", "new DBAPI connections")
DB_CHECKOUTS = Counter("opendesk_db_checkouts_total", "connection checkouts from the pool")
DB_IN_USE = Gauge(
    "opendesk_db_connections_in_use", "connections checked out now", multiprocess_mode="livesum"
)


class MetricsMiddleware:
    """Pure ASGI middleware: it never buffers bodies, so streaming stays streaming."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "GET")
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)


def instrument_engine(engine: Engine) -> None:
    event.listen(engine, "connect", lambda *_: DB_CONNECTIONS.inc())
    event.listen(engine, "checkout", lambda *_: (DB_CHECKOUTS.inc(), DB_IN_USE.inc()))
    event.listen(engine, "checkin", lambda *_: DB_IN_USE.dec())


def metrics_endpoint(_request: Request) -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
