"""CPU and memory detectors on hand-built samples, stacks, allocations and snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.detectors.cpu_hotspot import detect_cpu_hotspots
from deskprof.analysis.detectors.memory_growth import detect_memory_growth
from deskprof.analysis.detectors.memory_peak import detect_memory_peaks
from deskprof.analysis.stackframes import app_packages, installed_package, owner_frame

LIST = "GET /tickets"
ROOT = [
    "_run_once (/usr/lib/python3.11/asyncio/base_events.py:1900)",
    "list_tickets (/srv/opendesk/api/tickets.py:70)",
    "ticket_summary (/srv/opendesk/tickets.py:120)",
]
SLA = [
    *ROOT,
    "due_time_loop (/srv/opendesk/sla.py:40)",
    "__add__ (/usr/lib/python3.11/datetime.py:1)",
]
IDLE = [
    "run_forever (/usr/lib/python3.11/asyncio/base_events.py:600)",
    "select (/usr/lib/python3.11/selectors.py:468)",
]


def stacks(frames: dict[int, list[str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stack_id": list(frames),
            "frames": list(frames.values()),
            "leaf": [f[-1] for f in frames.values()],
            "handler": "",
        }
    )


def samples(weights: dict[int, int], state: str = "cpu", endpoint: str = LIST) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts_ns": 0,
            "end_ns": 0,
            "n_samples": list(weights.values()),
            "pid": 1,
            "thread_id": 1,
            "thread_name": "w",
            "stack_id": list(weights),
            "state": state,
            "endpoint": endpoint,
            "request_id": "",
            "attributed_by": "stack",
        }
    )


def requests(n: int, endpoint: str = LIST) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "endpoint": endpoint,
            "duration_ns": 100_000_000,
        }
    )


def test_owner_frame_charges_library_time_to_the_application_caller():
    assert owner_frame(SLA) == "due_time_loop (/srv/opendesk/sla.py)"
    assert owner_frame(["f (/x/site-packages/lib.py:1)"]) == "f (/x/site-packages/lib.py)"


SITE = "/venv/lib/python3.11/site-packages"
FORUM = [
    f"dispatch_request ({SITE}/flask/app.py:880)",
    f"topic_view ({SITE}/forum/views.py:40)",
    f"reindex_topic ({SITE}/forum/search.py:12)",
    f"tokenize ({SITE}/forum/search.py:30)",
]
PROTO = [
    f"dispatch_request ({SITE}/flask/app.py:880)",
    f"search_runs ({SITE}/tracker/handlers.py:90)",
    f"MessageToJson ({SITE}/google/protobuf/json_format.py:100)",
    f"_RegularMessageToJsonObject ({SITE}/google/protobuf/json_format.py:200)",
]
ORM = [
    f"search_runs ({SITE}/tracker/handlers.py:95)",
    f"all ({SITE}/sqlalchemy/orm/query.py:2700)",
    f"_instance ({SITE}/sqlalchemy/orm/loading.py:900)",
]


def test_app_packages_are_the_handlers_packages_wherever_installed():
    handled = pd.DataFrame(
        {"handler": ["forum.views:topic_view", "starlette.staticfiles:StaticFiles", ""]}
    )
    assert app_packages(handled) == {"forum"}
    assert app_packages(handled, ("tracker",)) == {"forum", "tracker"}
    assert installed_package(f"{SITE}/google/protobuf/json_format.py") == "google"
    assert installed_package(f"{SITE}/six.py") == "six"
    assert installed_package("/srv/opendesk/sla.py") == ""
    app = frozenset({"forum"})
    assert owner_frame(FORUM, app) == f"tokenize ({SITE}/forum/search.py)"
    assert owner_frame(FORUM) == f"tokenize ({SITE}/forum/search.py)"  # the leaf, unowned


def test_cpu_hotspot_in_an_app_installed_with_pip():
    frames = {1: FORUM, 2: [*FORUM[:2], f"render ({SITE}/forum/views.py:60)"]}
    sampled = samples({1: 300, 2: 700}, endpoint="GET /topic/<id>")
    found = detect_cpu_hotspots(
        sampled, stacks(frames), requests(10, "GET /topic/<id>"), app_packages=frozenset({"forum"})
    )
    assert [f.evidence[0]["function"] for f in found] == [
        f"render ({SITE}/forum/views.py)",
        f"tokenize ({SITE}/forum/search.py)",
    ]
    # without knowing the app's package, everything is library code and nothing is found
    assert detect_cpu_hotspots(sampled, stacks(frames), requests(10, "GET /topic/<id>")) == []


def test_cpu_hotspot_names_a_library_working_on_the_apps_behalf_but_not_the_orm():
    frames = {1: PROTO, 2: ORM, 3: [*PROTO[:2], f"build ({SITE}/tracker/handlers.py:99)"]}
    sampled = samples({1: 500, 2: 400, 3: 100}, endpoint="POST /runs/search")
    found = detect_cpu_hotspots(
        sampled,
        stacks(frames),
        requests(10, "POST /runs/search"),
        app_packages=frozenset({"tracker"}),
    )
    assert len(found) == 1, [f.title for f in found]
    evidence = found[0].evidence[0]
    assert evidence["library"] == "google"
    assert evidence["called_from"] == f"search_runs ({SITE}/tracker/handlers.py)"
    assert "google called from search_runs (tracker/handlers.py) holds 50%" in found[0].title
    assert evidence["share_of_endpoint_cpu"] == 0.5


def test_a_library_reached_from_two_callers_is_one_cost():
    """FlaskBB's search engine: the index writer reached from two callers, 22% and 12%
    each, under the library bar apart and over it together."""
    other = [PROTO[0], f"save ({SITE}/tracker/models.py:40)", *PROTO[2:]]
    frames = {1: PROTO, 2: other, 3: [*PROTO[:2], f"build ({SITE}/tracker/handlers.py:99)"]}
    sampled = samples({1: 220, 2: 120, 3: 660}, endpoint="POST /runs/search")
    found = detect_cpu_hotspots(
        sampled, stacks(frames), requests(10, "POST /runs/search"),
        app_packages=frozenset({"tracker"}),
    )  # fmt: skip
    library = [f for f in found if f.evidence[0].get("library")]
    assert len(library) == 1
    evidence = library[0].evidence[0]
    assert evidence["share_of_endpoint_cpu"] == 0.34
    assert evidence["callers"] == {
        "search_runs (tracker/handlers.py)": 220,
        "save (tracker/models.py)": 120,
    }
    assert "called from search_runs (tracker/handlers.py) and 1 more" in library[0].title


def test_cpu_hotspot_names_the_sla_loop_and_ignores_idle():
    frames = {1: SLA, 2: [*ROOT, "other (/srv/opendesk/tickets.py:130)"], 3: IDLE}
    sampled = samples({1: 800, 2: 100, 3: 5000})
    found = detect_cpu_hotspots(sampled, stacks(frames), requests(10), rate_hz=100.0)
    assert [(f.kind, f.endpoint) for f in found] == [("cpu_hotspot", LIST)]
    evidence = found[0].evidence[0]
    assert evidence["function"] == "due_time_loop (/srv/opendesk/sla.py)"
    assert evidence["share_of_endpoint_cpu"] == 0.889  # idle samples are not CPU work
    assert found[0].estimated_saving_ms == 800 / 100 * 1000 / 10
    assert "sla.py" in found[0].title


def test_cpu_hotspot_quiet_when_time_is_spread_or_waiting():
    frames = {i: [*ROOT, f"f{i} (/srv/opendesk/mod{i}.py:1)"] for i in range(10)}
    spread = samples(dict.fromkeys(range(10), 50))
    assert detect_cpu_hotspots(spread, stacks(frames), requests(10)) == []
    waiting = samples({1: 800}, state="wait")
    assert detect_cpu_hotspots(waiting, stacks({1: SLA}), requests(10)) == []


EXPORT = [
    *ROOT[:1],
    "export_csv (/srv/opendesk/api/tickets.py:100)",
    "export_in_memory (/srv/opendesk/export.py:60)",
]


def allocations(rows: list[tuple[str, int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "pid": 1,
                "kind": kind,
                "ts_ns": 0,
                "end_ns": 0,
                "stack_id": stack_id,
                "allocator": "malloc",
                "size_bytes": size,
                "n_allocations": 1,
                "endpoint": endpoint,
            }
            for kind, stack_id, size, endpoint in rows
        ]
    )


def test_memory_peak_names_the_export_built_in_memory():
    mb = 1 << 20
    allocs = allocations(
        [
            ("high_water_mark", 1, 60 * mb, "GET /tickets/export.csv"),
            ("high_water_mark", 2, 15 * mb, LIST),
            ("temporal", 1, 90 * mb, "GET /tickets/export.csv"),
        ]
    )
    found = detect_memory_peaks(
        allocs, stacks({1: EXPORT, 2: SLA}), requests(3, "GET /tickets/export.csv")
    )
    assert [(f.kind, f.endpoint) for f in found] == [("memory_peak", "GET /tickets/export.csv")]
    evidence = found[0].evidence[0]
    assert evidence["share_of_peak"] == 0.8
    assert "export_in_memory (/srv/opendesk/export.py)" in evidence["top_functions_bytes"]
    assert evidence["allocated_bytes_per_request"] == 30 * mb


def test_memory_peak_quiet_when_streaming_keeps_it_small():
    kb = 1 << 10
    allocs = allocations(
        [
            ("high_water_mark", 1, 512 * kb, "GET /tickets/export.csv"),
            ("high_water_mark", 2, 40 << 20, ""),
        ]
    )
    assert detect_memory_peaks(allocs, stacks({1: EXPORT, 2: SLA}), requests(3)) == []


def snapshots(heap: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts_ns": np.arange(len(heap)) * 1_000_000_000,
            "pid": 1,
            "rss_bytes": heap + (50 << 20),
            "heap_bytes": heap,
        }
    )


def test_memory_growth_on_a_steady_slope_and_not_on_a_sawtooth():
    growing = snapshots(np.linspace(10 << 20, 60 << 20, 60).astype(np.int64))
    empty = allocations([]).reindex(columns=["pid", "kind", "stack_id", "size_bytes", "endpoint"])
    found = detect_memory_growth(growing, empty, stacks({1: SLA}))
    assert [f.kind for f in found] == ["memory_growth"]
    assert found[0].evidence[1]["growth_bytes"] > 40 << 20
    sawtooth = snapshots(np.array([(10 + (i % 10) * 5) << 20 for i in range(60)], dtype=np.int64))
    assert detect_memory_growth(sawtooth, empty, stacks({1: SLA})) == []


def test_memory_growth_names_the_endpoint_whose_allocations_stay_alive():
    growing = snapshots(np.linspace(10 << 20, 60 << 20, 60).astype(np.int64))
    leaked = allocations([("leaked", 1, 30 << 20, "POST /tickets")])
    found = detect_memory_growth(growing, leaked, stacks({1: EXPORT}))
    assert [(f.kind, f.endpoint, f.severity) for f in found] == [
        ("memory_growth", "POST /tickets", "high")
    ]


def test_allocations_alive_at_detach_on_a_flat_heap_are_not_growth():
    # an export still being written when memray detached: alive, but about to be freed
    flat = snapshots(np.full(30, 10 << 20, dtype=np.int64))
    leaked = allocations([("leaked", 1, 30 << 20, "GET /tickets/export.csv")])
    assert detect_memory_growth(flat, leaked, stacks({1: EXPORT})) == []


def _requests_lasting(seconds: float) -> pd.DataFrame:
    return pd.DataFrame({"pid": [1], "duration_ns": [int(seconds * 1e9)]})


def test_exports_in_flight_that_climb_are_not_growth_but_a_rising_floor_is():
    empty = allocations([]).reindex(columns=["pid", "kind", "stack_id", "size_bytes", "endpoint"])
    # 40 s at 1 s: exports of 5 s overlap more and more towards the end, each freed after
    # it finishes; the heap climbs (a linear fit sees 50 MiB, r² > 0.6) but its floor over
    # any 5 s stays at 10 MiB
    heap = np.full(40, 10 << 20, dtype=np.int64)
    for start in range(10, 40, 3):
        heap[start : start + 5] += (start - 5) << 20
    heap[-6:] = np.linspace(40 << 20, 70 << 20, 6).astype(np.int64)
    heap[-7] = 10 << 20  # a moment with no export in flight, before the last ones
    climbing = snapshots(heap)
    assert detect_memory_growth(climbing, empty, stacks({1: EXPORT})) != [], "a plain fit fires"
    assert detect_memory_growth(climbing, empty, stacks({1: EXPORT}), _requests_lasting(5)) == []
    # kept memory: the floor rises with it
    leak = snapshots(np.linspace(10 << 20, 60 << 20, 40).astype(np.int64))
    found = detect_memory_growth(leak, empty, stacks({1: EXPORT}), _requests_lasting(5))
    assert [f.kind for f in found] == ["memory_growth"]
    assert found[0].evidence[1]["floor_window_s"] == 5.0


def test_a_capture_shorter_than_two_requests_cannot_tell_growth():
    empty = allocations([]).reindex(columns=["pid", "kind", "stack_id", "size_bytes", "endpoint"])
    leak = snapshots(np.linspace(10 << 20, 60 << 20, 12).astype(np.int64))
    assert detect_memory_growth(leak, empty, stacks({1: EXPORT}), _requests_lasting(8)) == []


def test_a_step_up_that_stays_flat_is_warm_up_not_growth():
    # memray's heap starts at 0: the first export's arenas stay mapped, then nothing more
    empty = allocations([]).reindex(columns=["pid", "kind", "stack_id", "size_bytes", "endpoint"])
    heap = np.concatenate(
        [np.full(10, 5 << 20), np.linspace(5 << 20, 45 << 20, 4), np.full(16, 42 << 20)]
    )
    step = snapshots(heap.astype(np.int64))
    assert detect_memory_growth(step, empty, stacks({1: EXPORT}), _requests_lasting(2)) == []
