"""A request's child tasks are the request's: with Starlette's BaseHTTPMiddleware the
endpoint runs in a task of its own, and its CPU must still fall in the request's slices."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from deskprof.probe import install
from deskprof.probe.reader import read_probe_dir

BUSY_S = 0.03


def _app() -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def timing(request, call_next):  # the pattern: BaseHTTPMiddleware
        return await call_next(request)

    @app.get("/work")
    async def work() -> dict[str, int]:
        until = time.perf_counter() + BUSY_S
        spins = 0
        while time.perf_counter() < until:  # on CPU, no await: one long step
            spins += 1
        return {"spins": spins}

    return app


def test_the_endpoint_task_under_base_http_middleware_is_in_the_request_slices(tmp_path):
    app = _app()
    handle = install(app, out_dir=tmp_path / "probe")
    try:
        with TestClient(app) as client:
            for _ in range(5):
                assert client.get("/work").status_code == 200
    finally:
        handle.close()
    requests = read_probe_dir(tmp_path / "probe")["requests"]
    assert len(requests) == 5
    for record in requests:
        slices = record["task_slices_us"]
        assert slices == sorted(slices), "slices in time order"
        covered_us = sum(end - start for start, end in zip(slices[::2], slices[1::2], strict=True))
        # the endpoint's 30 ms busy step runs in the child task: it must be covered
        assert covered_us >= BUSY_S * 1e6 * 0.9, (covered_us, slices)
