"""The detector and attribution fixes the real-capture acceptance test revealed, each on a
few hand-built rows shaped like what that capture held."""

from __future__ import annotations

import pandas as pd

from deskprof.analysis.attribution import HandlerMatcher
from deskprof.analysis.detectors.cpu_hotspot import detect_cpu_hotspots
from deskprof.analysis.detectors.memory_peak import detect_memory_peaks
from deskprof.analysis.endpoints import summarise_endpoints
from deskprof.analysis.stackframes import cpu_kind, is_database_call
from tests.unit.test_findings_profile import samples, stacks

LIST, EXPORT = "GET /tickets", "GET /tickets/export.csv"
SITE = "/venv/lib/python3.11/site-packages"
HANDLER = [
    "Thread._bootstrap (/usr/lib/python3.11/threading.py:1002)",
    "list_tickets (/srv/opendesk/api/tickets.py:70)",
    "list_tickets (/srv/opendesk/tickets.py:150)",
    "ticket_summary (/srv/opendesk/tickets.py:112)",
]
LAZY_LOAD = [
    *HANDLER,
    f"InstrumentedAttribute.__get__ ({SITE}/sqlalchemy/orm/attributes.py:561)",
    f"DefaultDialect.do_execute ({SITE}/sqlalchemy/engine/default.py:1192)",
]
FETCH = [*HANDLER, f"CursorFetchStrategy.fetchall ({SITE}/sqlalchemy/engine/cursor.py:1315)"]
ORM = [*HANDLER[:3], f"ClassManager.new_instance ({SITE}/sqlalchemy/orm/instrumentation.py:500)"]
SLA_LOOP = [*HANDLER, "due_time_loop (/srv/opendesk/sla.py:37)"]
SLA_HELPER = [*SLA_LOOP, "is_business_minute (/srv/opendesk/sla.py:29)"]


def _requests(n: int, endpoint: str = LIST, start_ns: int = 0, end_ns: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "pid": 1,
            "endpoint": endpoint,
            "start_ns": start_ns,
            "end_ns": end_ns,
            "duration_ns": 100_000_000,
            "status": 200,
        }
    )


def test_database_calls_and_library_work_are_not_the_callers_cpu():
    assert is_database_call(LAZY_LOAD[-1]) and is_database_call(FETCH[-1])
    assert is_database_call("wait (/venv/lib/python3.11/site-packages/psycopg/waiting.py:1)")
    assert not is_database_call(ORM[-1])
    assert [cpu_kind(s) for s in (LAZY_LOAD, FETCH, ORM, SLA_HELPER)] == [
        "database",
        "database",
        "library",
        "own",
    ]
    stdlib_leaf = [*SLA_LOOP, "__add__ (/usr/lib/python3.11/datetime.py:1)"]
    assert cpu_kind(stdlib_leaf) == "own"  # the standard library it calls is the loop's
    generated = [*HANDLER, "_go (<sqlalchemy generated _go() wrapper for Session._connection>)"]
    assert cpu_kind(generated) == "library"


def test_sla_loop_found_under_sqlite_n_plus_one_time():
    """The baseline list on SQLite: the lazy loads run the database on the worker's CPU and
    used to make ``ticket_summary`` the "hot spot" while the SLA loop, split between two
    functions, stayed under a fifth of the endpoint's CPU each."""
    frames = {1: LAZY_LOAD, 2: FETCH, 3: ORM, 4: SLA_LOOP, 5: SLA_HELPER}
    sampled = samples({1: 1760, 2: 656, 3: 490, 4: 313, 5: 435})
    found = detect_cpu_hotspots(sampled, stacks(frames), _requests(10), rate_hz=100.0)
    (finding,) = found  # one module, one cause: the two functions are one finding
    assert finding.evidence[0]["functions"] == [
        "is_business_minute (opendesk/sla.py)",
        "due_time_loop (opendesk/sla.py)",
    ]
    assert finding.title.startswith("CPU hot spot: is_business_minute, due_time_loop")
    assert [e["function"] for e in finding.evidence] == [
        "is_business_minute (/srv/opendesk/sla.py)",
        "due_time_loop (/srv/opendesk/sla.py)",
    ]
    evidence = finding.evidence[0]
    assert evidence["endpoint_cpu_samples"] == 490 + 313 + 435
    assert evidence["database_samples_left_out"] == 1760 + 656
    assert evidence["endpoint_library_samples"] == 490


