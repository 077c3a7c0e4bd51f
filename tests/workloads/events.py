"""A locustfile for tests/apps/events_app.py that knows nothing of deskprof."""

from __future__ import annotations

from locust import HttpUser, constant, task


class EventsUser(HttpUser):
    wait_time = constant(0.02)

    @task(2)
    def recent(self) -> None:
        self.client.get("/events/recent")

    @task(1)
    def board(self) -> None:
        self.client.get("/events/board")
