"""The Jupyter edge's pure parts: parameters to a target, launch specs, lessons."""

from __future__ import annotations

import json
import shlex
import sys
import types
from datetime import datetime

import pytest

from deskprof import lab
from deskprof.errors import DeskprofError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, []),
        ("", []),
        (12345, [12345]),
        ("12345", [12345]),
        ("12345, 12346", [12345, 12346]),
        ("12345 12346", [12345, 12346]),
        ("[12345, 12346]", [12345, 12346]),
        ([12345, "12346"], [12345, 12346]),
    ],
)
def test_parse_pids_accepts_what_papermill_may_pass(given, expected):
    assert lab.parse_pids(given) == expected


@pytest.mark.parametrize("given", ["abc", "12,x", [1.5], [-3], "0", True, ["12 13"]])
def test_parse_pids_refuses_what_is_not_a_pid_in_one_line(given):
    with pytest.raises(DeskprofError, match="pgrep") as info:
        lab.parse_pids(given)
    assert "\n" not in str(info.value)


def test_reference_launch_gives_capture_and_variant_what_they_take(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    launch = lab.reference_launch(8123, fixes="eager_loading", database_url=db, workers=2)
    assert launch.url == "http://127.0.0.1:8123"
    kwargs = launch.capture_kwargs()
    assert set(kwargs) == {"url", "launch", "launch_env"}
    assert shlex.split(kwargs["launch"]) == [
        sys.executable, "-m", "opendesk", "serve", "--port", "8123", "--workers", "2",
    ]  # fmt: skip
    assert kwargs["launch_env"] == {"OPENDESK_DATABASE_URL": db, "OPENDESK_FIXES": "eager_loading"}
    kwargs["launch_env"]["X"] = "1"
    assert "X" not in launch.env, "callers get a copy"

    variant = launch.variant("candidate", OPENDESK_FIXES="all")
    assert variant.kind == "launch" and variant.name == "candidate"
    assert variant.env == {"OPENDESK_DATABASE_URL": db, "OPENDESK_FIXES": "all"}
    # the runner fills {python} and {port}; the worker count is already in
    assert variant.command == "{python} -m opendesk serve --port {port} --workers 2"


def test_reference_launch_picks_a_free_port_and_passes_redis(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    launch = lab.reference_launch(database_url=db, redis_url="redis://127.0.0.1:6379/3")
    assert 0 < launch.port < 65536
    assert launch.env["OPENDESK_REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert launch.env["OPENDESK_FIXES"] == "none"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixes": "eager_loding"}, "unknown fix name"),
        ({"workers": 0}, "workers"),
        ({"workers": "2"}, "workers"),
        ({"port": 70000}, "port"),
    ],
)
def test_reference_launch_refuses_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(DeskprofError, match=message):
        lab.reference_launch(database_url=f"sqlite:///{tmp_path / 'x'}", **kwargs)


def test_reference_database_refuses_an_unknown_size():
    with pytest.raises(DeskprofError, match="unknown data size 'huge'; choose one of small"):
        lab.reference_database("huge")


def test_sqlite_files_per_size_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DESKPROF_DATA_DIR", str(tmp_path))
    assert lab.sqlite_path("small") == tmp_path / "opendesk-small.sqlite3"
    assert lab.sqlite_path("demo") == tmp_path / "opendesk.sqlite3", "shared with make demo"
    bundle = lab.capture_dir("01 CPU: tickets!")
    assert bundle.parent == tmp_path / "captures" and bundle.name.endswith("-01-cpu-tickets")
    assert not bundle.exists()


def test_attach_parameters_give_an_attach_target():
    target = lab.target_from_parameters(
        "http://127.0.0.1:8000/", "101,102", database_url="postgresql://ro@replica/db"
    )
    assert not target.reference
    assert target.capture_kwargs() == {"url": "http://127.0.0.1:8000", "pids": [101, 102]}
    assert target.database_url == "postgresql://ro@replica/db"
    assert "PIDs 101, 102" in target.describe()


