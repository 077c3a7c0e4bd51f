"""What ran a statement outside requests: the asyncio task's coroutine or the thread."""

from __future__ import annotations

import asyncio
import threading

import pandas as pd

from deskprof.analysis.attribution import attribute_queries
from deskprof.analysis.finding_text import saving_text
from deskprof.probe.context import outside_request


def test_a_thread_is_named_by_its_name() -> None:
    seen: list[str] = []
    worker = threading.Thread(target=lambda: seen.append(outside_request()), name="cleanup")
    worker.start()
    worker.join()
    assert seen == ["thread cleanup"]


def test_an_asyncio_task_is_named_by_its_coroutine() -> None:
    async def refresh_loop() -> str:
        return outside_request()

    async def main() -> str:
        return await asyncio.create_task(refresh_loop())

    assert asyncio.run(main()).startswith("task ")
    assert asyncio.run(main()).endswith("refresh_loop")


def test_a_task_the_app_named_is_named_by_its_name() -> None:
    """A generic runner's coroutine runs every job alike; the job's name says which."""

    async def execute() -> str:
        return outside_request()

    async def main() -> str:
        return await asyncio.create_task(execute(), name="prefect - task:late_runs")

    assert asyncio.run(main()) == "task prefect - task:late_runs"


def test_queries_outside_requests_get_their_group() -> None:
    queries = pd.DataFrame({"request_id": ["r1", "", ""], "context": ["", "task refresh_loop", ""]})
    requests = pd.DataFrame({"request_id": ["r1"], "endpoint": ["GET /items"]})
    endpoints = attribute_queries(queries, requests)["endpoint"].tolist()
    # an older bundle's statement without a context stays unnamed rather than invented
    assert endpoints == ["GET /items", "BACKGROUND task refresh_loop", ""]


def test_saving_of_background_work_counts_runs() -> None:
    assert saving_text(2.0, 5, "run") == "≈ 10 ms in total (2 ms per run x 5 runs)"
    assert saving_text(2.0, 5) == "≈ 10 ms in total (2 ms per request x 5 requests)"
