"""The capture bundle schema, written once and imported wherever it is needed.

A bundle is a directory::

    manifest.json          what was captured, how, on which clock, and whether it is whole
    <table>.parquet        one file per table below (absent when its source did not run)
    raw/                   the tools' own files (py-spy chrometrace, memray .bin, probe .jsonl,
                           load generator log), kept so nothing is lost in conversion

Every timestamp column ending in ``_ns`` is wall-clock epoch nanoseconds (one clock for
the whole bundle). Tools that write relative times are anchored at capture start and the
anchor is written to the manifest (``clock``).

This module is standard library only: the in-process probe imports it too.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 2  # 2: stacks as lists of ids into a frames table (1: lists of labels)
OLDEST_READABLE_VERSION = 1  # version 1 bundles are read through a migration on open
MANIFEST = "manifest.json"
RAW_DIR = "raw"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # int64 | float64 | string | bool | list<int32>
    doc: str


def _cols(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


TABLES: dict[str, tuple[Column, ...]] = {
    # --- the in-process probe (deskprof.probe) --------------------------------------
    "requests": _cols(
        ("request_id", "string", "unique per request; SQL rows point here"),
        ("pid", "int64", "worker process"),
        (
            "thread_id",
            "int64",
            "threading.get_ident() of the thread that received the request (ASGI: the event "
            "loop; a sync FastAPI handler runs in a threadpool thread, see queries.thread_id)",
        ),
        ("native_thread_id", "int64", "OS thread id of that thread (threading.get_native_id())"),
        ("method", "string", "HTTP method"),
        ("route", "string", "route template, e.g. /tickets/{ticket_id}; raw path if unmatched"),
        ("handler", "string", "module:qualname of the endpoint function"),
        ("status", "int64", "HTTP status (500 when the app raised)"),
        ("start_ns", "int64", "request received"),
        ("end_ns", "int64", "response finished (last body byte sent)"),
        ("duration_ns", "int64", "end_ns - start_ns"),
        ("error", "string", "exception type when the app raised, else empty"),
        (
            "task_slices_us",
            "list<int32>",
            "ASGI: when the request's task ran on thread_id, as start, end, start, end... "
            "microseconds after start_ns (between its awaits); empty for WSGI",
        ),
    ),
    "queries": _cols(
        ("query_id", "string", "unique per statement execution"),
        ("request_id", "string", "request whose context was active; empty outside requests"),
        ("pid", "int64", "process"),
        ("thread_id", "int64", "threading.get_ident()"),
        ("start_ns", "int64", "cursor execute began"),
        ("duration_ns", "int64", "until the DBAPI call returned"),
        ("statement", "string", "as sent, with placeholders (never values)"),
        ("parameters", "string", "redacted by default: parameter types only, as JSON"),
        ("rowcount", "int64", "cursor.rowcount (-1 when the driver does not know)"),
        ("executemany", "bool", "executemany call"),
        ("call_site", "string", "file:line of the first frame outside SQLAlchemy/deskprof"),
        ("call_function", "string", "function name of that frame"),
        (
            "context",
            "string",
            "outside requests, what ran the statement: 'task <coroutine>' (asyncio) or "
            "'thread <name>'; empty inside a request",
        ),
        ("connection_id", "int64", "id() of the DBAPI connection"),
        ("error", "string", "exception type when the statement failed, else empty"),
    ),
    "connections": _cols(
        ("pid", "int64", "process"),
        ("ts_ns", "int64", "when it happened"),
        ("event", "string", "connect (a new DBAPI connection) | checkout | checkin"),
        ("request_id", "string", "request whose context was active; empty outside requests"),
        ("connection_id", "int64", "id() of the DBAPI connection"),
    ),
    # --- py-spy ------------------------------------------------------------------------
    "samples": _cols(
        ("ts_ns", "int64", "first sample of a run of identical stacks on one thread"),
        ("end_ns", "int64", "end of that run"),
        ("n_samples", "int64", "samples in the run (its weight)"),
        ("pid", "int64", "process sampled"),
        ("thread_id", "int64", "pthread id as py-spy reports it (= threading.get_ident())"),
        ("native_thread_id", "int64", "the kernel's thread id (0: not known)"),
        ("thread_name", "string", "thread name"),
        ("stack_id", "int64", "key into the stacks table"),
        ("state", "string", "cpu | wait (see state_from and deskprof.capturing.cpu)"),
        (
            "active_share",
            "float64",
            "share of the run's wall time its thread was on a CPU or runnable (kernel "
            "counters; 0 where state_from is leaf)",
        ),
        (
            "cpu_ns",
            "int64",
            "CPU time the kernel counted for the thread, shared among its on-CPU runs "
            "(0 where state_from is leaf: there n_samples / rate is the estimate)",
        ),
        (
            "state_from",
            "string",
            "os: the kernel's per-thread CPU time decided state; leaf: the innermost "
            "Python frame's name did (no kernel reading; older bundles)",
        ),
    ),
    "stacks": _cols(
        ("stack_id", "int64", "key"),
        (
            "frame_ids",
            "list<int32>",
            "root first; keys into the frames table (open_capture gives them as 'frames', "
            "a list of labels)",
        ),
        ("leaf", "string", "the innermost frame"),
        ("handler", "string", "module:qualname-like frame matched to a route handler, if any"),
    ),
    "frames": _cols(
        ("frame_id", "int64", "key"),
        ("label", "string", "'function (file:line)', each distinct frame once"),
    ),
    # --- memray ------------------------------------------------------------------------
    "memory": _cols(
        ("ts_ns", "int64", "snapshot time (memray writes epoch ms)"),
        ("pid", "int64", "process"),
        ("rss_bytes", "int64", "resident set size"),
        ("heap_bytes", "int64", "bytes allocated and not yet freed (tracked heap)"),
    ),
    "allocations": _cols(
        ("pid", "int64", "process"),
        ("kind", "string", "high_water_mark | leaked | temporal"),
        ("ts_ns", "int64", "for temporal records: start of the interval, else capture end"),
        ("end_ns", "int64", "for temporal records: end of the interval"),
        ("stack_id", "int64", "key into the stacks table (Python frames of the allocation)"),
        ("allocator", "string", "malloc, calloc, realloc, mmap, pymalloc..."),
        ("size_bytes", "int64", "bytes"),
        ("n_allocations", "int64", "allocations aggregated in this row"),
    ),
    # --- psutil, database and cache server ---------------------------------------------
    "metrics": _cols(
        ("ts_ns", "int64", "sample time"),
        ("pid", "int64", "process"),
        ("cpu_percent", "float64", "CPU since the previous sample, 100 = one core"),
        ("rss_bytes", "int64", "resident set size"),
        ("threads", "int64", "thread count"),
        ("fds", "int64", "open file descriptors"),
        ("ctx_voluntary", "int64", "voluntary context switches since the previous sample"),
        ("ctx_involuntary", "int64", "involuntary context switches since the previous sample"),
    ),
    "db_statements": _cols(
        ("queryid", "string", "pg_stat_statements queryid"),
        ("query", "string", "normalised text as PostgreSQL stores it"),
        ("calls", "int64", "calls during the capture (delta)"),
        ("total_exec_ms", "float64", "execution time during the capture (delta)"),
        ("rows", "int64", "rows during the capture (delta)"),
        ("shared_blks_hit", "int64", "delta"),
        ("shared_blks_read", "int64", "delta"),
    ),
    "service_stats": _cols(
        ("ts_ns", "int64", "sample time"),
        ("service", "string", "postgresql | redis"),
        ("name", "string", "statistic, e.g. keyspace_hits, active_connections"),
        ("value", "float64", "value (counters as deltas since capture start)"),
    ),
    # --- the load generator ------------------------------------------------------------
    "workload": _cols(
        ("name", "string", "request name (route-like, e.g. GET /tickets/{id})"),
        ("method", "string", "HTTP method"),
        ("intended_ns", "int64", "when it should have been sent (open loop); = start_ns closed"),
        ("start_ns", "int64", "when it was sent"),
        ("end_ns", "int64", "when the response was complete"),
        ("latency_ns", "int64", "end_ns - intended_ns (no coordinated omission)"),
        ("status", "int64", "HTTP status, 0 when no response"),
        ("error", "string", "failure text, else empty"),
        ("user", "string", "virtual user class"),
        ("request_id", "string", "X-Request-ID the generator sent (joins the requests table)"),
    ),
}

# The probe's JSON-lines records carry a "kind" naming the table they belong to.
PROBE_KINDS = ("requests", "queries", "connections")

STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"


def columns(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


def describe(table: str | None = None) -> str:
    """The schema as Markdown, for `deskprof schema` and the docs."""
    out = []
    for name, cols in TABLES.items():
        if table and name != table:
            continue
        out.append(f"### {name}\n\n| column | type | meaning |\n| --- | --- | --- |")
        out.extend(f"| `{c.name}` | {c.dtype} | {c.doc} |" for c in cols)
        out.append("")
    return "\n".join(out)