def test_empty_url_starts_the_reference_service(monkeypatch):
    seeded = []
    monkeypatch.setattr(
        lab,
        "reference_database",
        lambda size, database_url=None: seeded.append(size) or "sqlite:///s",
    )
    target = lab.target_from_parameters("", None, size="small", fixes="all", workers=2, port=8001)
    assert seeded == ["small"] and target.reference
    assert target.database_url == "sqlite:///s"
    assert target.capture_kwargs()["launch_env"]["OPENDESK_FIXES"] == "all"
    assert target.capture_kwargs()["url"] == target.url == "http://127.0.0.1:8001"


@pytest.mark.parametrize(
    ("url", "pids", "message"),
    [
        ("", "123", "pids were given without url"),
        ("http://127.0.0.1:8000", "", "needs the PIDs"),
        ("127.0.0.1:8000", "123", "http\\(s\\) URL"),
    ],
)
def test_inconsistent_parameters_say_what_to_set(url, pids, message):
    with pytest.raises(DeskprofError, match=message):
        lab.target_from_parameters(url, pids)


def test_a_lesson_fails_on_the_reference_service_and_is_reported_on_staging(capsys):
    staging = lab.LabTarget("http://10.0.0.5:8000", [7])
    assert staging.check(False, "the SLA loop is on top", "found json.dumps") is False
    assert "DOES NOT hold (found json.dumps)" in capsys.readouterr().out
    reference = lab.LabTarget("http://127.0.0.1:1", [], lab.ReferenceLaunch(1))
    assert reference.check(True, "the SLA loop is on top") is True
    with pytest.raises(AssertionError, match="the SLA loop is on top: not on the reference"):
        reference.check(False, "the SLA loop is on top")


# --- what the experiment notebooks used to write by hand --------------------------------------


def test_every_fix_but_leaves_out_only_the_fix_measured():
    known = ["eager_loading", "indexes", "report_cache"]
    assert lab.every_fix_but("indexes", known=known) == "eager_loading,report_cache"
    assert lab.every_fix_but(*known, known=known) == "none"
    everything_else = lab.every_fix_but("connection_pool").split(",")
    assert "connection_pool" not in everything_else
    assert set(everything_else) | {"connection_pool"} == set(lab.fix_names())
    assert lab.check_fixes(lab.every_fix_but("indexes")), "the service takes it"
    with pytest.raises(DeskprofError, match=r"unknown fix name.*index\b"):
        lab.every_fix_but("index", known=known)


