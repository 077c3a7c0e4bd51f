"""A locustfile that touches every planted problem of the reference OpenDesk, in a fixed order.

The built-in ``mixed`` scenario draws its actions at random (a manager, one user in ten,
may export once or never in a short capture), so an acceptance test on it would be a
lottery. Here every virtual user runs the same cycle, each user starting at its own
offset, so a capture of ~10 s with a few users holds every endpoint several times:
ticket list and detail (N+1), filtered lists (missing index), deep pages (OFFSET and
COUNT(*), or the cursor when the server offers one), all five reports (recomputed,
SLA loop), the CSV export (built in memory) and a few comments (writes, which must not
hide the uncached reports: one comment every third cycle, seven reports per cycle).

Every request carries an ``X-Request-ID`` the probe adopts; deskprof's recorder plugin
writes it into the workload table so both sides join.
"""

from __future__ import annotations

import itertools
import uuid

from locust import FastHttpUser, between, task

PASSWORD = "opendesk"
AS_OF = "2026-11-02"  # the seeded data ends here (tests/conftest.py ANCHOR)
_users = itertools.count()


class AcceptanceUser(FastHttpUser):
    wait_time = between(0.0, 0.05)

    def on_start(self) -> None:
        self.number = next(_users)
        self.token = ""
        self.cursor: str | None = None
        self.page = 200 + 7 * self.number  # 25 a page: rows 5,000 and beyond
        self.steps = itertools.cycle(self._cycle())
        for _ in range(self.number * 8):  # users start at different points of the cycle
            next(self.steps)
        body = self.send("POST", "/auth/login", "POST /auth/login", json={
            "email": f"agent{self.number % 20 + 1}@opendesk.test", "password": PASSWORD,
        })  # fmt: skip
        self.token = (body or {}).get("token", "")
        # a client of a server that pages by cursor starts at page 1 and follows cursors
        self.keyset = bool(
            (self.get("/tickets?page_size=1", "GET /tickets?page") or {}).get("next_cursor")
        )
        self.passes = 0

    def send(self, method: str, path: str, name: str, **kwargs) -> dict | None:
        headers = {"X-Request-ID": uuid.uuid4().hex}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        with self.client.request(
            method, path, name=name, headers=headers, catch_response=True, **kwargs
        ) as response:
            if not response.status_code or response.status_code >= 400:
                response.failure(f"HTTP {response.status_code}")
                return None
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return {}

    def _cycle(self) -> list:
        """One pass over the service: lists, details and pages between cheap reports (so
        each report repeats with no write in between), then every other pass the export
        and the heavier reports (one kind a pass), and a comment (a write) every third."""
        n = self.number

        def report(name: str):
            return lambda: self.get(f"/reports/{name}?as_of={AS_OF}", f"GET /reports/{name}")

        return [
            lambda: self.get("/tickets", "GET /tickets"),
            report("ticket-stats"),
            self.deep_page,
            report("daily-trends"),
            lambda: self.get(f"/tickets/{1 + 97 * n}", "GET /tickets/{id}"),
            report("distribution"),
            self.deep_page,
            report("ticket-stats"),
            lambda: self.get("/tickets?status=open&sort=updated_at", "GET /tickets?status"),
            report("daily-trends"),
            self.export,
            report("distribution"),
            self.deep_page,
            lambda: self.get("/tickets?priority=high", "GET /tickets?priority"),
            report("ticket-stats"),
            lambda: report(("agent-performance", "sla-compliance")[self.passes % 2])(),
            self.comment,
        ]

    def get(self, path: str, name: str) -> dict | None:
        return self.send("GET", path, name)

    def deep_page(self) -> None:
        """The next deep page: by cursor when the server gave one, else by page number."""
        if self.cursor:
            body = self.send("GET", f"/tickets?cursor={self.cursor}", "GET /tickets?cursor")
        else:
            page = 1 if self.keyset else self.page
            body = self.send("GET", f"/tickets?page={page}", "GET /tickets?page")
            self.page = self.page + 17 if self.page < 380 else 200
        self.cursor = (body or {}).get("next_cursor")

    def export(self) -> None:
        """Every other pass, the users taking turns (the second one in its first pass)."""
        if (self.passes + self.number) % 2 == 1:
            self.get("/tickets/export.csv", "GET /tickets/export.csv")

    def comment(self) -> None:
        """A write every third pass: a helpdesk is read-mostly, and a write invalidates the
        fixed service's cached counts and reports."""
        self.passes += 1
        if self.passes % 3:
            return
        self.send(
            "POST", f"/tickets/{1 + 13 * self.number}/comments", "POST /tickets/{id}/comments",
            json={"body": "Looking into this now.", "internal": False},
        )  # fmt: skip

    @task
    def next_step(self) -> None:
        next(self.steps)()
