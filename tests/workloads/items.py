"""A locustfile for the test apps (tests/apps) that knows nothing of deskprof, as a
user's own would: no request ids, no names for the single-item URLs."""

from __future__ import annotations

import random

from locust import HttpUser, constant, task


class ItemsUser(HttpUser):
    wait_time = constant(0.02)

    @task(3)
    def items(self) -> None:
        self.client.get("/items")

    @task(1)
    def item(self) -> None:
        self.client.get(f"/items/{random.randint(1, 6)}", name="/items/{id}")
