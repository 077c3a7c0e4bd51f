"""PostgreSQL server logs as a ``queries`` table, for an OpenDesk that cannot run the probe.

With ``log_min_duration_statement = 0`` the server logs every statement with its duration:
``duration: 0.145 ms  statement: ...`` (simple protocol) or ``... execute <unnamed>: ...``
(extended protocol; its ``parse``/``bind`` steps are logged too and, as pgBadger does,
not counted as queries). We read the ``csvlog`` and ``jsonlog`` destinations (PostgreSQL
15+ for jsonlog), with pyarrow's parsers so a large log reads in seconds.

Timing: log lines carry the time the statement *finished*, to the millisecond; ``start_ns``
is that minus the duration, so it is good to about a millisecond. Bound parameter values
(the ``parameters: $1 = '...'`` detail) are never kept: ``parameters`` lists only the
placeholders, as the probe's redaction does. Failed statements (an ``ERROR`` with the
statement attached) are kept with duration 0 and the SQLSTATE as ``error``.

Joining to requests (:func:`join_requests`): through the sqlcommenter comment
(``/*request_id='...',route='...'*/``, see ``deskprof.probe.sqlcomment``) when the app
sent one (``attributed_by="comment"``); otherwise by time, to the one request running
while the statement ran (``attributed_by="time"``, left blank when several were).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from deskprof.analysis.attribution import overlapping_request
from deskprof.analysis.fingerprint import fingerprint_series
from deskprof.bundle.reader import conform
from deskprof.errors import DeskprofError, first_line

# csvlog columns by position (stable from PostgreSQL 9.0 on; later versions append more)
_CSV_FIELDS = {
    0: "timestamp",
    3: "pid",
    5: "session_id",
    6: "line_num",
    11: "error_severity",
    12: "state_code",
    13: "message",
    14: "detail",
    19: "statement",
}
_DURATION = re.compile(
    r"^duration: (?P<ms>\d+(?:\.\d+)?) ms  (?P<step>statement|execute|parse|bind)"
    r"(?P<name>[^:]*): (?P<statement>.*)$",
    re.DOTALL,
)
_COMMENT = re.compile(r"/\*(?P<body>(?:[^*]|\*(?!/))*)\*/\s*;?\s*$")
_PAIR = re.compile(r"([A-Za-z0-9_%.-]+)='((?:[^'\\]|\\.)*)'")
_PLACEHOLDER = re.compile(r"\$\d+")
_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")


class LogError(DeskprofError):
    """A server log we cannot read."""


def read_pglog(
    path: str | os.PathLike[str],
    *,
    requests: pd.DataFrame | None = None,
    log_format: str | None = None,
) -> pd.DataFrame:
    """The ``queries`` table (schema columns + ``fingerprint``, ``fingerprint_id``,
    ``operation``, ``endpoint``, ``attributed_by``) from one csvlog or jsonlog file.

    ``log_format`` is ``"csvlog"`` or ``"jsonlog"``; by default the file's suffix or its
    first character decides. With ``requests`` (with ``endpoint``, e.g.
    ``Capture.requests``) statements are joined to them (:func:`join_requests`)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise LogError(f"{file}: no such PostgreSQL log file")
    fmt = log_format or _sniff(file)
    records = read_csvlog(file) if fmt == "csvlog" else read_jsonlog(file)
    queries = log_queries(records)
    queries = pd.concat([queries, fingerprint_series(queries["statement"])], axis=1)
    return join_requests(queries, requests)