def test_arm_launches_the_reference_service_and_attaches_to_staging(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    launch = lab.reference_launch(8124, fixes="eager_loading", database_url=db)
    reference = lab.LabTarget(launch.url, [], launch, db)
    variant = lab.arm(reference, "eager", OPENDESK_REDIS_URL="redis://r")
    assert variant.kind == "launch" and variant.name == "eager"
    assert variant.env["OPENDESK_FIXES"] == "eager_loading"
    assert variant.env["OPENDESK_REDIS_URL"] == "redis://r"
    staging = lab.LabTarget("http://10.0.0.5:8000", [7, 8])
    running = lab.arm(staging, "staging", OPENDESK_REDIS_URL="redis://r")
    assert running.kind == "url" and running.url == "http://10.0.0.5:8000"
    assert running.pids == [7, 8] and running.name == "staging"


def test_experiment_dir_and_notebook_database_live_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DESKPROF_DATA_DIR", str(tmp_path))
    out = lab.experiment_dir("12 Report cache")
    assert out.parent == tmp_path / "experiments" and out.name.endswith("-12-report-cache")
    assert not out.exists()
    url = lab.notebook_database_url("small", "16-notifications")
    assert url == f"sqlite:///{tmp_path / 'opendesk-small-16-notifications.sqlite3'}"


def test_findings_table_keeps_the_columns_asked_even_without_findings():
    class Finding:
        def __init__(self, **fields):
            self.fields = fields

        def to_dict(self):
            return dict(self.fields)

    rows = [Finding(kind="n_plus_one", severity="high", endpoint="GET /t", title="N+1", x=1)]
    table = lab.findings_table(rows)
    assert list(table.columns) == ["kind", "severity", "endpoint", "title"]
    assert table.iloc[0]["title"] == "N+1"
    empty = lab.findings_table([], ["severity", "fix"])
    assert list(empty.columns) == ["severity", "fix"] and empty.empty


def test_verdict_rows_and_ratio_text():
    import pandas as pd

    verdicts = pd.DataFrame(
        {
            "endpoint": ["GET /t", "GET /t", "(all)"],
            "metric": ["p50_ms", "p95_ms", "p50_ms"],
            "ratio": [0.5, 0.6, 0.9],
            "ci_low": [0.45, 0.5, 0.8],
            "ci_high": [0.555, 0.7, 1.0],
        }
    )
    rows = lab.verdict_rows(verdicts, "GET /t")
    assert list(rows.index) == ["p50_ms", "p95_ms"]
    assert lab.ratio_text(rows.loc["p50_ms"]) == "ratio 0.50 [0.45, 0.56]"


def test_cache_hit_ratio_counts_the_generation_key_miss_of_every_read():
    before = {"keyspace_hits": 10, "keyspace_misses": 5}
    # 100 cached reads: 100 generation-key misses, 4 entry misses, 96 entry hits
    after = {"keyspace_hits": 106, "keyspace_misses": 109}
    cache = lab.cache_hit_ratio(before, after, reads=100)
    assert (cache["hits"], cache["misses"], cache["entry_misses"]) == (96, 104, 4)
    assert cache["ratio"] == pytest.approx(96 / 100)
    nothing = lab.cache_hit_ratio(before, before, reads=0)
    assert nothing["ratio"] == 0 and nothing["entry_misses"] == 0


def test_logged_in_sends_the_token_with_every_request():
    import httpx

    seen = []

    def answer(request):
        if request.url.path == "/auth/login":
            body = json.loads(request.content)
            ok = body == {"email": "admin1@opendesk.test", "password": "opendesk"}
            return httpx.Response(200 if ok else 401, json={"token": "t0k"})
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"open": 3})

    transport = httpx.MockTransport(answer)
    with lab.logged_in("http://svc", "admin1@opendesk.test", transport=transport) as http:
        assert http.get("/reports/ticket-stats").json() == {"open": 3}
        http.post("/tickets", json={})
    assert seen == ["Bearer t0k", "Bearer t0k"] and http.is_closed
    with (
        pytest.raises(DeskprofError, match="login of x@y refused: HTTP 401"),
        lab.logged_in("http://svc", "x@y", transport=transport),
    ):
        pass


def test_migration_commands_apply_and_revert_on_the_given_database():
    apply, revert = lab.migration_commands("sqlite:////tmp/a b.sqlite3", "indexes")
    assert shlex.split(apply) == [
        "env", "OPENDESK_DATABASE_URL=sqlite:////tmp/a b.sqlite3",
        sys.executable, "-m", "opendesk", "migrate", "indexes", "apply",
    ]  # fmt: skip
    assert (
        shlex.split(revert)[-1] == "revert" and shlex.split(revert)[:-1] == shlex.split(apply)[:-1]
    )


def test_applied_reverts_even_when_the_block_fails(tmp_path):
    log = tmp_path / "log"
    apply, revert = f"sh -c 'echo apply >> {log}'", f"sh -c 'echo revert >> {log}'"
    with pytest.raises(RuntimeError), lab.applied(apply, revert):
        assert log.read_text() == "apply\n"
        raise RuntimeError("EXPLAIN failed")
    assert log.read_text() == "apply\nrevert\n"


def test_reexports_reach_what_notebooks_need_and_refuse_the_rest():
    from deskprof.analysis.explain import explain
    from deskprof.experiment import Design
    from deskprof.views import latency_ecdf

    assert lab.explain is explain and lab.Design is Design and lab.latency_ecdf is latency_ecdf
    assert "query_diff" in lab.__all__ and "arm" in lab.__all__
    with pytest.raises(AttributeError, match="no attribute 'pandas'"):
        _ = lab.pandas
    from deskprof.bundle.schema import describe

    assert lab.table_doc("requests").data == describe("requests")
    with pytest.raises(DeskprofError, match="unknown table 'request'"):
        lab.table_doc("request")


