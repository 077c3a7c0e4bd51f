"""The built-in workload scenarios as data: who logs in, which actions, in what mix.

One table serves both load shapes. Closed loop (``--users``): each ``Role`` becomes a
Locust user class that logs in and runs its actions with think time. Open loop
(``--rate``): one user sends arrivals at the fixed rate, each arrival one action drawn
from ``open_actions``. Actions are method names of ``deskprof.workloads.client
.OpenDeskClient``; the locustfile (``opendesk.py``) builds its classes from this table,
so a test can check the table without importing Locust (which gevent-patches the
interpreter).

The focused scenarios (``queue``, ``ticket_detail``, ``reports``, ``deep_pages``,
``export``, ``comment``) send one kind of request each, for short experiment trials
with a verdict per endpoint; ``tour`` touches every planted problem of the reference
OpenDesk every few seconds with a few users (``make demo``, acceptance tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deskprof.errors import DeskprofError

AGENT, CUSTOMER, ADMIN = "agent", "customer", "admin"
LOGIN = "POST /auth/login"
SETUP = "GET /tickets (setup)"  # a user learning the list's size and cursors
SETUP_REQUESTS = (LOGIN, SETUP)  # a user getting ready, not the workload: not measured
DEEP_PAGE = "GET /tickets (deep page)"  # one name on both arms, OFFSET or cursor


@dataclass(frozen=True)
class Role:
    """One closed-loop user class: its Locust class name (the workload table's ``user``),
    who it logs in as, its actions with weights, its share of users and think time."""

    user_class: str
    login: str
    actions: dict[str, int]
    weight: int = 1
    wait_s: tuple[float, float] = (0.05, 0.2)


@dataclass(frozen=True)
class Scenario:
    """A named workload: closed-loop ``roles`` and the open-loop arrival mix."""

    name: str
    summary: str
    roles: tuple[Role, ...]
    open_actions: dict[str, int] = field(default_factory=dict)
    open_login: str = AGENT

    def actions(self) -> set[str]:
        """Every action name the scenario can run, closed or open loop."""
        names = set(self.open_actions)
        for role in self.roles:
            names |= set(role.actions)
        return names


AGENT_ROLE = Role(
    "AgentUser",
    AGENT,
    {
        "browse_queue": 5,
        "list_tickets": 4,
        "open_ticket": 5,
        "page_through": 1,
        "dashboard": 2,
        "comment": 2,
        "update_ticket": 1,
    },
    weight=6,
    wait_s=(0.2, 1.0),
)
CUSTOMER_ROLE = Role(
    "CustomerUser",
    CUSTOMER,
    {"create_ticket": 2, "own_tickets": 3, "kb_search": 3},
    weight=3,
    wait_s=(0.5, 2.0),
)
MANAGER_ROLE = Role("ManagerUser", ADMIN, {"report": 4, "export": 1}, weight=1, wait_s=(1.0, 3.0))
# the open-loop mix of ``mixed``: each role's characteristic actions, equally likely
MIXED_OPEN = dict.fromkeys(
    (
        "browse_queue",
        "list_tickets",
        "open_ticket",
        "dashboard",
        "comment",
        "create_ticket",
        "own_tickets",
        "kb_search",
        "report",
        "export",
    ),
    1,
)


def _focused(name: str, summary: str, user_class: str, action: str, login: str = AGENT):
    role = Role(user_class, login, {action: 1})
    return Scenario(name, summary, (role,), {action: 1}, open_login=login)


_TABLE = (
    Scenario(
        "mixed",
        "agents, customers and managers in a 6:3:1 mix",
        (AGENT_ROLE, CUSTOMER_ROLE, MANAGER_ROLE),
        MIXED_OPEN,
    ),
    Scenario(
        "agent",
        "an agent's day: queue, lists, details, pages, dashboard, comments, updates",
        (AGENT_ROLE,),
        {a: 1 for a in ("browse_queue", "list_tickets", "open_ticket", "dashboard", "comment")},
    ),
    Scenario(
        "customer",
        "customers: new tickets, their own tickets, knowledge-base search",
        (CUSTOMER_ROLE,),
        dict.fromkeys(("create_ticket", "own_tickets", "kb_search"), 1),
        open_login=CUSTOMER,
    ),
    Scenario(
        "manager",
        "managers: the five reports and the CSV export",
        (MANAGER_ROLE,),
        {"report": 4, "export": 1},
        open_login=ADMIN,
    ),
    Scenario(
        "ticket_list",
        "the ticket list only, no think time (overhead measurements)",
        (Role("TicketListUser", AGENT, {"list_tickets": 1}, wait_s=(0.0, 0.0)),),
        {"list_tickets": 1},
    ),
    _focused(
        "queue",
        "an agent's open queue: GET /tickets?assignee=me&status=open",
        "QueueUser",
        "browse_queue",
    ),
    _focused(
        "ticket_detail",
        "one ticket with its comments: GET /tickets/{id}",
        "TicketDetailUser",
        "open_ticket",
    ),
    _focused(
        "reports",
        "the five reports in turn: GET /reports/{name}",
        "ReportsUser",
        "report_in_turn",
        ADMIN,
    ),
    _focused(
        "deep_pages",
        "pages far down the ticket list, by OFFSET or by the server's "
        "cursor, under one name: GET /tickets (deep page)",
        "DeepPagesUser",
        "deep_page",
    ),
    _focused("export", "the CSV export: GET /tickets/export.csv", "ExportUser", "export"),
    _focused(
        "comment",
        "comments on tickets (notification e-mails): POST /tickets/{id}/comments",
        "CommentUser",
        "comment",
    ),
    Scenario(
        "tour",
        "every planted problem every few seconds: lists, filters, details, deep pages, "
        "reports, export, comments, dashboard, in a fixed cycle",
        (Role("TourUser", AGENT, {"tour_step": 1}, wait_s=(0.0, 0.05)),),
        {"tour_step": 1},
    ),
)
BY_NAME = {scenario.name: scenario for scenario in _TABLE}
SCENARIOS = tuple(BY_NAME)


def scenario(name: str) -> Scenario:
    """The built-in scenario called ``name``; a one-line DeskprofError naming the others."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise DeskprofError(
            f"no built-in scenario {name!r}: choose one of {', '.join(SCENARIOS)}"
        ) from None
