"""Opening bundles: derived columns, laziness, and a clear error for each broken bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deskprof.analysis import Capture, open_capture
from deskprof.bundle.schema import TABLES, columns
from deskprof.bundle.writer import BundleWriter
from deskprof.errors import BundleError

HANDLER = "opendesk.api.tickets:list_tickets"


def _request(request_id: str, start: int, end: int, **kw) -> dict:
    row = dict(
        request_id=request_id,
        pid=1,
        thread_id=7,
        native_thread_id=70,
        method="GET",
        route="/tickets",
        handler=HANDLER,
        status=200,
        start_ns=start,
        end_ns=end,
        duration_ns=end - start,
        error="",
    )
    return {**row, **kw}


def _query(query_id: str, request_id: str, statement: str, start: int = 0) -> dict:
    return dict(
        query_id=query_id,
        request_id=request_id,
        pid=1,
        thread_id=7,
        start_ns=start,
        duration_ns=2_000_000,
        statement=statement,
        parameters="[]",
        rowcount=1,
        executemany=False,
        call_site="opendesk/tickets.py:10",
        call_function="f",
        connection_id=1,
        error="",
    )


def write_bundle(path: Path, *, finish: list[str] | None = None) -> Path:
    writer = BundleWriter(path)
    writer.manifest.options = {"cpu_rate_hz": 50}
    writer.write_table("requests", pd.DataFrame([_request("r1", 100, 200)]))
    writer.write_table(
        "queries",
        pd.DataFrame(
            [
                _query("q1", "r1", "SELECT * FROM tickets WHERE id = 3"),
                _query("q2", "", "SELECT * FROM tickets WHERE id = 4"),
            ]
        ),
    )
    frames = ["run (threading.py:1)", "list_tickets (/srv/app/opendesk/api/tickets.py:42)"]
    writer.write_table(
        "stacks",
        pd.DataFrame([dict(stack_id=0, frames=frames, leaf=frames[-1], handler="")]),
    )
    writer.write_table(
        "samples",
        pd.DataFrame(
            [
                dict(
                    ts_ns=120,
                    end_ns=130,
                    n_samples=2,
                    pid=1,
                    thread_id=7,
                    thread_name="MainThread",
                    stack_id=0,
                    state="cpu",
                )
            ]
        ),
    )
    if finish is not None:
        writer.finish(finish)
    return path


def test_opens_with_derived_columns(tmp_path: Path) -> None:
    capture = open_capture(write_bundle(tmp_path / "b", finish=[]))
    assert capture.complete and capture.partial_reasons == []
    assert capture.tables == ["requests", "queries", "samples", "stacks", "frames"]
    assert capture.cpu_rate_hz == 50
    assert capture.requests["endpoint"].tolist() == ["GET /tickets"]
    queries = capture.queries
    assert list(queries.columns) == [
        *columns("queries"),
        "fingerprint",
        "fingerprint_id",
        "operation",
        "endpoint",
    ]
    assert queries["endpoint"].tolist() == ["GET /tickets", ""]
    assert queries["fingerprint"].nunique() == 1
    assert queries["operation"].tolist() == ["SELECT", "SELECT"]
    assert capture.stacks["handler"].tolist() == [HANDLER]
    samples = capture.samples
    assert samples[["endpoint", "request_id", "attributed_by"]].values.tolist() == [
        ["GET /tickets", "r1", "stack"]
    ]
    assert capture.allocations.empty and "endpoint" in capture.allocations
    for name in TABLES:
        for column in columns(name):
            if column.endswith("_ns"):
                assert capture.table(name)[column].dtype == "int64", (name, column)


def test_missing_tables_are_empty_with_schema_columns(tmp_path: Path) -> None:
    capture = open_capture(write_bundle(tmp_path / "b", finish=[]))
    for name in ("memory", "metrics", "workload", "connections", "db_statements"):
        frame = getattr(capture, name)
        assert frame.empty and list(frame.columns) == columns(name)
    assert capture.memory["ts_ns"].dtype == "int64"


def test_lazy_and_cached(tmp_path: Path) -> None:
    capture = open_capture(write_bundle(tmp_path / "b", finish=[]))
    assert capture._raw == {}
    first = capture.requests
    assert set(capture._raw) == {"requests"}
    assert capture.requests is first


def test_partial_bundle_opens_and_says_why(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b", finish=["py-spy exited early"])
    capture = Capture.open(path)
    assert not capture.complete
    assert capture.partial_reasons == ["py-spy exited early"]
    unfinished = open_capture(write_bundle(tmp_path / "c"))  # never finished
    assert unfinished.partial_reasons == ["capture in progress"]


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        open_capture(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"not a capture bundle \(no manifest.json\)"):
        open_capture(tmp_path / "empty")


@pytest.mark.parametrize(
    ("version", "message"),
    [(3, "newer than this deskprof reads .* upgrade deskprof"), (0, "older"), ("1", "unknown")],
)
def test_schema_versions(tmp_path: Path, version: object, message: str) -> None:
    path = write_bundle(tmp_path / "b", finish=[])
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = version
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        open_capture(path)


def test_corrupt_manifest(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b", finish=[])
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json is not readable JSON"):
        open_capture(path)


def test_truncated_table_names_the_file(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b", finish=[])
    data = (path / "queries.parquet").read_bytes()
    (path / "queries.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"queries\.parquet is truncated or corrupt"):
        open_capture(path)


def test_table_counted_but_missing(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b", finish=[])
    (path / "samples.parquet").unlink()
    with pytest.raises(BundleError, match=r"samples\.parquet is missing but manifest.json counts"):
        open_capture(path)


def test_unknown_table_name(tmp_path: Path) -> None:
    capture = open_capture(write_bundle(tmp_path / "b", finish=[]))
    with pytest.raises(BundleError, match="no table named 'nope'"):
        capture.table("nope")


def test_table_with_missing_column_is_filled_and_noted(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "b", finish=[])
    pd.DataFrame([_request("r1", 1, 2)]).drop(columns=["native_thread_id"]).to_parquet(
        path / "requests.parquet", index=False
    )
    capture = open_capture(path)
    assert capture.requests["native_thread_id"].tolist() == [0]
    assert not capture.complete
    assert "requests.parquet lacks columns native_thread_id" in capture.partial_reasons[0]
