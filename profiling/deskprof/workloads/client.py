"""What a virtual OpenDesk user does: log in, then send recorded requests (the actions).

Every request is recorded by the generator itself, on the capture clock (epoch ns):
intended start, actual start, end, name, status, and the ``X-Request-ID`` sent, which
the probe adopts so both sides join. Locust's own (rounded) statistics are not used.

This module does not import Locust (importing Locust gevent-patches the interpreter), so
the scenario table can be checked against these actions in a plain test. The locustfile
``opendesk.py`` mixes ``OpenDeskClient`` into Locust's ``FastHttpUser``; an action is a
method ``action(intended_ns=None)``: open loop passes the arrival's intended send time.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from greenlet import getcurrent

from deskprof.workloads.scenarios import ADMIN, CUSTOMER, DEEP_PAGE, LOGIN, SETUP

PASSWORD = os.environ.get("DESKPROF_PASSWORD", "opendesk")
AGENTS = int(os.environ.get("DESKPROF_AGENTS", "20"))
CUSTOMERS = int(os.environ.get("DESKPROF_CUSTOMERS", "200"))
SEED = int(os.environ.get("DESKPROF_SEED", "42"))
AS_OF = os.environ.get("DESKPROF_AS_OF", "")  # reports' ?as_of=YYYY-MM-DD, "" = now
REPORTS = ("ticket-stats", "daily-trends", "agent-performance", "sla-compliance", "distribution")
PAGE_SIZE = 25  # the API's default page size
DEEP_PAGES_PER_USER = 8


def login_email(login: str, rng: random.Random | None = None) -> str:
    """A seeded account of the kind ``login`` (agent, customer or admin)."""
    pick = rng or random
    if login == ADMIN:
        return "admin1@opendesk.test"
    if login == CUSTOMER:
        return f"customer{pick.randint(1, CUSTOMERS)}@example.com"
    return f"agent{pick.randint(1, AGENTS)}@opendesk.test"


def deep_page_numbers(total: int, rng: random.Random, count: int = DEEP_PAGES_PER_USER) -> list:
    """Page numbers in the deepest 60% of a list of ``total`` rows (at least page 2, so a
    cursor exists for each: the one after the last row of the page before)."""
    last = max(1, math.ceil(total / PAGE_SIZE))
    if last < 2:
        return []
    first = max(2, int(last * 0.4) + 1)
    pages = range(first, last + 1)
    return sorted(rng.sample(pages, min(count, len(pages))))


class Recorder:
    """Per-process record buffer, written as JSON lines on ``flush()``.

    A request is registered when it is sent (``begin``) and recorded when it ends
    (``finish``). Those still waiting when the run or a trial window ends are recorded by
    ``abandon`` as failures (status 0) ending then, with latency from their intended start:
    an overloaded arm must not silently lose its slowest requests. A response that comes
    after its request was abandoned is not recorded twice.
    """

    def __init__(self, out_dir: str) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict] = []
        self.pending: dict[str, dict] = {}
        self.senders: dict[str, Any] = {}  # request id → the greenlet waiting for it
        self.path = os.path.join(out_dir, f"workload-{os.getpid()}.jsonl")
        self.tags: Callable[[int], dict] = lambda _intended_ns: {}

    def begin(self, row: dict) -> None:
        with self.lock:
            self.pending[row["request_id"]] = row
            self.senders[row["request_id"]] = getcurrent()

    def finish(self, row: dict) -> None:
        with self.lock:
            self.senders.pop(row["request_id"], None)
            if self.pending.pop(row["request_id"], None) is not None:
                self.rows.append(row)

    def still_waiting(self) -> int:
        """Requests in flight whose sender is alive (a killed user's never will answer)."""
        with self.lock:
            return sum(1 for g in self.senders.values() if not getattr(g, "dead", False))

    def add(self, row: dict) -> None:
        with self.lock:
            self.rows.append(row)

    def in_flight(self, window: str | None = None) -> int:
        """Requests sent and not yet answered (of one trial window, if given)."""
        with self.lock:
            rows = self.pending.values()
            return sum(1 for r in rows if window in (None, r.get("window")))

    def abandon(self, error: str, window: str | None = None) -> int:
        """Record every request still waiting (of ``window``, if given) as failed now."""
        end_ns = time.time_ns()
        with self.lock:
            ids = [k for k, r in self.pending.items() if window in (None, r.get("window"))]
            for request_id in ids:
                row = self.pending.pop(request_id)
                self.senders.pop(request_id, None)
                row.update(end_ns=end_ns, latency_ns=end_ns - row["intended_ns"])
                row.update(status=0, error=error)
                self.rows.append(row)
        return len(ids)

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            with open(self.path, "a", encoding="utf-8") as out:
                out.writelines(json.dumps(r) + "\n" for r in rows)


RECORDER = Recorder(os.environ.get("DESKPROF_WORKLOAD_DIR", "."))


class OpenDeskClient:
    """The actions, on top of a Locust HTTP client (``self.client``)."""

    login = "agent"

    def setup_client(self, email: str) -> None:
        self.rng = random.Random(f"{SEED}:{email}:{id(self)}")
        self.token = None
        self.max_ticket = 1000
        self.range_known = False
        self.report_turn = itertools.count(self.rng.randrange(len(REPORTS)))
        self.deep_pages: list[int] | None = None
        self.cursors: dict[int, str] = {}
        self.tour = None
        body = self.call("POST", "/auth/login", LOGIN, json={"email": email, "password": PASSWORD})
        if body:
            self.token = body["token"]

    def call(self, method: str, path: str, name: str, intended_ns: int | None = None, **kw):
        """Send one request and record it; the JSON body, or None (errors are recorded,
        never raised: a dead server must not crash the user)."""
        request_id = uuid.uuid4().hex
        headers = {"X-Request-ID": request_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        start_ns = time.time_ns()
        intended = intended_ns or start_ns
        row = {
            "name": name,
            "method": method,
            "intended_ns": intended,
            "start_ns": start_ns,
            "end_ns": start_ns,
            "latency_ns": 0,
            "status": 0,
            "error": "",
            "user": type(self).__name__,
            "request_id": request_id,
            **RECORDER.tags(intended),
        }
        RECORDER.begin(row)
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
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        # a killed greenlet (the run stopping) never gets here: ``abandon`` records it
        end_ns = time.time_ns()
        RECORDER.finish(
            {**row, "end_ns": end_ns, "latency_ns": end_ns - intended, "status": status}
            | {"error": error}
        )
        return body

    def ticket_id(self) -> int:
        """A ticket id between 1 and the list's size (learnt once, by a setup request)."""
        if not self.range_known:
            self.range_known = True
            first = self.call("GET", "/tickets?page_size=1", SETUP)
            if first and first.get("total"):
                self.max_ticket = int(first["total"])
        return self.rng.randint(1, self.max_ticket)

    def prepare(self, actions: set[str]) -> None:
        """Send the setup requests ``actions`` would otherwise send on first use."""
        if actions & {"open_ticket", "comment", "update_ticket", "tour_step"}:
            self.ticket_id()
        if actions & {"deep_page", "tour_step"}:
            self.prepare_deep_pages()

    # --- actions -------------------------------------------------------------------------

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

    def filtered_list(self, intended_ns=None):
        """A list filtered and sorted on columns the first version has no index for."""
        if self.rng.random() < 0.5:
            path, name = "/tickets?status=open&sort=updated_at", "GET /tickets?status"
        else:
            path, name = "/tickets?priority=high", "GET /tickets?priority"
        self.call("GET", path, name, intended_ns)

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

    def prepare_deep_pages(self) -> None:
        """Choose this user's deep pages; on a server that hands out cursors, get the one
        that reaches each page (``?page=K&page_size=1`` returns the row just before it
        and the cursor after that row), so a deep page is then one cursor request."""
        self.deep_pages = []
        first = self.call("GET", "/tickets?page_size=1", SETUP)
        if not first:
            return
        pages = deep_page_numbers(int(first.get("total") or 0), self.rng)
        if first.get("next_cursor"):
            for page in pages:
                before = (page - 1) * PAGE_SIZE  # the 1-row page holding that page's last row
                body = self.call("GET", f"/tickets?page={before}&page_size=1", SETUP)
                if body and body.get("next_cursor"):
                    self.cursors[page] = body["next_cursor"]
        self.deep_pages = [p for p in pages if p in self.cursors] if self.cursors else pages

    def deep_page(self, intended_ns=None):
        """One page far down the list: by the server's cursor when it has one, else by
        OFFSET; the same request name either way, so both arms pair in a verdict."""
        if self.deep_pages is None:
            self.prepare_deep_pages()
        if not self.deep_pages:
            return
        page = self.rng.choice(self.deep_pages)
        cursor = self.cursors.get(page)
        path = f"/tickets?cursor={cursor}" if cursor else f"/tickets?page={page}"
        self.call("GET", path, DEEP_PAGE, intended_ns)

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

    def get_report(self, name: str, intended_ns=None):
        query = f"?as_of={AS_OF}" if AS_OF else ""
        self.call("GET", f"/reports/{name}{query}", f"GET /reports/{name}", intended_ns)

    def report(self, intended_ns=None):
        self.get_report(self.rng.choice(REPORTS), intended_ns)

    def report_in_turn(self, intended_ns=None):
        """The five reports in a fixed rotation, so a short trial holds each of them."""
        self.get_report(REPORTS[next(self.report_turn) % len(REPORTS)], intended_ns)

    def export(self, intended_ns=None):
        status = self.rng.choice(["open", "on_hold", "in_progress"])
        self.call(
            "GET",
            f"/tickets/export.csv?status={status}",
            "GET /tickets/export.csv",
            intended_ns,
        )

    def tour_step(self, intended_ns=None):
        """The next step of the tour (see ``tour.py``)."""
        if self.tour is None:
            from deskprof.workloads.tour import Tour

            self.tour = Tour(self)
        self.tour.step(intended_ns)