def test_fixed_list_whose_cpu_is_orm_work_has_no_hot_spot():
    frames = {1: FETCH, 2: ORM, 3: [*HANDLER[:3], "_filter (/srv/opendesk/api/tickets.py:54)"]}
    sampled = samples({1: 171, 2: 214, 3: 3})
    assert detect_cpu_hotspots(sampled, stacks(frames), _requests(100)) == []


EXPORT_STACK = [
    "Thread._bootstrap (/usr/lib/python3.11/threading.py:1002)",
    "export_csv.<locals>.stream (/srv/opendesk/api/tickets.py:110)",
    "export_streaming (/srv/opendesk/export.py:124)",
]
MB = 1 << 20


def _allocations(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "pid": 1,
                "kind": "high_water_mark",
                "ts_ns": 0,
                "end_ns": 0,
                "stack_id": stack_id,
                "allocator": "malloc",
                "size_bytes": size,
                "n_allocations": 1,
                "endpoint": endpoint,
            }
            for endpoint, stack_id, size in rows
        ]
    )


def _snapshots(rss_mb: int, heap_mb: int, at_ns: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts_ns": [0, at_ns, 20],
            "pid": 1,
            "rss_bytes": [90 * MB, rss_mb * MB, 95 * MB],
            "heap_bytes": [1 * MB, heap_mb * MB, 2 * MB],
        }
    )


def test_memory_peak_needs_a_material_share_of_rss_per_request_in_flight():
    stack_table = stacks({1: EXPORT_STACK, 2: HANDLER})
    # in memory: one export holding 45 MiB of a 150 MiB worker
    whole = _allocations([(EXPORT, 1, 45 * MB), (LIST, 2, 5 * MB)])
    found = detect_memory_peaks(whole, stack_table, _requests(1, EXPORT), _snapshots(150, 55))
    assert [(f.kind, f.endpoint) for f in found] == [("memory_peak", EXPORT)]
    assert found[0].evidence[0]["share_of_rss_at_peak_per_request"] == 0.3
    # streaming: two overlapping exports each hold a 9.5 MiB chunk of a 120 MiB worker;
    # 79% of the tracked high-water mark, but 8% of the worker per request
    chunks = _allocations([(EXPORT, 1, 19 * MB), (LIST, 2, 5 * MB)])
    two = _requests(2, EXPORT)
    assert detect_memory_peaks(chunks, stack_table, two, _snapshots(120, 24)) == []
    # the same rows without snapshots: only the high-water-mark share is known
    assert [f.endpoint for f in detect_memory_peaks(chunks, stack_table, two)] == [EXPORT]


def test_code_nested_in_a_handler_is_the_handlers():
    matcher = HandlerMatcher(["opendesk.api.tickets:export_csv", "opendesk.tickets:list_tickets"])
    assert matcher.stack_handler(EXPORT_STACK) == "opendesk.api.tickets:export_csv"
    other_module = "export_csv.<locals>.stream (/srv/opendesk/export.py:3)"
    assert matcher.match(other_module) == ""


def test_endpoint_summary_reports_the_peak_and_says_what_allocated_means():
    requests = _requests(2, EXPORT).assign(status=200)
    allocations = pd.concat(
        [
            _allocations([(EXPORT, 1, 45 * MB)]),
            _allocations([(EXPORT, 1, 60 * MB)]).assign(kind="temporal"),
        ]
    )
    empty_queries = pd.DataFrame({"endpoint": [], "duration_ns": []})
    no_samples = pd.DataFrame({"endpoint": [], "n_samples": [], "state": []})
    summary = summarise_endpoints(requests, empty_queries, no_samples, allocations)
    row = summary.set_index("endpoint").loc[EXPORT]
    assert row["peak_bytes"] == 45 * MB and row["bytes_allocated"] == 60 * MB
    assert summary.attrs["bytes_allocated_from"] == "temporal"
    assert summary.attrs["bytes_allocated_is"].startswith("lower bound")
