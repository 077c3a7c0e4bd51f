"""A locustfile for ``tests/apps/idle_threads_app.py``: CPU-bound requests with pauses."""

from __future__ import annotations

from locust import HttpUser, constant, task


class WorkUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def work(self) -> None:
        self.client.get("/work")