# --- evidence tables ------------------------------------------------------------------------


def _write_probe(directory, records):
    directory.mkdir(parents=True)
    lines = [json.dumps(r) for r in records]
    (directory / "probe-123.jsonl").write_text("\n".join(lines) + "\n")


def test_probe_records_and_arm_queries_read_each_arms_probe_output(tmp_path):
    _write_probe(
        tmp_path / "raw" / "probe-baseline",
        [
            {"kind": "queries", "request_id": "a", "fingerprint": "SELECT 1", "duration_ns": 5},
            {"kind": "queries", "request_id": "z", "fingerprint": "SELECT 2", "duration_ns": 7},
            {"kind": "connections", "request_id": "a", "event": "connect"},
        ],
    )  # the candidate ran without the probe: no directory
    queries = lab.probe_records(tmp_path, "queries", ["request_id", "duration_ns"])
    assert list(queries.columns) == ["request_id", "duration_ns", "arm"]
    assert queries["arm"].tolist() == ["baseline", "baseline"]
    import pandas as pd

    pages = pd.DataFrame({"arm": ["baseline", "candidate"], "request_id": ["a", "b"]})
    base_q, base_ids = lab.arm_queries(tmp_path, pages, "baseline")
    assert base_q["request_id"].tolist() == ["a"] and base_ids.tolist() == ["a"]
    cand_q, cand_ids = lab.arm_queries(tmp_path, pages, "candidate")
    assert cand_q.empty and cand_ids.tolist() == ["b"]


def test_connections_per_request_counts_zero_for_requests_without_events():
    import pandas as pd

    connections = pd.DataFrame(
        {
            "event": ["connect", "checkout", "checkout", "connect"],
            "request_id": ["r1", "r1", "r2", ""],  # the last one: outside any request
        }
    )
    requests = pd.DataFrame({"request_id": ["r1", "r2", "r3"], "arm": ["b", "c", "c"]})
    table = lab.connections_per_request(connections, requests, "arm")
    assert table.loc["b", "new connections per request"] == 1
    assert table.loc["c", "new connections per request"] == 0
    assert table.loc["c", "checkouts per request"] == 0.5
    assert table["requests"].to_dict() == {"b": 1, "c": 2}


def test_median_by_position_orders_statements_within_each_request():
    import pandas as pd

    statements = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "b"],
            "start_ns": [2, 1, 3, 4],
            "duration_ns": [1e6, 9e6, 7e6, 3e6],
            "arm": ["baseline", "baseline", "baseline", "baseline"],
        }
    )
    table = lab.median_by_position(statements)
    assert table["baseline median ms"].tolist() == [8.0, 2.0]  # first: 9 and 7, second: 1 and 3


def test_statements_per_request_and_shorten():
    import pandas as pd

    queries = pd.DataFrame(
        {
            "endpoint": ["GET /t", "GET /t", "GET /t", "POST /c/comments"],
            "request_id": ["a", "a", "b", "c"],
            "fingerprint": ["SELECT x", "SELECT x", "SELECT y", "INSERT"],
            "duration_ns": [2e6, 4e6, 1e6, 5e6],
        }
    )
    table = lab.statements_per_request(queries, "GET /t")
    assert table.index.tolist() == ["SELECT x", "SELECT y"]
    assert table.loc["SELECT x"].tolist() == [1.0, 3.0, 3.0]  # calls, ms per request, median
    posts = lab.statements_per_request(queries, lambda e: e.str.endswith("/comments"))
    assert posts.index.tolist() == ["INSERT"]
    assert lab.shorten(pd.Index(["abcdef"]), 3).tolist() == ["…def"]
    assert lab.shorten(pd.Series(["abcdef"]), 3, end=False).tolist() == ["abc"]


