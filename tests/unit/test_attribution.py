"""Attribution of samples, allocations and queries to endpoints and requests."""

from __future__ import annotations

import pandas as pd
import pytest

from deskprof.analysis.attribution import (
    HandlerMatcher,
    add_endpoint,
    attribute_allocations,
    attribute_queries,
    attribute_samples,
    handler_endpoints,
    overlapping_request,
    stack_handlers,
)

LIST = "opendesk.api.tickets:list_tickets"
DETAIL = "opendesk.api.tickets:get_ticket"
VIEW = "opendesk.api:TicketView.get"


def _requests(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows,
        columns=[
            "request_id",
            "pid",
            "thread_id",
            "method",
            "route",
            "handler",
            "start_ns",
            "end_ns",
        ],
    )
    return add_endpoint(frame)


@pytest.mark.parametrize(
    ("frame", "handler"),
    [
        ("list_tickets (/srv/app/opendesk/api/tickets.py:42)", LIST),
        ("list_tickets (opendesk/api/tickets.py:42)", LIST),  # relative path
        ("list_tickets (/venv/lib/python3.11/site-packages/opendesk/api/tickets.py:1)", LIST),
        ("list_tickets (/srv/app/other/api/tickets.py:42)", ""),  # same name, other module
        ("list_tickets (/srv/app/myopendesk/api/tickets.py:42)", ""),  # suffix, not a part
        ("list_tickets (/srv/app/opendesk/api/tickets.pyc:42)", ""),
        ("get_ticket (/srv/opendesk/api/tickets.py:90)", DETAIL),
        ("TicketView.get (/srv/opendesk/api/__init__.py:5)", VIEW),  # package module
        ("get (/srv/opendesk/api/__init__.py:5)", VIEW),  # py-spy without the class
        ("OtherView.get (/srv/opendesk/api/__init__.py:5)", ""),  # other class
        ("helper (/srv/opendesk/api/tickets.py:10)", ""),
    ],
)
def test_handler_matcher(frame: str, handler: str) -> None:
    assert HandlerMatcher([LIST, DETAIL, VIEW, "bad-handler"]).match(frame) == handler


def test_outermost_handler_wins() -> None:
    matcher = HandlerMatcher([LIST, DETAIL])
    frames = [
        "run (threading.py:1)",
        "list_tickets (/a/opendesk/api/tickets.py:1)",
        "get_ticket (/a/opendesk/api/tickets.py:2)",
    ]
    assert matcher.stack_handler(frames) == LIST


def test_handler_serving_two_routes_maps_to_most_frequent() -> None:
    requests = _requests(
        ("a", 1, 1, "GET", "/x", LIST, 0, 1),
        ("b", 1, 1, "GET", "/y", LIST, 0, 1),
        ("c", 1, 1, "GET", "/y", LIST, 0, 1),
    )
    assert handler_endpoints(requests) == {LIST: "GET /y"}


def test_overlapping_request_counts_and_owner() -> None:
    requests = pd.DataFrame(
        {
            "pid": [1, 1, 1, 2],
            "thread_id": [7, 7, 7, 7],
            "start_ns": [0, 100, 150, 0],
            "end_ns": [90, 200, 160, 1000],
        }
    )
    starts = pd.Series([10, 95, 120, 155, 300, 10, 10]).to_numpy()
    ends = pd.Series([20, 99, 130, 158, 310, 20, 20]).to_numpy()
    pid = pd.Series([1, 1, 1, 1, 1, 2, 3]).to_numpy()
    thread = pd.Series([7, 7, 7, 7, 7, 7, 7]).to_numpy()
    owner, count = overlapping_request(pid, thread, starts, ends, requests)
    assert count.tolist() == [1, 0, 1, 2, 0, 1, 0]
    assert owner.tolist() == [0, -1, 1, -1, -1, 3, -1]