def _sniff(file: Path) -> str:
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return "csvlog"
    if suffix in (".json", ".jsonl"):
        return "jsonlog"
    with file.open("rb") as handle:
        head = handle.read(64).lstrip()
    if head.startswith(b"{"):
        return "jsonlog"
    if re.match(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", head):
        return "csvlog"
    raise LogError(
        f"{file} is neither a csvlog nor a jsonlog file; set log_destination = 'csvlog' or "
        "'jsonlog' on the server (plain stderr logs are not read)"
    )


def read_csvlog(file: Path) -> pd.DataFrame:
    """The log records we need from a csvlog file (one row per log line, strings)."""
    try:
        head = len(
            pacsv.open_csv(
                file,
                read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
            ).schema
        )
        table = pacsv.read_csv(
            file,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(head)},
                include_columns=[f"f{i}" for i in _CSV_FIELDS if i < head],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise LogError(f"{file} is not a readable csvlog file ({first_line(exc)})") from None
    if head < 20:
        raise LogError(f"{file} has {head} columns, not a PostgreSQL csvlog file")
    frame = table.to_pandas()
    return frame.rename(columns={f"f{i}": name for i, name in _CSV_FIELDS.items()})


def read_jsonlog(file: Path) -> pd.DataFrame:
    """The log records we need from a jsonlog file (one row per log line)."""
    try:
        table = pajson.read_json(file, read_options=pajson.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, OSError) as exc:
        raise LogError(f"{file} is not a readable jsonlog file ({first_line(exc)})") from None
    wanted = set(_CSV_FIELDS.values())
    frame = table.select([c for c in table.column_names if c in wanted]).to_pandas()
    for name in wanted - set(frame.columns):
        frame[name] = ""
    if "message" not in table.column_names:
        raise LogError(f"{file} has no 'message' field: not a PostgreSQL jsonlog file")
    return frame


def parse_log_time(stamps: pd.Series) -> np.ndarray:
    """``"2026-11-24 22:39:08.049 UTC"`` → epoch ns (any zone PostgreSQL writes: an
    abbreviation zoneinfo knows, or a numeric offset)."""
    text = stamps.astype(str)
    parts = text.str.rsplit(" ", n=1, expand=True)
    if parts.shape[1] < 2:
        raise LogError("log timestamps have no time zone; is this a PostgreSQL log?")
    local = pd.to_datetime(parts[0], format="%Y-%m-%d %H:%M:%S.%f", errors="coerce")
    out = np.zeros(len(text), dtype=np.int64)
    for zone, rows in parts.groupby(1, sort=False).groups.items():
        stamp = local.loc[rows]
        out[text.index.get_indexer(rows)] = _to_utc_ns(stamp, str(zone))
    return out


def _to_utc_ns(stamp: pd.Series, zone: str) -> np.ndarray:
    ns = stamp.dt.as_unit("ns").astype(np.int64).to_numpy()
    if zone in ("UTC", "GMT", "Z"):
        return ns
    offset = _OFFSET.match(zone)
    if offset:
        sign = 1 if offset.group(1) == "+" else -1
        minutes = int(offset.group(2)) * 60 + int(offset.group(3) or 0)
        return ns - sign * minutes * 60 * 1_000_000_000
    try:
        localized = stamp.dt.tz_localize(ZoneInfo(zone), ambiguous="NaT", nonexistent="NaT")
    except (ZoneInfoNotFoundError, ValueError):
        raise LogError(
            f"log time zone {zone!r} is not one we can convert; set log_timezone = 'UTC' on "
            "the server"
        ) from None
    utc = localized.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")
    return utc.astype(np.int64).to_numpy()


def log_queries(records: pd.DataFrame) -> pd.DataFrame:
    """Statement executions (``statement``/``execute`` duration lines, and failed
    statements) as rows of the ``queries`` schema, in log order."""
    message = records["message"].fillna("").astype(str)
    is_duration = message.str.startswith("duration: ")
    parsed = message[is_duration].str.extract(_DURATION)
    executed = parsed["step"].isin(["statement", "execute"])
    done = parsed[executed]
    rows = records.loc[done.index]
    severity = records["error_severity"].fillna("").astype(str)
    failed = records[
        severity.isin(["ERROR", "FATAL"]) & (records["statement"].fillna("").astype(str) != "")
    ]
    statements = pd.concat([done["statement"], failed["statement"].astype(str)])
    duration_ns = pd.concat(
        [
            (done["ms"].astype(float) * 1e6).round().astype(np.int64),
            pd.Series(0, index=failed.index, dtype=np.int64),
        ]
    )
    both = pd.concat([rows, failed])
    end_ns = parse_log_time(both["timestamp"])
    session = both["session_id"].fillna("").astype(str)
    line = both["line_num"].fillna("").astype(str)
    frame = pd.DataFrame(
        {
            "query_id": (session + ":" + line).to_numpy(),
            "request_id": "",
            "pid": pd.to_numeric(both["pid"], errors="coerce").fillna(0).to_numpy(np.int64),
            "thread_id": 0,
            "start_ns": end_ns - duration_ns.to_numpy(),
            "duration_ns": duration_ns.to_numpy(),
            "statement": statements.to_numpy(),
            "parameters": _placeholders(statements).to_numpy(),
            "rowcount": -1,
            "executemany": False,
            "call_site": "",
            "call_function": "",
            "connection_id": pd.to_numeric(both["pid"], errors="coerce").fillna(0).to_numpy(),
            "error": np.concatenate(
                [np.full(len(rows), "", dtype=object), failed["state_code"].astype(str).to_numpy()]
            ),
        }
    )
    frame["_order"] = pd.to_numeric(both.index.to_series(), errors="coerce").to_numpy()
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
    frame, _ = conform("queries", frame.reset_index(drop=True))
    return frame


def _placeholders(statements: pd.Series) -> pd.Series:
    """``'["$1", "$2"]'`` per statement: which parameters it took, never their values."""
    codes, uniques = pd.factorize(statements)
    rendered = np.array(
        ["[" + ", ".join(f'"{p}"' for p in _PLACEHOLDER.findall(s)) + "]" for s in uniques],
        dtype=object,
    )
    return pd.Series(rendered[codes] if len(uniques) else [], index=statements.index, dtype=str)


def comment_fields(statement: str) -> dict[str, str]:
    """The sqlcommenter key/values at the end of ``statement`` (``{}`` when none)."""
    match = _COMMENT.search(statement)
    if not match:
        return {}
    return {
        unquote(key): unquote(value.replace("\\'", "'"))
        for key, value in _PAIR.findall(match.group("body"))
    }


def join_requests(queries: pd.DataFrame, requests: pd.DataFrame | None) -> pd.DataFrame:
    """``queries`` with ``request_id``, ``endpoint`` and ``attributed_by`` filled: by the
    sqlcommenter ``request_id`` when the statement carries one (``"comment"``), else by
    the single request overlapping it in time (``"time"``), else ``""``."""
    out = queries.copy()
    codes, uniques = pd.factorize(out["statement"].astype(str))
    by_comment = np.array([comment_fields(s).get("request_id", "") for s in uniques], dtype=object)
    comment_id = by_comment[codes] if len(uniques) else np.zeros(0, dtype=object)
    has_comment = comment_id != ""
    request_id = np.where(has_comment, comment_id, "")
    attributed = np.where(has_comment, "comment", "")
    endpoint = np.full(len(out), "", dtype=object)
    if requests is not None and len(requests) and len(out):
        requests = requests.reset_index(drop=True)
        start = out["start_ns"].to_numpy(dtype=np.int64)
        zeros = np.zeros(len(out), dtype=np.int64)
        owner, _ = overlapping_request(
            zeros, zeros, start, start + out["duration_ns"].to_numpy(dtype=np.int64),
            requests.assign(pid=0, thread_id=0),
        )  # fmt: skip
        ids = np.append(requests["request_id"].to_numpy(dtype=object), "")
        by_time = ~has_comment & (owner >= 0)
        request_id = np.where(by_time, ids[owner], request_id)
        attributed = np.where(by_time, "time", attributed)
        endpoints = requests.drop_duplicates("request_id").set_index("request_id")["endpoint"]
        position = endpoints.index.get_indexer(request_id)
        endpoint = np.append(endpoints.to_numpy(dtype=object), "")[position]
    out["request_id"] = pd.Series(request_id, index=out.index, dtype=str)
    out["endpoint"] = pd.Series(endpoint, index=out.index, dtype=str)
    out["attributed_by"] = pd.Series(attributed, index=out.index, dtype=str)
    return out
