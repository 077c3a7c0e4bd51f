"""Locust scenarios for OpenDesk (a locustfile; run by ``deskprof.capture.workload``).

Every request is recorded by the generator itself, on the capture clock (epoch ns):
intended start, actual start, end, name, status, and the ``X-Request-ID`` sent, which
the probe adopts so both sides join. Locust's own (rounded) statistics are not used.

Scenario names (``DESKPROF_SCENARIO``): ``mixed`` (default: agents, customers and
managers in a 6:3:1 mix), ``agent``, ``customer``, ``manager``, ``ticket_list``.
Open loop (``DESKPROF_RATE`` > 0): requests are sent at a fixed arrival rate whatever
the server does, and latency counts from the intended send time, so a stalled server
cannot hide its queue (no coordinated omission).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid

import gevent
from locust import FastHttpUser, User, between, events, task
from locust.env import Environment

OUT_DIR = os.environ.get("DESKPROF_WORKLOAD_DIR", ".")
SCENARIO = os.environ.get("DESKPROF_SCENARIO", "mixed")
RATE = float(os.environ.get("DESKPROF_RATE", "0") or 0)
PASSWORD = os.environ.get("DESKPROF_PASSWORD", "opendesk")
AGENTS = int(os.environ.get("DESKPROF_AGENTS", "20"))
CUSTOMERS = int(os.environ.get("DESKPROF_CUSTOMERS", "200"))
SEED = int(os.environ.get("DESKPROF_SEED", "42"))


class Recorder:
    """Per-process record buffer, written as JSON lines at the end (and every 2 s)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.path = os.path.join(OUT_DIR, f"workload-{os.getpid()}.jsonl")

    def add(self, row: dict) -> None:
        with self.lock:
            self.rows.append(row)

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            with open(self.path, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(r) + "\n" for r in rows)


RECORDER = Recorder()


@events.init.add_listener
def _start_flusher(environment: Environment, **_kwargs) -> None:
    def loop() -> None:
        while True:
            gevent.sleep(2)
            RECORDER.flush()

    gevent.spawn(loop)


@events.quitting.add_listener
def _final_flush(**_kwargs) -> None:
    RECORDER.flush()