def test_samples_by_stack_then_time() -> None:
    requests = _requests(
        ("r1", 1, 7, "GET", "/tickets", LIST, 100, 200),
        ("r2", 1, 7, "GET", "/tickets/{ticket_id}", DETAIL, 300, 400),
        ("r3", 1, 8, "GET", "/tickets/{ticket_id}", DETAIL, 300, 400),  # another thread
        ("r4", 1, 8, "GET", "/tickets", LIST, 350, 450),  # overlaps r3 on thread 8
    )
    stacks = stack_handlers(
        pd.DataFrame(
            {
                "stack_id": [0, 1],
                "frames": [
                    ["main (x.py:1)", "list_tickets (/a/opendesk/api/tickets.py:5)"],
                    ["main (x.py:1)", "select (selectors.py:3)"],
                ],
                "leaf": ["", ""],
                "handler": ["", ""],
            }
        ),
        requests,
    )
    assert stacks["handler"].tolist() == [LIST, ""]
    samples = pd.DataFrame(
        {
            "ts_ns": [110, 150, 310, 500, 360, 110],
            "end_ns": [120, 160, 320, 510, 370, 120],
            "n_samples": 1,
            "pid": 1,
            "thread_id": [7, 7, 7, 7, 8, 9],
            "stack_id": [0, 1, 1, 1, 1, 0],
            "state": ["cpu", "wait", "wait", "wait", "wait", "cpu"],
        }
    )
    out = attribute_samples(samples, stacks, requests)
    assert out["endpoint"].tolist() == [
        "GET /tickets",  # handler on stack, and r1 is the request on that thread
        "GET /tickets",  # no handler: the one request on pid 1 thread 7 at that time
        "GET /tickets/{ticket_id}",
        "",  # between requests
        "",  # two requests on thread 8: ambiguous
        "GET /tickets",  # handler on stack, no request on thread 9
    ]
    assert out["request_id"].tolist() == ["r1", "r1", "r2", "", "", ""]
    assert out["attributed_by"].tolist() == ["stack", "time", "time", "", "", "stack"]
    assert out["state"].tolist() == samples["state"].tolist()


def test_a_run_mostly_outside_its_request_is_not_charged_to_it() -> None:
    """gunicorn's idle wait as one 344 ms run overlapping a request by 22 ms: its
    samples are spread over the span, most of them outside the request."""
    requests = _requests(("r1", 1, 7, "GET", "/tickets", LIST, 1_000, 23_000))
    stacks = stack_handlers(
        pd.DataFrame(
            {"stack_id": [1], "frames": [["main (x.py:1)", "SyncWorker.wait (sync.py:35)"]],
             "leaf": [""], "handler": [""]}
        ),
        requests,
    )  # fmt: skip
    samples = pd.DataFrame(
        {"ts_ns": [-321_000, 2_000], "end_ns": [23_000, 20_000], "n_samples": [34, 2],
         "pid": 1, "thread_id": 7, "stack_id": 1, "state": "wait"}
    )  # fmt: skip
    out = attribute_samples(samples, stacks, requests)
    assert out["request_id"].tolist() == ["", "r1"]
    assert out["attributed_by"].tolist() == ["", "time"]


def test_stack_endpoint_does_not_take_a_request_of_another_endpoint() -> None:
    requests = _requests(
        ("r2", 1, 7, "GET", "/tickets/{ticket_id}", DETAIL, 0, 100),
        ("r1", 1, 9, "GET", "/tickets", LIST, 0, 100),
    )
    stacks = pd.DataFrame(
        {
            "stack_id": [0],
            "frames": [["list_tickets (opendesk/api/tickets.py:1)"]],
            "leaf": [""],
            "handler": [""],
        }
    )
    samples = pd.DataFrame(
        {
            "ts_ns": [10],
            "end_ns": [20],
            "n_samples": [1],
            "pid": [1],
            "thread_id": [7],
            "stack_id": [0],
            "state": ["cpu"],
        }
    )
    out = attribute_samples(samples, stack_handlers(stacks, requests), requests)
    assert out[["endpoint", "request_id", "attributed_by"]].values.tolist() == [
        ["GET /tickets", "", "stack"]
    ]


def test_allocations_and_queries() -> None:
    requests = _requests(("r1", 1, 7, "GET", "/tickets", LIST, 0, 100))
    stacks = stack_handlers(
        pd.DataFrame(
            {
                "stack_id": [3, 4],
                "frames": [["list_tickets (opendesk/api/tickets.py:1)"], ["other (x.py:1)"]],
                "leaf": ["", ""],
                "handler": ["", ""],
            }
        ),
        requests,
    )
    allocations = pd.DataFrame({"stack_id": [3, 4, 99], "size_bytes": [10, 20, 30]})
    assert attribute_allocations(allocations, stacks, requests)["endpoint"].tolist() == [
        "GET /tickets",
        "",
        "",
    ]
    queries = pd.DataFrame({"request_id": ["r1", "", "gone"]})
    assert attribute_queries(queries, requests)["endpoint"].tolist() == ["GET /tickets", "", ""]


def test_no_requests_leaves_everything_blank() -> None:
    requests = _requests()
    stacks = pd.DataFrame(
        {"stack_id": [0], "frames": [["f (x.py:1)"]], "leaf": [""], "handler": [""]}
    )
    samples = pd.DataFrame(
        {
            "ts_ns": [1],
            "end_ns": [2],
            "n_samples": [1],
            "pid": [1],
            "thread_id": [1],
            "stack_id": [0],
            "state": ["cpu"],
        }
    )
    out = attribute_samples(samples, stack_handlers(stacks, requests), requests)
    assert out[["endpoint", "request_id", "attributed_by"]].values.tolist() == [["", "", ""]]
