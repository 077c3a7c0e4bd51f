"""Write contention and one-cause folding on hand-built frames: a keyed write that waits
for another writer's open transaction is contention (not a missing index); the same
write run one at a time is not; a slow statement several detectors saw is one finding."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.causes import one_per_cause
from deskprof.analysis.detectors.write_contention import detect_write_contention, keyed_write
from deskprof.analysis.finding import Finding
from tests.unit.test_findings_sql import MS, queries

VIEW = "UPDATE items SET views=(items.views + ?) WHERE items.id = ?"
ENDPOINT = "GET /items/{id}"


def _capture(overlapping: bool, n: int = 40) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``n`` requests each writing the hot row (a new count, the same id) then holding
    its transaction 150 ms. With ``overlapping`` they come in pairs on two connections
    (the second waits 150 ms for the first's commit); otherwise one at a time."""
    rows, reqs, conns = [], [], []
    for r in range(n):
        base = (r // 2 if overlapping else r) * 400 * MS
        second = overlapping and r % 2 == 1
        start = base + (1 * MS if second else 0)
        duration = (150 * MS if second else 0) + int(0.05 * MS) + (r % 3) * 1000
        end = start + duration + 150 * MS
        rows.append(
            {"request_id": f"r{r}", "start_ns": start, "duration_ns": duration,
             "statement": VIEW, "connection_id": 1 + r % 2, "parameters": f"[{r}, 1]",
             "endpoint": ENDPOINT}
        )  # fmt: skip
        reqs.append({"request_id": f"r{r}", "endpoint": ENDPOINT, "start_ns": start,
                     "end_ns": end, "duration_ns": end - start})  # fmt: skip
        conns.append({"pid": 1, "ts_ns": end, "event": "checkin", "request_id": f"r{r}",
                      "connection_id": 1 + r % 2})  # fmt: skip
    return queries(rows), pd.DataFrame(reqs), pd.DataFrame(conns)


def test_keyed_write_is_an_update_or_delete_by_equalities_only() -> None:
    assert keyed_write("update items set views=(items.views + ?) where items.id = ?")
    assert keyed_write("delete from t where t.a = ? and t.b = ?")
    assert not keyed_write("update t set a=? where t.created < ?")
    assert not keyed_write("select * from t where t.id = ?")


def test_writes_waiting_for_each_other_are_contention_with_the_wait_as_saving() -> None:
    q, r, c = _capture(overlapping=True)
    (finding,) = detect_write_contention(q, r, c, parameters_kept=True)
    assert finding.kind == "write_contention" and finding.endpoint == ENDPOINT
    evidence = finding.evidence[0]
    assert evidence["overlapped_calls"] == 20 and evidence["lone_calls"] == 20
    assert evidence["hot_key_share"] == 1.0 and "the same row" in finding.title
    assert 70 < finding.estimated_saving_ms < 80  # half the requests waited 150 ms
    assert "Not an index" in finding.fix


def test_the_same_writes_one_at_a_time_are_not_contention() -> None:
    q, r, c = _capture(overlapping=False)
    slow = q.assign(duration_ns=q["duration_ns"] + 120 * MS)  # slow, never waiting
    assert detect_write_contention(slow, r, c) == []


def test_a_writers_transaction_lasts_until_its_connection_is_checked_in() -> None:
    q, r, c = _capture(overlapping=True)
    alone = r.assign(end_ns=r["start_ns"] + q["duration_ns"].to_numpy())  # requests end
    early = c.assign(ts_ns=alone["end_ns"].to_numpy())  # and commit at once
    assert detect_write_contention(q, alone, early) == []
    assert len(detect_write_contention(q, alone, c)) == 1  # checked in 150 ms later


def _finding(
    kind: str, fingerprint: str, saving: float, key: str = "fingerprint", **more
) -> Finding:
    return Finding(kind, "low", "GET /x", kind, [{key: fingerprint, **more}], saving, "fix", 10)


def test_one_cause_one_finding_keeps_the_explaining_detector_and_the_largest_saving() -> None:
    scan = "select * from t order by t.a limit ? offset ?"
    found = one_per_cause(
        [
            _finding("slow_query", scan, 9.0),
            _finding("deep_pagination", scan, 4.0, key="page_fingerprint"),
            _finding("missing_index", scan, 6.0),
            _finding("n_plus_one", scan, 3.0),  # another cause: how often, not how slow
            _finding("slow_query", "select 1", 2.0),
        ]
    )
    kinds = sorted(f.kind for f in found)
    assert kinds == ["missing_index", "n_plus_one", "slow_query"]
    index = next(f for f in found if f.kind == "missing_index")
    assert index.estimated_saving_ms == 9.0
    assert sorted(e["also_found_by"] for e in index.evidence[1:]) == [
        "deep_pagination",
        "slow_query",
    ]
    assert np.isclose(sum(f.estimated_saving_ms for f in found), 9.0 + 3.0 + 2.0)


def test_a_count_on_every_page_stays_a_pagination_finding_beside_the_index() -> None:
    page = "select * from t order by t.a limit ? offset ?"
    paging = _finding(
        "deep_pagination", page, 5.0, key="page_fingerprint", count_saving_ms=1.5,
        depth_saving_ms=3.5,
    )  # fmt: skip
    found = one_per_cause([_finding("missing_index", page, 6.0), paging])
    assert sorted(f.kind for f in found) == ["deep_pagination", "missing_index"]
    assert paging.estimated_saving_ms == 1.5  # the depth cost is the index's
    assert paging.evidence[0]["page_query_explained_by"] == "missing_index"


def test_a_pagination_whose_count_and_page_an_index_explains_is_the_index_finding() -> None:
    """FlaskBB's topic pages: two pages deep, the COUNT slow only because it scans posts,
    which the missing index fixes: nothing is left for pagination advice."""
    page = "select * from posts where posts.topic_id = ? limit ? offset ?"
    count = "select count(*) from posts where posts.topic_id = ?"
    index = Finding("missing_index", "low", "GET /topic", "idx",
                    [{"fingerprint": page}, {"fingerprint": count}], 0.6, "fix", 10)  # fmt: skip
    paging = _finding(
        "deep_pagination", page, 0.63, key="page_fingerprint", count_fingerprint=count,
        count_saving_ms=0.63, depth_saving_ms=0.0,
    )  # fmt: skip
    paging.endpoint = "GET /topic"
    assert [f.kind for f in one_per_cause([index, paging])] == ["missing_index"]
    assert index.evidence[-1]["also_found_by"] == "deep_pagination"


def test_a_cache_finding_about_the_pages_counts_is_the_pagination_finding() -> None:
    page = "select * from t order by t.a limit ? offset ?"
    counts = ["select count(*) from t", "select count(*) from t where t.s = ?"]
    paging = Finding("deep_pagination", "low", "GET /x", "pages",
                     [{"page_fingerprint": page, "count_fingerprint": counts[0],
                       "count_saving_ms": 2.0},
                      {"page_fingerprint": page, "count_fingerprint": counts[1]}],
                     2.0, "fix", 10)  # fmt: skip
    cache = Finding("uncached_read", "low", "GET /x", "reads",
                    [{}, *({"fingerprint": c} for c in counts)], 1.0, "fix", 10)  # fmt: skip
    other = Finding("uncached_read", "low", "GET /y", "reads", [{}, {"fingerprint": counts[0]}],
                    1.0, "fix", 10)  # fmt: skip
    found = one_per_cause([paging, cache, other])
    assert [(f.kind, f.endpoint) for f in found] == [
        ("deep_pagination", "GET /x"),
        ("uncached_read", "GET /y"),
    ]


def test_writes_that_all_wait_are_contention_judged_against_the_one_that_did_not() -> None:
    """Under steady load the lock is never free: every write but the first waited 30 ms
    behind the one before it (each holds its transaction 40 ms)."""
    rows, reqs, conns = [], [], []
    for r in range(30):
        start = r * 35 * MS
        duration = int(0.05 * MS) if r == 0 else 30 * MS + r * 1000
        end = start + duration + 40 * MS
        rows.append({"request_id": f"r{r}", "start_ns": start, "duration_ns": duration,
                     "statement": VIEW, "connection_id": r, "endpoint": ENDPOINT})  # fmt: skip
        reqs.append({"request_id": f"r{r}", "endpoint": ENDPOINT, "start_ns": start,
                     "end_ns": end, "duration_ns": end - start})  # fmt: skip
        conns.append({"pid": 1, "ts_ns": end, "event": "checkin", "request_id": f"r{r}",
                      "connection_id": r})  # fmt: skip
    (finding,) = detect_write_contention(queries(rows), pd.DataFrame(reqs), pd.DataFrame(conns))
    assert finding.evidence[0]["lone_calls"] == 1
    assert finding.evidence[0]["lone_median_ms"] == 0.05
