"""A locustfile for tests/apps/hot_row_app.py that knows nothing of deskprof: most views
go to one popular item, as on a forum's front page."""

from __future__ import annotations

import random

from locust import HttpUser, constant, task


class ViewsUser(HttpUser):
    wait_time = constant(0.01)

    @task
    def view(self) -> None:
        item = 1 if random.random() < 0.8 else random.randint(2, 6)
        self.client.get(f"/items/{item}", name="/items/{id}")