class OpenDeskClient:
    """What every virtual user does: log in, then send recorded requests."""

    def setup_client(self, email: str) -> None:
        self.rng = random.Random(f"{SEED}:{email}:{id(self)}")
        self.token = None
        self.max_ticket = 1000
        login = self.call(
            "POST", "/auth/login", "POST /auth/login", json={"email": email, "password": PASSWORD}
        )
        if login:
            self.token = login["token"]

    def call(self, method: str, path: str, name: str, intended_ns: int | None = None, **kw):
        request_id = uuid.uuid4().hex
        headers = {"X-Request-ID": request_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        start_ns = time.time_ns()
        status, error, body = 0, "", None
        try:
            with self.client.request(
                method, path, name=name, headers=headers, catch_response=True, **kw
            ) as response:
                status = response.status_code or 0
                if status >= 400 or status == 0:
                    error = f"HTTP {status}" if status else str(response.error or "no response")
                    response.failure(error)
                elif response.headers.get("content-type", "").startswith("application/json"):
                    body = response.json()
        except Exception as exc:  # a dead server must still be recorded, not crash the user
            error = f"{type(exc).__name__}: {exc}"[:200]
        end_ns = time.time_ns()
        intended = intended_ns or start_ns
        RECORDER.add(
            {
                "name": name,
                "method": method,
                "intended_ns": intended,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "latency_ns": end_ns - intended,
                "status": status,
                "error": error,
                "user": type(self).__name__,
                "request_id": request_id,
            }
        )
        return body

    def ticket_id(self) -> int:
        return self.rng.randint(1, self.max_ticket)

    # --- actions ---------------------------------------------------------------------

    def browse_queue(self, intended_ns=None):
        page = self.call(
            "GET", "/tickets?assignee=me&status=open", "GET /tickets?assignee=me", intended_ns
        )
        if page and page.get("total"):
            self.max_ticket = max(self.max_ticket, page["total"])

    def list_tickets(self, intended_ns=None):
        page = self.call("GET", "/tickets", "GET /tickets", intended_ns)
        if page and page.get("items"):
            self.max_ticket = max(self.max_ticket, max(i["id"] for i in page["items"]))

    def page_through(self, intended_ns=None):
        """Pages 1..n; follows next_cursor when the server offers one (keyset fix)."""
        cursor, depth = None, self.rng.choice((2, 3, 5, 50))
        for number in range(1, depth + 1):
            if cursor:
                path, name = f"/tickets?cursor={cursor}", "GET /tickets?cursor"
            else:
                path, name = f"/tickets?page={number}", "GET /tickets?page"
            page = self.call("GET", path, name, intended_ns)
            if not page:
                return
            cursor = page.get("next_cursor")

    def open_ticket(self, intended_ns=None):
        self.call("GET", f"/tickets/{self.ticket_id()}", "GET /tickets/{id}", intended_ns)

    def comment(self, intended_ns=None):
        self.call(
            "POST",
            f"/tickets/{self.ticket_id()}/comments",
            "POST /tickets/{id}/comments",
            intended_ns,
            json={"body": "Looking into this now.", "internal": self.rng.random() < 0.3},
        )

    def update_ticket(self, intended_ns=None):
        status = self.rng.choice(["in_progress", "on_hold", "resolved"])
        self.call(
            "PATCH",
            f"/tickets/{self.ticket_id()}",
            "PATCH /tickets/{id}",
            intended_ns,
            json={"status": status},
        )

    def dashboard(self, intended_ns=None):
        self.call("GET", "/dashboard", "GET /dashboard", intended_ns)

    def create_ticket(self, intended_ns=None):
        self.call(
            "POST",
            "/tickets",
            "POST /tickets",
            intended_ns,
            json={
                "title": "Cannot export invoices",
                "description": "The export button spins forever.",
                "priority": self.rng.choice(["low", "medium", "high", "urgent"]),
                "category_id": self.rng.randint(1, 12),
            },
        )

    def own_tickets(self, intended_ns=None):
        self.call("GET", "/tickets?sort=-updated_at", "GET /tickets (customer)", intended_ns)

    def kb_search(self, intended_ns=None):
        word = self.rng.choice(["login", "invoice", "export", "password", "sso"])
        found = self.call("GET", f"/articles?q={word}", "GET /articles?q", intended_ns)
        if found and found.get("items"):
            article = self.rng.choice(found["items"])["id"]
            self.call("GET", f"/articles/{article}", "GET /articles/{id}", intended_ns)

    def report(self, intended_ns=None):
        name = self.rng.choice(
            ["ticket-stats", "daily-trends", "agent-performance", "sla-compliance", "distribution"]
        )
        self.call("GET", f"/reports/{name}", f"GET /reports/{name}", intended_ns)

    def export(self, intended_ns=None):
        status = self.rng.choice(["open", "on_hold", "in_progress"])
        self.call(
            "GET",
            f"/tickets/export.csv?status={status}",
            "GET /tickets/export.csv",
            intended_ns,
        )


class AgentUser(OpenDeskClient, FastHttpUser):
    weight = 6
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.setup_client(f"agent{random.randint(1, AGENTS)}@opendesk.test")

    @task(5)
    def t_queue(self):
        self.browse_queue()

    @task(4)
    def t_list(self):
        self.list_tickets()

    @task(5)
    def t_open(self):
        self.open_ticket()

    @task(1)
    def t_pages(self):
        self.page_through()

    @task(2)
    def t_dashboard(self):
        self.dashboard()

    @task(2)
    def t_comment(self):
        self.comment()

    @task(1)
    def t_update(self):
        self.update_ticket()


class CustomerUser(OpenDeskClient, FastHttpUser):
    weight = 3
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.setup_client(f"customer{random.randint(1, CUSTOMERS)}@example.com")

    @task(2)
    def t_create(self):
        self.create_ticket()

    @task(3)
    def t_mine(self):
        self.own_tickets()

    @task(3)
    def t_kb(self):
        self.kb_search()


class ManagerUser(OpenDeskClient, FastHttpUser):
    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.setup_client("admin1@opendesk.test")

    @task(4)
    def t_report(self):
        self.report()

    @task(1)
    def t_export(self):
        self.export()


class TicketListUser(OpenDeskClient, FastHttpUser):
    """One request type, for overhead measurements."""

    wait_time = between(0.0, 0.0)

    def on_start(self) -> None:
        self.setup_client(f"agent{random.randint(1, AGENTS)}@opendesk.test")

    @task
    def t_list(self):
        self.list_tickets()


MIX = [
    (AgentUser, ("browse_queue", "list_tickets", "open_ticket", "dashboard", "comment")),
    (CustomerUser, ("create_ticket", "own_tickets", "kb_search")),
    (ManagerUser, ("report", "export")),
]


class OpenLoopUser(OpenDeskClient, FastHttpUser):
    """Sends requests at DESKPROF_RATE per second, each in its own greenlet."""

    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.setup_client(f"agent{random.randint(1, AGENTS)}@opendesk.test")
        self.actions = (
            ["list_tickets"]
            if SCENARIO == "ticket_list"
            else [a for _, actions in MIX for a in actions]
        )
        self.started = time.monotonic()
        self.epoch_at_start = time.time_ns()
        self.counter = itertools.count()

    @task
    def t_arrivals(self):
        k = next(self.counter)
        due = self.started + k / RATE
        delay = due - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        intended_ns = self.epoch_at_start + int(k / RATE * 1e9)
        action = getattr(self, self.rng.choice(self.actions))
        gevent.spawn(action, intended_ns)


_CLASSES: dict[str, list[type[User]]] = {
    "mixed": [AgentUser, CustomerUser, ManagerUser],
    "agent": [AgentUser],
    "customer": [CustomerUser],
    "manager": [ManagerUser],
    "ticket_list": [TicketListUser],
}


def _select_user_classes() -> None:
    """Locust runs every User subclass in the locustfile; keep only the scenario's."""
    keep = [OpenLoopUser] if RATE > 0 else _CLASSES[SCENARIO]
    for cls in (AgentUser, CustomerUser, ManagerUser, TicketListUser, OpenLoopUser):
        if cls not in keep:
            globals().pop(cls.__name__, None)


_select_user_classes()
