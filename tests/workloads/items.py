"""A locustfile for the test apps (tests/apps): the item list (an N+1) and one item."""

from __future__ import annotations

import random
import uuid

from locust import HttpUser, constant, task


class ItemsUser(HttpUser):
    wait_time = constant(0.02)

    def _headers(self) -> dict[str, str]:
        return {"X-Request-ID": uuid.uuid4().hex}

    @task(3)
    def items(self) -> None:
        self.client.get("/items", name="GET /items", headers=self._headers())

    @task(1)
    def item(self) -> None:
        item_id = random.randint(1, 6)
        self.client.get(f"/items/{item_id}", name="GET /items/{id}", headers=self._headers())
