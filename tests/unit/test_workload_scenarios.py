"""The scenario table: names → Locust user classes (closed loop) and actions (open loop)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from deskprof.capturing.workload import WorkloadSpec
from deskprof.errors import DeskprofError
from deskprof.workloads import SCENARIOS, scenario
from deskprof.workloads.client import PAGE_SIZE, OpenDeskClient, deep_page_numbers
from deskprof.workloads.scenarios import DEEP_PAGE, SETUP_REQUESTS

FOCUSED = {
    "queue": "browse_queue",
    "ticket_detail": "open_ticket",
    "reports": "report_in_turn",
    "deep_pages": "deep_page",
    "export": "export",
    "comment": "comment",
}


def test_existing_names_kept_and_focused_ones_added():
    assert {"mixed", "agent", "customer", "manager", "ticket_list"} <= set(SCENARIOS)
    assert set(FOCUSED) | {"tour"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_action_is_a_client_method(name):
    found = scenario(name)
    assert found.open_actions, "open loop needs at least one action"
    assert found.roles, "closed loop needs at least one role"
    for action in found.actions():
        assert callable(getattr(OpenDeskClient, action, None)), action


@pytest.mark.parametrize(("name", "action"), FOCUSED.items())
def test_focused_scenarios_run_one_action_open_and_closed(name, action):
    found = scenario(name)
    assert list(found.open_actions) == [action]
    assert [list(role.actions) for role in found.roles] == [[action]]


def test_unknown_scenario_is_a_one_line_error():
    with pytest.raises(DeskprofError, match=r"no built-in scenario 'nope'.*deep_pages"):
        scenario("nope")
    with pytest.raises(DeskprofError, match="neither a built-in scenario"):
        WorkloadSpec(scenario="nope").validate("http://127.0.0.1:1")
    WorkloadSpec(scenario="deep_pages", rate=2).validate("http://127.0.0.1:1")


def test_setup_requests_are_not_the_deep_page():
    assert DEEP_PAGE not in SETUP_REQUESTS and "POST /auth/login" in SETUP_REQUESTS


def test_deep_pages_are_in_the_deepest_part_and_reachable_by_cursor():
    rng = random.Random(1)
    total = 2000  # 80 pages
    pages = deep_page_numbers(total, rng)
    assert len(pages) == 8 and pages == sorted(set(pages))
    assert all(33 <= p <= 80 for p in pages)
    assert deep_page_numbers(PAGE_SIZE, rng) == []  # one page: nothing deep
    assert deep_page_numbers(2 * PAGE_SIZE, rng) == [2]
    assert deep_page_numbers(0, rng) == []


def test_locustfile_builds_the_table_classes():
    """In a subprocess: importing Locust gevent-patches the interpreter."""
    code = (
        "import json\n"
        "from deskprof.workloads import opendesk, SCENARIOS\n"
        "print(json.dumps({n: [[c.__name__, c.weight, sorted({t.__name__ for t in c.tasks})]"
        " for c in opendesk.user_classes(n, 0)] + [[c.__name__ for c in "
        "opendesk.user_classes(n, 3.0)]] for n in SCENARIOS}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    classes = json.loads(done.stdout)
    assert classes["mixed"][:3] == [
        ["AgentUser", 6, sorted(scenario("agent").roles[0].actions)],
        ["CustomerUser", 3, ["create_ticket", "kb_search", "own_tickets"]],
        ["ManagerUser", 1, ["export", "report"]],
    ]
    assert classes["ticket_list"][0][0] == "TicketListUser"
    assert classes["deep_pages"] == [["DeepPagesUser", 1, ["deep_page"]], ["OpenLoopUser"]]
    assert classes["tour"][0] == ["TourUser", 1, ["tour_step"]]
    for name in SCENARIOS:
        assert classes[name][-1] == ["OpenLoopUser"]
