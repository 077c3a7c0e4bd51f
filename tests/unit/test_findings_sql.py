"""SQL detectors on hand-built frames: each fires on its problem and stays quiet on the
fixed shape."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from deskprof.analysis.detectors.connection_churn import detect_connection_churn
from deskprof.analysis.detectors.deep_pagination import detect_deep_pagination, offset_value
from deskprof.analysis.detectors.n_plus_one import detect_n_plus_one
from deskprof.analysis.detectors.slow_query import detect_slow_queries
from deskprof.analysis.detectors.uncached_read import detect_uncached_reads, report_like
from deskprof.analysis.fingerprint import fingerprint_series
from deskprof.analysis.sqltext import tables_in, values_kept
from deskprof.bundle.schema import columns

MS = 1_000_000
LIST = "GET /tickets"


def queries(rows: list[dict]) -> pd.DataFrame:
    """Contract-shaped queries: schema columns + fingerprint, fingerprint_id, operation,
    endpoint."""
    defaults = {
        "pid": 1,
        "thread_id": 1,
        "parameters": '["int"]',
        "rowcount": -1,
        "executemany": False,
        "call_site": "/srv/app/views.py:10",
        "call_function": "view",
        "context": "",
        "connection_id": 7,
        "error": "",
        "endpoint": LIST,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["query_id"] = [f"q{i}" for i in range(len(frame))]
    frame = frame[[*columns("queries"), "endpoint"]]
    return pd.concat([frame, fingerprint_series(frame["statement"])], axis=1)


def requests(ids: list[str], endpoint: str = LIST, ms: float = 200.0) -> pd.DataFrame:
    method, route = endpoint.split(" ", 1)
    return pd.DataFrame(
        {
            "request_id": ids,
            "method": method,
            "route": route,
            "endpoint": endpoint,
            "start_ns": [i * 1000 * MS for i in range(len(ids))],
            "duration_ns": int(ms * MS),
        }
    )


def per_request(n_requests: int, statements: list[tuple[str, float]], **extra) -> list[dict]:
    rows = []
    for r in range(n_requests):
        for i, (statement, ms) in enumerate(statements):
            rows.append(
                {
                    "request_id": f"r{r}",
                    "start_ns": r * 1000 * MS + i * MS,
                    "duration_ns": int(ms * MS),
                    "statement": statement,
                    **extra,
                }
            )
    return rows


LAZY = "SELECT users.id, users.name FROM users WHERE users.id = ?"
BATCH = "SELECT users.id, users.name FROM users WHERE users.id IN (?, ?, ?, ?, ?, ?, ?, ?)"


def test_n_plus_one_fires_on_repeated_lookup_from_one_call_site():
    rows = per_request(6, [(LAZY, 8.0)] * 10)
    found = detect_n_plus_one(queries(rows), requests([f"r{i}" for i in range(6)]))
    assert len(found) == 1
    finding = found[0]
    assert (finding.kind, finding.endpoint, finding.affected_requests) == ("n_plus_one", LIST, 6)
    assert finding.evidence[0]["repeats_per_request_median"] == 10
    assert finding.evidence[0]["call_site"] == "/srv/app/views.py:10"
    assert finding.estimated_saving_ms == pytest.approx(9 * 8.0)
    assert finding.severity == "high"  # 72 ms of a 200 ms request


def test_n_plus_one_is_one_finding_per_loop_with_every_relation_it_loads():
    """A list page lazy-loading the creator (line 12) and the comments (line 13) of each
    row: two patterns, one loop, one fix; a lookup from another module stays apart."""
    comments = "SELECT comments.id FROM comments WHERE ? = comments.ticket_id"
    rows = per_request(6, [(LAZY, 8.0)] * 10, call_site="/srv/app/views.py:12")
    rows += per_request(6, [(comments, 4.0)] * 10, call_site="/srv/app/views.py:13")
    rows += per_request(6, [(LAZY, 8.0)] * 10, call_site="/srv/app/other.py:5",
                        call_function="other")  # fmt: skip
    found = detect_n_plus_one(queries(rows), requests([f"r{i}" for i in range(6)]))
    assert len(found) == 2
    loop = next(f for f in found if f.evidence[0]["call_function"] == "view")
    assert loop.evidence[0]["queries_in_loop"] == 2
    assert loop.evidence[0]["tables"] == ["users", "comments"]  # costliest first
    assert [e["call_site"] for e in loop.evidence[1:]] == [
        "/srv/app/views.py:12",
        "/srv/app/views.py:13",
    ]
    assert "app/views.py:12-13" in loop.title and "users, comments" in loop.fix
    assert loop.estimated_saving_ms == pytest.approx(9 * 8.0 + 9 * 4.0)


def test_n_plus_one_repeated_on_most_requests_is_found_however_cheap_each_is():
    """A lazy load of 9 rows on every page view: no request crosses Sentry's 50 ms, the
    pattern is on every request; and one slow outlier does not shrink the finding to it."""
    ids = [f"r{i}" for i in range(40)]
    rows = per_request(40, [(LAZY, 1.2)] * 9)
    rows += per_request(1, [(LAZY, 9.0)] * 9)  # r0 once more, slow: 81 ms
    found = detect_n_plus_one(queries(rows), requests(ids, ms=30.0))
    assert len(found) == 1
    evidence = found[0].evidence[0]
    assert found[0].affected_requests == 40  # every request repeating it, not only r0
    assert evidence["found_by"] == "sentry" and evidence["requests_over_sentry_threshold"] == 1
    cheap_only = detect_n_plus_one(queries(per_request(40, [(LAZY, 1.2)] * 9)), requests(ids))
    assert [f.evidence[0]["found_by"] for f in cheap_only] == ["systematic"]
    assert cheap_only[0].estimated_saving_ms == pytest.approx(8 * 1.2)


def test_n_plus_one_quiet_on_batched_load_and_below_thresholds():
    fixed = per_request(6, [(BATCH, 8.0)])
    assert detect_n_plus_one(queries(fixed), requests([f"r{i}" for i in range(6)])) == []
    # 10 cheap repeats (10 ms < 50 ms) in 2 of 10 requests: neither Sentry's nor systematic
    cheap = per_request(2, [(LAZY, 1.0)] * 10)
    assert detect_n_plus_one(queries(cheap), requests([f"r{i}" for i in range(10)])) == []
    few = per_request(6, [(LAZY, 30.0)] * 4)  # 120 ms but only 4 repeats
    assert detect_n_plus_one(queries(few), requests([f"r{i}" for i in range(6)])) == []


def test_n_plus_one_splits_by_call_site():
    rows = per_request(3, [(LAZY, 12.0)] * 5, call_site="a.py:1") + per_request(
        3, [(LAZY, 12.0)] * 5, call_site="b.py:2"
    )
    found = detect_n_plus_one(queries(rows), requests(["r0", "r1", "r2"]))
    assert sorted(f.evidence[0]["call_site"] for f in found) == ["a.py:1", "b.py:2"]


def test_slow_query_by_p95():
    slow = per_request(5, [("SELECT * FROM tickets WHERE title LIKE ?", 180.0)])
    found = detect_slow_queries(queries(slow), requests([f"r{i}" for i in range(5)]))
    assert [f.kind for f in found] == ["slow_query"]
    assert found[0].evidence[0]["p95_ms"] == pytest.approx(180.0)
    fast = per_request(5, [("SELECT * FROM tickets WHERE id = ?", 3.0)])
    assert detect_slow_queries(queries(fast), requests([f"r{i}" for i in range(5)])) == []


def test_a_query_slow_only_while_the_server_warms_up_is_named_so_and_low():
    statement = "SELECT * FROM runs WHERE experiment_id = ?"
    rows = per_request(40, [(statement, 2.0)])
    for row in rows[:3]:  # the first three requests, while the server warmed up
        row["duration_ns"] = 300 * MS
    found = detect_slow_queries(queries(rows), requests([f"r{i}" for i in range(40)]))
    assert [(f.kind, f.severity) for f in found] == [("slow_query", "low")]
    assert "warm-up" in found[0].title and found[0].evidence[0]["warmup_only_s"] == 7.8
    rows[30]["duration_ns"] = 300 * MS  # slow again later: a real slow query
    found = detect_slow_queries(queries(rows), requests([f"r{i}" for i in range(40)]))
    assert "warm-up" not in found[0].title


REPORT = "SELECT count(*) AS count_1 FROM tickets WHERE tickets.status = ? AND created_at >= ?"


def test_uncached_read_fires_when_report_repeats_without_writes():
    rows = per_request(6, [(REPORT, 30.0)], parameters='["str","datetime"]')
    reqs = requests([f"r{i}" for i in range(6)], "GET /reports/{name}")
    for row in rows:
        row["endpoint"] = "GET /reports/{name}"
    found = detect_uncached_reads(queries(rows), reqs)
    assert [(f.kind, f.endpoint) for f in found] == [("uncached_read", "GET /reports/{name}")]
    assert found[0].affected_requests == 5  # the first request had nothing to reuse
    assert found[0].evidence[0]["tables"] == ["tickets"]


def test_uncached_read_quiet_when_a_write_to_its_table_comes_between():
    rows = per_request(6, [(REPORT, 30.0), ("UPDATE tickets SET status=? WHERE tickets.id = ?", 1)])
    assert detect_uncached_reads(queries(rows), requests([f"r{i}" for i in range(6)])) == []


def test_uncached_read_sees_writes_from_work_outside_requests():
    """A background service updating the table between two report requests: the second
    read is not "unchanged", whoever wrote."""
    rows = per_request(6, [(REPORT, 30.0)], parameters='["str","datetime"]')
    for r in range(6):
        rows.append(
            {"request_id": "", "endpoint": "BACKGROUND task scheduler", "context": "task x",
             "start_ns": r * 1000 * MS + 500 * MS, "duration_ns": MS,
             "statement": 'UPDATE "tickets" SET status=? WHERE "tickets".id = ?'}
        )  # fmt: skip
    reqs = requests([f"r{i}" for i in range(6)])
    assert detect_uncached_reads(queries(rows), reqs) == []
    quiet = [row for row in rows if row["request_id"]]
    assert len(detect_uncached_reads(queries(quiet), reqs)) == 1


def test_uncached_read_ignores_key_lookups_when_values_were_redacted():
    rows = per_request(6, [(LAZY, 30.0)])
    assert detect_uncached_reads(queries(rows), requests([f"r{i}" for i in range(6)])) == []
    # with values kept, the same user read again and again is a real repeat
    kept = per_request(6, [(LAZY, 30.0)], parameters="[42]")
    found = detect_uncached_reads(queries(kept), requests([f"r{i}" for i in range(6)]))
    assert [f.kind for f in found] == ["uncached_read"]
    other = per_request(6, [(LAZY, 30.0)])
    for i, row in enumerate(other):
        row["parameters"] = json.dumps([i])  # a different user every time
    assert detect_uncached_reads(queries(other), requests([f"r{i}" for i in range(6)])) == []


PAGE = "SELECT tickets.id FROM tickets ORDER BY tickets.created_at DESC LIMIT ? OFFSET ?"
COUNT = "SELECT count(*) AS count_1 FROM tickets"
SEEK = (
    "SELECT tickets.id FROM tickets WHERE (tickets.created_at, tickets.id) < (?, ?) "
    "ORDER BY tickets.created_at DESC LIMIT ? OFFSET ?"
)


def test_deep_pagination_fires_on_count_every_page_when_values_redacted():
    rows = per_request(8, [(PAGE, 5.0), (COUNT, 4.0)], parameters='["int","int"]')
    found = detect_deep_pagination(queries(rows), requests([f"r{i}" for i in range(8)]))
    assert [(f.kind, f.endpoint) for f in found] == [("deep_pagination", LIST)]
    evidence = found[0].evidence[0]
    assert evidence["share_of_pages_with_count"] == 1.0
    assert evidence["depth_known"] is False and "--keep-parameters" in evidence["note"]
    assert found[0].estimated_saving_ms == pytest.approx(4.0)


def test_deep_pagination_needs_depth_or_a_count_that_costs_something():
    """Values redacted, a COUNT on every page of a ten-row table (microseconds): no
    evidence that depth or size matters; pages 1-5 with values kept are not deep."""
    rows = per_request(8, [(PAGE, 0.3), (COUNT, 0.05)], parameters='["int","int"]')
    assert detect_deep_pagination(queries(rows), requests([f"r{i}" for i in range(8)])) == []
    shallow = [
        {**row, "parameters": json.dumps([25, 25 * (i % 5)])}
        for i, row in enumerate(per_request(8, [(PAGE, 5.0), (COUNT, 4.0)]))
    ]
    ids = [f"r{i}" for i in range(8)]
    assert detect_deep_pagination(queries(shallow), requests(ids), parameters_kept=True) == []


def test_deep_pagination_quiet_on_keyset_with_cached_count():
    rows = per_request(8, [(SEEK, 1.0)], parameters='["str","int","int","int"]')
    rows += per_request(1, [(COUNT, 4.0)])  # counted once, then from the cache
    assert detect_deep_pagination(queries(rows), requests([f"r{i}" for i in range(8)])) == []


def test_deep_pagination_with_kept_values_tests_growth_with_depth():
    rows = []
    for page in range(10):
        offset = page * 500
        rows += [
            {
                "request_id": f"r{page}",
                "start_ns": page * 1000 * MS,
                "duration_ns": int((2 + offset / 100) * MS),
                "statement": PAGE,
                "parameters": json.dumps([25, offset]),
            }
        ]
    found = detect_deep_pagination(queries(rows), requests([f"r{i}" for i in range(10)]))
    assert len(found) == 1
    evidence = found[0].evidence[0]
    assert evidence["latency_grows_with_depth"] is True and evidence["max_offset"] == 4500
    first_pages = [{**r, "parameters": "[25, 0]"} for r in rows]
    assert (
        detect_deep_pagination(queries(first_pages), requests([f"r{i}" for i in range(10)])) == []
    )


def test_offset_value_reads_each_placeholder_style():
    assert offset_value("SELECT a FROM t LIMIT ? OFFSET ?", "[25, 50]") == 50
    assert offset_value("SELECT a FROM t WHERE b = ? LIMIT ? OFFSET ?", '["x", 25, 75]') == 75
    pg = "SELECT a FROM t LIMIT %(param_1)s::INTEGER OFFSET %(param_2)s::INTEGER"
    assert offset_value(pg, '{"param_1": 25, "param_2": 100}') == 100
    assert offset_value(pg, '{"param_1": "int", "param_2": "int"}') is None
    assert offset_value("SELECT a FROM t LIMIT 10 OFFSET 40", "[]") == 40
    assert offset_value("SELECT a FROM t LIMIT $1 OFFSET $2", "[10, 20]") == 20


def test_connection_churn_fires_per_request_and_not_with_a_pool():
    reqs = requests([f"r{i}" for i in range(10)])
    churn = pd.DataFrame(
        {
            "pid": 1,
            "ts_ns": range(10),
            "event": "connect",
            "request_id": [f"r{i}" for i in range(10)],
            "connection_id": range(10),
        }
    )
    found = detect_connection_churn(churn, reqs)
    assert [(f.kind, f.endpoint, f.severity) for f in found] == [("connection_churn", "", "high")]
    assert found[0].evidence[0]["connects_per_request"] == 1.0
    pooled = churn.assign(event="checkout")
    pooled.loc[0, "event"] = "connect"
    assert detect_connection_churn(pooled, reqs) == []


def test_sql_shape_helpers():
    assert tables_in("select tags.id from tags, ticket_tags where ? = ticket_tags.ticket_id") == [
        "tags",
        "ticket_tags",
    ]
    assert tables_in("update tickets set a = ? where id in (select x from y)") == [
        "y",
        "tickets",
    ]
    assert tables_in("insert into api_tokens(token) values (?)") == ["api_tokens"]
    # quoted names (a writer's table missed here was "no write in between" to the cache
    # detector), schema prefixes, and an upsert's DO UPDATE SET (no table called "set")
    assert tables_in('insert into "flow_run" (id) values (?+)') == ["flow_run"]
    assert tables_in('select * from "public"."flow_run" join "user" on ? = ?') == [
        "flow_run",
        "user",
    ]
    assert tables_in("insert into t(a) values (?+) on conflict(a) do update set a = ?") == ["t"]
    assert report_like("select count(*) from tickets where tickets.status = ?")
    assert report_like("select * from tickets where created_at >= ? and created_at < ?")
    assert not report_like("select * from users where users.id = ?")
    assert not report_like("select * from users where users.id in (?+)")
    assert not report_like("select * from tickets order by id limit ? offset ?")
    assert values_kept(pd.Series(['["int","str"]', '{"id_1":"int"}'])) is False
    assert values_kept(pd.Series(['["int","str"]', "[42]"])) is True
    assert values_kept(pd.Series(['["open"]'])) is True
    assert values_kept(pd.Series(["[1]"]), hint=False) is False


def test_detect_all_skips_detectors_without_input_and_ranks():
    from deskprof.analysis.findings import detect_all

    rows = per_request(6, [(LAZY, 8.0)] * 10)
    capture = SimpleNamespace(
        queries=queries(rows),
        requests=requests([f"r{i}" for i in range(6)]),
        connections=pd.DataFrame(columns=columns("connections")),
        manifest={"options": {"keep_parameters": False}},
    )
    found = detect_all(capture)
    assert [f.kind for f in found] == ["n_plus_one"]
    skipped = {s["detector"]: s["reason"] for s in found.skipped}
    assert "--explain-database" in skipped["missing_index"]
    assert "samples" in skipped["cpu_hotspot"] and "connections" in skipped["connection_churn"]


def test_fix_texts_name_the_cursor_and_the_cache_key():
    from deskprof.analysis.detectors.deep_pagination import keyset_fix
    from deskprof.analysis.detectors.uncached_read import cache_key

    fix = keyset_fix(
        "select tickets.id from tickets order by tickets.created_at desc limit ? offset ?"
    )
    assert "WHERE (tickets.created_at, tickets.id) < (:last_created_at, :last_id)" in fix
    assert "ORDER BY tickets.created_at DESC, tickets.id DESC" in fix
    assert "(sort_key, id)" in keyset_fix("select t.a from t order by lower(t.a) limit ? offset ?")
    assert cache_key("GET /reports/{name}") == "reports:{name}:{query-hash}"
