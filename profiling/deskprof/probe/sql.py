"""SQLAlchemy hooks: one ``queries`` record per cursor execute, ``connections`` per pool event.

Listens on one engine (``install``) or on the ``Engine`` and ``Pool`` classes (``deskprof
run``, every engine of the process). Each hook first reads ``recorder.active`` and returns
at once when the probe is off; everything after that is wrapped so a bug here is counted,
never raised into the application's query.

The statement is recorded as SQLAlchemy sent it to the driver (placeholders, not values)
and without the optional sqlcommenter comment, so identical statements still group
together; the comment goes only to the database.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from deskprof.probe.callsite import call_site
from deskprof.probe.context import REQUEST, outside_request
from deskprof.probe.params import describe_parameters
from deskprof.probe.recorder import Recorder
from deskprof.probe.sqlcomment import PERCENT_STYLES, add_comment

_MARK = "_deskprof_probe"  # attribute on the ExecutionContext: (start_ns, t0, statement)


class SqlHooks:
    """The listeners, bound to one recorder and one parameter/comment policy."""

    def __init__(
        self, recorder: Recorder, *, keep_parameters: bool = False, sqlcommenter: bool = False
    ) -> None:
        self.recorder = recorder
        self.keep_parameters = keep_parameters
        self.sqlcommenter = sqlcommenter
        self._listening: list[tuple[Any, str, Any]] = []

    # --- registration -------------------------------------------------------------------

    def listen(self, engine_target: Any, pool_target: Any = None) -> None:
        """Listen on an Engine (pool events through it) or on the Engine and Pool classes."""
        from sqlalchemy import event

        pool_target = engine_target if pool_target is None else pool_target
        before = self.before_cursor_execute_retval if self.sqlcommenter else self.before
        wanted = [
            (engine_target, "before_cursor_execute", before, self.sqlcommenter),
            (engine_target, "after_cursor_execute", self.after_cursor_execute, False),
            (engine_target, "handle_error", self.handle_error, False),
            (pool_target, "connect", self.on_connect, False),
            (pool_target, "checkout", self.on_checkout, False),
            (pool_target, "checkin", self.on_checkin, False),
        ]
        for target, name, fn, retval in wanted:
            if retval:
                event.listen(target, name, fn, retval=True)
            else:
                event.listen(target, name, fn)
            self._listening.append((target, name, fn))

    def remove(self) -> None:
        """Stop listening (``ProbeHandle.close()``)."""
        from sqlalchemy import event

        while self._listening:
            target, name, fn = self._listening.pop()
            try:
                event.remove(target, name, fn)
            except Exception as exc:
                self.recorder.error(exc, f"removing the {name} listener")

    # --- statements ---------------------------------------------------------------------

    def before(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if not self.recorder.active:
            return
        try:
            _set_mark(conn, context, (time.time_ns(), time.perf_counter_ns(), statement))
        except Exception as exc:
            self.recorder.error(exc, "before_cursor_execute")

    def before_cursor_execute_retval(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        """The ``retval=True`` variant used with sqlcommenter: may append the comment."""
        if not self.recorder.active:
            return statement, parameters
        sent = statement
        try:
            info = REQUEST.get()
            if info is not None:
                sent = add_comment(
                    statement,
                    {"request_id": info.request_id, "route": info.route()},
                    escape_percent=_percent_is_placeholder(conn, context, parameters),
                )
            _set_mark(conn, context, (time.time_ns(), time.perf_counter_ns(), statement))
        except Exception as exc:
            self.recorder.error(exc, "before_cursor_execute")
            return statement, parameters
        return sent, parameters

    def after_cursor_execute(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if not self.recorder.active:
            return
        t1 = time.perf_counter_ns()
        try:
            mark = _take_mark(conn, context)
            if mark is None:
                return
            try:
                rowcount = int(cursor.rowcount)
            except Exception:
                rowcount = -1
            self._emit(mark, t1, parameters, executemany, rowcount, conn, cursor, "")
        except Exception as exc:
            self.recorder.error(exc, "after_cursor_execute")

    def handle_error(self, exception_context: Any) -> None:
        if not self.recorder.active:
            return None
        t1 = time.perf_counter_ns()
        try:
            context = exception_context.execution_context
            conn = exception_context.connection
            mark = _take_mark(conn, context)
            if mark is None:  # not a statement in flight (connect error, fetch error)
                return None
            self._emit(
                mark,
                t1,
                exception_context.parameters,
                bool(getattr(context, "executemany", False)),
                -1,
                conn,
                # SQLAlchemy 2.1 has no ExceptionContext.cursor; the context's cursor
                getattr(context, "cursor", None),
                type(exception_context.original_exception).__name__,
            )
        except Exception as exc:
            self.recorder.error(exc, "handle_error")
        return None

    def _emit(
        self,
        mark: tuple[int, int, str],
        t1: int,
        parameters: Any,
        executemany: bool,
        rowcount: int,
        conn: Any,
        cursor: Any,
        error: str,
    ) -> None:
        start_ns, t0, statement = mark
        info = REQUEST.get()
        site, function = call_site(sys._getframe(1))
        recorder = self.recorder
        recorder.emit(
            {
                "kind": "queries",
                "query_id": recorder.next_id(),
                "request_id": info.request_id if info is not None else "",
                "pid": recorder.pid,
                "thread_id": threading.get_ident(),
                "start_ns": start_ns,
                "duration_ns": t1 - t0,
                "statement": statement,
                "parameters": describe_parameters(
                    parameters, executemany=bool(executemany), keep=self.keep_parameters
                ),
                "rowcount": rowcount,
                "executemany": bool(executemany),
                "call_site": site,
                "call_function": function,
                "context": "" if info is not None else outside_request(),
                "connection_id": _dbapi_id(conn, cursor),
                "error": error,
            }
        )

    # --- pool ---------------------------------------------------------------------------

    def on_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        self._connection_event("connect", dbapi_connection)

    def on_checkout(
        self, dbapi_connection: Any, connection_record: Any, connection_proxy: Any
    ) -> None:
        self._connection_event("checkout", dbapi_connection)

    def on_checkin(self, dbapi_connection: Any, connection_record: Any) -> None:
        self._connection_event("checkin", dbapi_connection)

    def _connection_event(self, event: str, dbapi_connection: Any) -> None:
        recorder = self.recorder
        if not recorder.active:
            return
        try:
            info = REQUEST.get()
            recorder.emit(
                {
                    "kind": "connections",
                    "pid": recorder.pid,
                    "ts_ns": time.time_ns(),
                    "event": event,
                    "request_id": info.request_id if info is not None else "",
                    "connection_id": id(dbapi_connection) if dbapi_connection is not None else 0,
                }
            )
        except Exception as exc:
            recorder.error(exc, f"pool {event}")


def _set_mark(conn: Any, context: Any, mark: tuple[int, int, str]) -> None:
    if context is not None:
        setattr(context, _MARK, mark)
    else:
        conn.info[_MARK] = mark


def _take_mark(conn: Any, context: Any) -> tuple[int, int, str] | None:
    if context is not None:
        mark = getattr(context, _MARK, None)
        if mark is not None:
            setattr(context, _MARK, None)
        return mark
    if conn is None:
        return None
    return conn.info.pop(_MARK, None)


def _percent_is_placeholder(conn: Any, context: Any, parameters: Any) -> bool:
    """psycopg and other format-style drivers parse ``%`` in the statement, unless
    SQLAlchemy calls them without parameters."""
    dialect = getattr(context, "dialect", None) or getattr(conn, "dialect", None)
    if getattr(dialect, "paramstyle", None) not in PERCENT_STYLES:
        return False
    return bool(parameters) or not getattr(context, "no_parameters", False)


def _dbapi_id(conn: Any, cursor: Any) -> int:
    """id() of the DBAPI connection, without touching ``Connection.connection`` (which
    may try to reconnect an invalidated connection)."""
    fairy = getattr(conn, "_dbapi_connection", None)
    raw = getattr(fairy, "dbapi_connection", None)
    if raw is None:
        raw = getattr(cursor, "connection", None)
    return id(raw) if raw is not None else 0
