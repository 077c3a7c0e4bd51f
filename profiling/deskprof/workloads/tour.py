"""The ``tour`` scenario: every planted problem of the reference OpenDesk, in a fixed cycle.

A random mix is a lottery in a short capture (a manager, one user in ten, may export
once or never). Here every virtual user runs the same cycle, each starting at its own
offset, so ~10 s with a few users holds every endpoint several times: the ticket list
and a detail (N+1), filtered and sorted lists (missing indexes), deep pages (OFFSET and
COUNT(*), or the cursor when the server offers one), all five reports (recomputed, the
SLA loop), the CSV export (built in memory), the dashboard, and comments (a write that
renders notifications). Cheap reports sit between the lists so each repeats with no
write in between (what the uncached-read detector looks for); the export and the heavy
reports come every other pass, a comment every third, so a loaded machine still gets
through a whole cycle in a few seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

_numbers = itertools.count()  # users take turns: each starts elsewhere in the cycle
STEPS_PER_USER_OFFSET = 8


class Tour:
    """One user's position in the cycle; ``step()`` runs the next step."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.number = next(_numbers)
        self.passes = 0
        cycle = self.cycle()
        self.steps = itertools.cycle(cycle)
        for _ in range((self.number * STEPS_PER_USER_OFFSET) % len(cycle)):
            next(self.steps)

    def cycle(self) -> list[Callable[[int | None], None]]:
        c = self.client

        def report(name: str) -> Callable[[int | None], None]:
            return lambda intended_ns: c.get_report(name, intended_ns)

        return [
            c.list_tickets,
            report("ticket-stats"),
            c.deep_page,
            report("daily-trends"),
            c.open_ticket,
            report("distribution"),
            c.deep_page,
            report("ticket-stats"),
            c.filtered_list,
            report("daily-trends"),
            self.export,
            report("distribution"),
            c.deep_page,
            c.dashboard,
            c.filtered_list,
            report("ticket-stats"),
            self.heavy_report,
            self.comment,
        ]

    def step(self, intended_ns: int | None = None) -> None:
        next(self.steps)(intended_ns)

    def export(self, intended_ns: int | None) -> None:
        """Every other pass, the users taking turns."""
        if (self.passes + self.number) % 2 == 1:
            self.client.call("GET", "/tickets/export.csv", "GET /tickets/export.csv", intended_ns)

    def heavy_report(self, intended_ns: int | None) -> None:
        """agent-performance and sla-compliance, one a pass."""
        name = ("agent-performance", "sla-compliance")[self.passes % 2]
        self.client.get_report(name, intended_ns)

    def comment(self, intended_ns: int | None) -> None:
        """A write every third pass: a helpdesk is read-mostly, and a write invalidates
        the fixed service's cached counts and reports. Ends the pass."""
        self.passes += 1
        if self.passes % 3 == 0:
            self.client.comment(intended_ns)
