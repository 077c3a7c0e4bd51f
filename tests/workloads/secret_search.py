"""A locustfile that sends a secret where real users put theirs: a search box, a comment
body. The report test proves the secret reaches the bundle (with --keep-parameters) and
never the shared report."""

from __future__ import annotations

import os
import uuid

from locust import HttpUser, constant, task

SECRET = os.environ.get("DESKPROF_TEST_SECRET", "planted-secret")


class SecretSharingAgent(HttpUser):
    wait_time = constant(0.1)

    def on_start(self) -> None:
        response = self.client.post(
            "/auth/login", json={"email": "agent1@opendesk.test", "password": "opendesk"}
        )
        self.client.headers["Authorization"] = f"Bearer {response.json()['token']}"

    def _headers(self) -> dict[str, str]:
        return {"X-Request-ID": uuid.uuid4().hex}

    @task(3)
    def search(self) -> None:
        self.client.get(f"/articles?q={SECRET}", name="GET /articles?q", headers=self._headers())

    @task(1)
    def unnamed_search(self) -> None:
        # no name: Locust labels it by its URL, query included (deskprof redacts it)
        self.client.get(f"/tickets?q={SECRET}", headers=self._headers())

    @task(2)
    def ticket_list(self) -> None:
        self.client.get("/tickets", name="GET /tickets", headers=self._headers())

    @task(1)
    def comment(self) -> None:
        self.client.post(
            "/tickets/1/comments",
            json={"body": f"my password is {SECRET}", "internal": True},
            name="POST /tickets/{id}/comments",
            headers=self._headers(),
        )