def test_count_gone_needs_the_count_nearly_gone():
    import pandas as pd

    diff = pd.DataFrame(
        {
            "fingerprint": ["SELECT count(*) FROM t", "SELECT * FROM t"],
            "baseline_calls_per_unit": [1.0, 1.0],
            "candidate_calls_per_unit": [0.05, 0.0],
        }
    )
    assert lab.count_gone(diff)
    diff.loc[0, "candidate_calls_per_unit"] = 0.5
    assert not lab.count_gone(diff), "the other statement is gone, not the count"


def test_on_stack_shares_and_peak_mib():
    import pandas as pd

    capture = types.SimpleNamespace(
        samples=pd.DataFrame(
            {
                "endpoint": ["POST /c", "POST /c", "GET /t"],
                "state": ["cpu", "wait", "cpu"],
                "stack_id": [1, 2, 1],
                "n_samples": [3, 1, 10],
                "thread_id": [1, 1, 1],
            }
        ),
        stacks=pd.DataFrame({"stack_id": [1, 2], "frames": [["a.deliver", "b"], ["c.do_commit"]]}),
    )
    shares = lab.on_stack_shares(capture, "POST /c", ["deliver", "do_commit", "nowhere"])
    assert shares.to_dict() == {"deliver": 0.75, "do_commit": 0.25, "nowhere": 0.0}


def test_peak_mib_of_one_endpoint(monkeypatch):
    import pandas as pd

    table = pd.DataFrame({"endpoint": ["GET /x", ""], "bytes": [2 * 2**20, 2**20]})
    monkeypatch.setattr(lab, "memory_by", lambda capture, by: table)
    assert lab.peak_mib(object(), "GET /x") == (2.0, 3.0)
    assert lab.peak_mib(object(), "GET /none") == (0.0, 3.0)


def test_require_postgresql_and_libpq_url():
    url = "postgresql+psycopg://u:secret@h:5432/db"
    assert lab.require_postgresql(url, "13 needs it") == url
    with pytest.raises(DeskprofError, match="13 needs it: set database_url to a PostgreSQL URL"):
        lab.require_postgresql("sqlite:///x", "13 needs it")
    assert lab.libpq_url(url) == "postgresql://u:secret@h:5432/db"


def test_median_ms_times_the_action():
    calls = []
    assert lab.median_ms(lambda: calls.append(1), n=5) >= 0 and len(calls) == 5
    with pytest.raises(DeskprofError, match="at least one run"):
        lab.median_ms(lambda: None, n=0)


def test_outbox_reads_the_emails_written_since_a_mark(tmp_path):
    from sqlalchemy import create_engine

    from opendesk.models import Base, Notification

    url = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine, tables=[Notification.__table__])
    outbox = lab.Outbox(url)
    assert outbox.newest() == 0
    values = {
        "recipient_id": 1,
        "recipient_email": "a@x",
        "kind": "comment",
        "subject": "s",
        "body": "b",
        "created_at": datetime(2024, 1, 1),
    }
    with engine.begin() as conn:
        conn.execute(Notification.__table__.insert(), [{"ticket_id": 2, **values}])
    mark = outbox.newest()
    with engine.begin() as conn:
        conn.execute(Notification.__table__.insert(), [{"ticket_id": 9, **values}])
    assert outbox.since(mark) == [(9, "a@x", "s", "b")]
    rows, waited = outbox.wait_since(mark, 2, timeout_s=0.1)
    assert len(rows) == 1 and waited >= 0.1
    outbox.close()
    engine.dispose()


def test_export_locustfile_writes_the_packaged_one_with_other_settings(tmp_path):
    file = lab.export_locustfile("/tickets/export.csv?status=open", "export", out=tmp_path / "l.py")
    text = file.read_text()
    compile(text, str(file), "exec")
    assert "EXPORT_PATH = '/tickets/export.csv?status=open'" in text
    assert "NAME = 'export'" in text and "WAIT_S = 0.2" in text
    packaged = lab.EXPORT_TEMPLATE.read_text()
    assert text.count("\n") == packaged.count("\n"), "only the three settings change"
    with pytest.raises(DeskprofError, match="a path on the service"):
        lab.export_locustfile("tickets/export.csv", out=tmp_path / "m.py")
