"""Which request is running here: one ``ContextVar`` shared by the middlewares and SQL hooks.

A ``ContextVar`` (not a thread-local) because FastAPI runs async handlers on the event loop
and sync handlers and dependencies in Starlette's threadpool, which copies the context into
the worker thread: both see the request that started them. WSGI servers run one request
per thread, where a ``ContextVar`` behaves like a thread-local.
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
# Short and plain, so an id taken from a client can go into a file, a SQL comment or a
# log line without escaping, and cannot be used to inject anything.
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestInfo:
    """What the probe knows about the request in flight; filled in as the request runs.

    ``route_of(source)`` resolves the route template lazily (routing happens inside the
    app, after the middleware has started the request); SQL hooks call ``route()`` only
    when they need it (the sqlcommenter comment).
    """

    __slots__ = (
        "end_ns",
        "error",
        "handler",
        "layer",
        "method",
        "request_id",
        "route_of",
        "route_template",
        "slices",
        "source",
        "status",
    )

    def __init__(
        self,
        request_id: str,
        method: str,
        source: Any = None,
        route_of: Callable[[Any], str] | None = None,
    ) -> None:
        self.request_id = request_id
        self.method = method
        self.source = source
        self.route_of = route_of
        self.route_template = ""
        self.handler = ""
        self.layer = ""  # "asgi" when an ASGI middleware records it (a WSGI app inside joins)
        self.status = 0
        self.error = ""
        self.end_ns = 0
        self.slices: list[int] = []  # when its task ran (ASGI), see deskprof.probe.slices

    def route(self) -> str:
        """The route template if routing has happened, else ``""``; never raises."""
        if self.route_template:
            return self.route_template
        if self.route_of is None:
            return ""
        try:
            return self.route_of(self.source) or ""
        except Exception:
            return ""


REQUEST: ContextVar[RequestInfo | None] = ContextVar("deskprof_probe_request", default=None)


def current_request_id() -> str:
    """The id of the request whose context is active, ``""`` outside requests."""
    info = REQUEST.get()
    return info.request_id if info is not None else ""


def valid_request_id(value: str | bytes | None) -> str | None:
    """``value`` when it is a well-formed request id (<= 64 of ``[A-Za-z0-9._-]``)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = value.strip()
    return value if _VALID_ID.fullmatch(value) else None


def request_id_from(value: str | bytes | None) -> str:
    """The incoming ``X-Request-ID`` when well formed (so the load generator's records
    join the probe's), else a fresh uuid4 hex."""
    return valid_request_id(value) or uuid.uuid4().hex


_DEFAULT_TASK_NAME = re.compile(r"Task-\d+")


def outside_request() -> str:
    """What runs a statement no request started: ``task <coroutine>`` for an asyncio task
    (a background loop, a scheduler job, a lifespan hook) or ``thread <name>`` (a worker
    thread, or ``thread MainThread`` at start-up). Work outside requests is grouped by it
    in findings and reports, so a background loop reads as one place, not as noise."""
    asyncio = sys.modules.get("asyncio")  # no asyncio imported: no task can be running
    task = None
    if asyncio is not None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running event loop in this thread
            task = None
    if task is not None:
        given = task.get_name()
        if given and not _DEFAULT_TASK_NAME.fullmatch(given):
            # a name the app chose says what the job is: a generic runner's coroutine
            # (``Worker._execute``) runs every job alike
            return f"task {given}"
        coroutine = task.get_coro()
        name = getattr(coroutine, "__qualname__", None) or given
        return f"task {name}"
    return f"thread {threading.current_thread().name}"
