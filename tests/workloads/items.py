"""A locustfile for the test apps (tests/apps) that knows nothing of deskprof, as a
user's own would: no request ids, no names for the single-item URLs. ``ITEMS_PREFIX``
is where the app serves them (``/api`` for a mounted sub-application)."""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant, task

PREFIX = os.environ.get("ITEMS_PREFIX", "")


class ItemsUser(HttpUser):
    wait_time = constant(0.02)

    @task(3)
    def items(self) -> None:
        self.client.get(f"{PREFIX}/items")

    @task(1)
    def item(self) -> None:
        self.client.get(f"{PREFIX}/items/{random.randint(1, 6)}", name=f"{PREFIX}/items/{{id}}")
