"""PostgreSQL csvlog/jsonlog ingestion, on a real log committed under tests/fixtures/pglog.

The fixture is OpenDesk traffic through a real PostgreSQL 15 with the deskprof probe's
sqlcommenter on (regenerate with ``python tests/fixtures/pglog/make_fixture.py``);
``probe.jsonl`` is what the probe recorded for the same requests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from deskprof.analysis.attribution import add_endpoint
from deskprof.analysis.pglog import (
    LogError,
    comment_fields,
    join_requests,
    parse_log_time,
    read_pglog,
)
from deskprof.bundle.schema import columns
from deskprof.errors import DeskprofError
from deskprof.probe.reader import read_probe_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pglog"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    directory = tmp_path_factory.mktemp("probe")
    shutil.copy(FIXTURES / "probe.jsonl", directory / "probe-1.jsonl")
    records = read_probe_dir(directory)
    return {
        "requests": add_endpoint(pd.DataFrame(records["requests"])),
        "queries": pd.DataFrame(records["queries"]),
    }


@pytest.mark.parametrize("name", ["opendesk.csv", "opendesk.json"])
def test_log_reads_into_the_queries_table(name: str) -> None:
    queries = read_pglog(FIXTURES / name)
    assert list(queries.columns)[: len(columns("queries"))] == columns("queries")
    assert {"fingerprint", "fingerprint_id", "operation", "endpoint", "attributed_by"} <= set(
        queries.columns
    )
    assert len(queries) > 100
    assert (queries["duration_ns"] >= 0).all() and (queries["start_ns"] > 1.7e18).all()
    assert queries["start_ns"].dtype == "int64"
    # parameters name the placeholders only, never values
    assert queries["parameters"].str.fullmatch(r"\[(\"\$\d+\"(, )?)*\]").all()
    assert not queries["statement"].str.startswith("duration:").any()
    # no parse/bind steps: each execution once
    assert queries["query_id"].is_unique


def test_csvlog_and_jsonlog_agree() -> None:
    csv = read_pglog(FIXTURES / "opendesk.csv")
    json = read_pglog(FIXTURES / "opendesk.json")
    pd.testing.assert_frame_equal(csv, json)


def test_joined_to_requests_by_comment_match_the_probe(probe: dict[str, pd.DataFrame]) -> None:
    queries = read_pglog(FIXTURES / "opendesk.csv", requests=probe["requests"])
    by_comment = queries[queries["attributed_by"] == "comment"]
    # every statement the probe saw inside a request is in the log, under the same request
    assert by_comment["request_id"].value_counts().to_dict() == (
        probe["queries"].query("request_id != ''")["request_id"].value_counts().to_dict()
    )
    endpoints = dict(
        zip(probe["requests"]["request_id"], probe["requests"]["endpoint"], strict=True)
    )
    assert (by_comment["endpoint"] == by_comment["request_id"].map(endpoints)).all()
    assert "GET /tickets" in set(by_comment["endpoint"])
    # statements without a comment (BEGIN, driver set-up) are joined by time, and say so
    by_time = queries[queries["attributed_by"] == "time"]
    assert len(by_time) and not by_time["statement"].str.contains("request_id=").any()
    # fingerprints group the probe's statements the same way the log's do
    probe_fps = set(read_pglog(FIXTURES / "opendesk.csv")["fingerprint"])
    from deskprof.analysis.fingerprint import fingerprint

    assert {fingerprint(s) for s in probe["queries"]["statement"]} <= probe_fps


def test_failed_statement_kept_with_sqlstate(tmp_path: Path) -> None:
    line = (
        '2026-11-24 22:39:08.066 UTC,"postgres","postgres",14954,"127.0.0.1:40938",'
        '6b06120c.3a6a,11,"SELECT",2026-11-24 22:39:08 UTC,3/2,724,ERROR,42P01,'
        '"relation ""nope"" does not exist",,,,,,"select * from nope",15,,"","client backend",,0\n'
        '2026-11-24 22:39:08.065 UTC,"postgres","postgres",14954,"127.0.0.1:40938",'
        '6b06120c.3a6a,10,"SELECT",2026-11-24 22:39:08 UTC,3/2,724,LOG,00000,'
        "\"duration: 10.276 ms  statement: select 'multi\nline' /*request_id='r%2F1'*/\","
        ',,,,,,,,"","client backend",,0\n'
    )
    (tmp_path / "x.csv").write_text(line)
    queries = read_pglog(tmp_path / "x.csv")
    assert queries["error"].tolist() == ["42P01", ""]
    assert queries["duration_ns"].tolist() == [0, 10_276_000]
    assert (
        queries.loc[1, "start_ns"]
        == parse_log_time(pd.Series(["2026-11-24 22:39:08.065 UTC"]))[0] - 10_276_000
    )
    assert queries.loc[1, "request_id"] == "r/1"  # URL-decoded, as sqlcommenter encodes
    assert queries.loc[1, "attributed_by"] == "comment"


def test_comment_fields() -> None:
    assert comment_fields("SELECT 1 /*request_id='a%2Fb',route='%2Ftickets'*/;") == {
        "request_id": "a/b",
        "route": "/tickets",
    }
    assert comment_fields("SELECT 1") == {}
    assert comment_fields("/* leading */ SELECT 1") == {}


def test_time_zones() -> None:
    stamps = pd.Series(
        [
            "2026-01-01 00:00:00.000 UTC",
            "2026-01-01 01:00:00.000 +01",
            "2026-01-01 01:00:00.000 CET",
        ]
    )
    out = parse_log_time(stamps)
    assert out[0] == out[1] == out[2]
    with pytest.raises(LogError, match="set log_timezone = 'UTC'"):
        parse_log_time(pd.Series(["2026-01-01 00:00:00.000 NOWHERE"]))


def test_time_join_is_blank_when_ambiguous() -> None:
    queries = pd.DataFrame(
        {
            "statement": ["BEGIN", "BEGIN", "BEGIN"],
            "start_ns": [10, 60, 500],
            "duration_ns": [5, 5, 5],
        }
    )
    requests = add_endpoint(
        pd.DataFrame(
            {
                "request_id": ["a", "b"],
                "pid": [1, 2],
                "thread_id": [1, 1],
                "method": "GET",
                "route": ["/a", "/b"],
                "start_ns": [0, 50],
                "end_ns": [100, 100],
            }
        )
    )
    out = join_requests(queries, requests)
    assert out["request_id"].tolist() == ["a", "", ""]
    assert out["attributed_by"].tolist() == ["time", "", ""]
    assert out["endpoint"].tolist() == ["GET /a", "", ""]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ("hello\n", "x.log", "neither a csvlog nor a jsonlog"),
        ('{"pid": 1}\n', "x.json", "no 'message' field"),
        ("a,b\n1,2\n", "x.csv", "not a PostgreSQL csvlog"),
    ],
)
def test_bad_logs(tmp_path: Path, content: str, name: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DeskprofError, match=message):
        read_pglog(tmp_path / name)
    with pytest.raises(LogError, match="no such PostgreSQL log file"):
        read_pglog(tmp_path / "missing.csv")
