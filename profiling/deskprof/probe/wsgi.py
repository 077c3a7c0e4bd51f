"""WSGI middleware (Flask and other WSGI apps): one ``requests`` record per HTTP request.

Flask pops its request context (and forgets the matched rule) before ``wsgi_app``
returns, so the route template (``request.url_rule.rule``) and the view function are read
inside ``start_response``, which Flask calls while the context is still active. Errors
Flask turns into a 500 page are seen through its ``got_request_exception`` signal.

The request stays current (for SQL hooks) until the server closes the response iterable,
so queries run while a streamed body is generated still belong to the request;
``end_ns`` is when the last body chunk was taken by the server.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import Token
from typing import Any

from deskprof.probe.asgi import qualified_name
from deskprof.probe.context import REQUEST, RequestInfo, request_id_from
from deskprof.probe.recorder import Recorder

ENVIRON_KEY = "deskprof.probe"  # set by the outermost probe middleware


def _flask_route(_environ: Any) -> str:
    """The matched rule of the Flask request in this context (for SQL comments)."""
    import flask

    if not flask.has_request_context():
        return ""
    rule = flask.request.url_rule
    return rule.rule if rule is not None else ""


def _capture_flask(info: RequestInfo, flask_app: Any) -> None:
    import flask

    if not flask.has_request_context():
        return
    rule = flask.request.url_rule
    if rule is None:
        return
    info.route_template = rule.rule
    view = flask_app.view_functions.get(rule.endpoint)
    if view is not None:
        info.handler = qualified_name(view)


def _on_flask_exception(sender: Any, exception: BaseException | None = None, **_: Any) -> None:
    try:
        info = REQUEST.get()
        if info is not None and exception is not None:
            info.error = type(exception).__name__
    except Exception:
        pass


def watch_flask_errors(flask_app: Any) -> None:
    """Connect (once per app) to the signal Flask sends for errors it turns into a 500."""
    if getattr(flask_app, "_deskprof_probe_signal", False):
        return
    from flask import got_request_exception

    got_request_exception.connect(_on_flask_exception, flask_app, weak=False)
    flask_app._deskprof_probe_signal = True


def handle(
    recorder: Recorder,
    wsgi_app: Any,
    flask_app: Any,
    environ: dict[str, Any],
    start_response: Any,
) -> Iterable[bytes]:
    """Run one request through ``wsgi_app``, recording it."""
    if not recorder.serving:
        recorder.mark_serving()
    outer = REQUEST.get()
    if outer is not None and outer.layer == "asgi" and ENVIRON_KEY not in environ:
        return _inside_asgi(outer, recorder, wsgi_app, flask_app, environ, start_response)
    if not recorder.active or ENVIRON_KEY in environ:
        return wsgi_app(environ, start_response)
    try:
        environ[ENVIRON_KEY] = True
        info = RequestInfo(
            request_id_from(environ.get("HTTP_X_REQUEST_ID")),
            environ.get("REQUEST_METHOD", ""),
            environ,
            _flask_route if flask_app is not None else None,
        )
        begin = (time.time_ns(), threading.get_ident(), threading.get_native_id())
    except Exception as exc:
        recorder.error(exc, "WSGI request start")
        return wsgi_app(environ, start_response)

    def start_and_watch(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        try:
            info.status = int(status.split(None, 1)[0])
            if flask_app is not None:
                _capture_flask(info, flask_app)
        except Exception as exc:
            recorder.error(exc, "WSGI start_response")
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    token = REQUEST.set(info)
    try:
        result = wsgi_app(environ, start_and_watch)
    except BaseException as exc:
        info.error = type(exc).__name__
        body = _Body((), recorder, info, begin, environ, token)
        body.close()
        raise
    return _Body(result, recorder, info, begin, environ, token)


def _inside_asgi(
    outer: RequestInfo,
    recorder: Recorder,
    wsgi_app: Any,
    flask_app: Any,
    environ: dict[str, Any],
    start_response: Any,
) -> Iterable[bytes]:
    """A WSGI app mounted in an ASGI app the probe already records (FastAPI's
    ``WSGIMiddleware``, a2wsgi): the same HTTP request, so no second record. The ASGI
    record keeps its timing (the server's view, the outer layers included) and takes
    this layer's route template, under its mount point, and view function."""
    environ[ENVIRON_KEY] = True
    if flask_app is None:
        return wsgi_app(environ, start_response)

    def start_and_name(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        try:
            inner = RequestInfo(outer.request_id, outer.method)
            _capture_flask(inner, flask_app)
            if inner.route_template:
                outer.route_template = environ.get("SCRIPT_NAME", "") + inner.route_template
                outer.handler = inner.handler
        except Exception as exc:
            recorder.error(exc, "WSGI start_response inside ASGI")
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    return wsgi_app(environ, start_and_name)


class _Body:
    """The response iterable, passed through; records the request when it is done."""

    def __init__(
        self,
        result: Iterable[bytes],
        recorder: Recorder,
        info: RequestInfo,
        begin: tuple[int, int, int],
        environ: dict[str, Any],
        token: Token[RequestInfo | None],
    ) -> None:
        self._result = result
        self._iter: Iterator[bytes] | None = None
        self._recorder = recorder
        self._info = info
        self._begin = begin
        self._environ = environ
        self._token: Token[RequestInfo | None] | None = token
        self._emitted = False

    def __iter__(self) -> _Body:
        self._iter = iter(self._result)
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            self._iter = iter(self._result)
        try:
            return next(self._iter)
        except StopIteration:
            self._ended()
            self._emit()  # the body is complete; close() still resets the context
            raise
        except BaseException as exc:
            self._info.error = self._info.error or type(exc).__name__
            self._ended()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._ended()
            self._emit()
            token, self._token = self._token, None
            if token is not None:
                try:
                    REQUEST.reset(token)
                except Exception:
                    REQUEST.set(None)

    def _ended(self) -> None:
        if not self._info.end_ns:
            self._info.end_ns = time.time_ns()

    def _emit(self) -> None:
        if self._emitted:
            return
        self._emitted = True
        try:
            info = self._info
            start_ns, thread_id, native_id = self._begin
            environ = self._environ
            route = info.route_template or (
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            )
            recorder = self._recorder
            recorder.emit(
                {
                    "kind": "requests",
                    "request_id": info.request_id,
                    "pid": recorder.pid,
                    "thread_id": thread_id,
                    "native_thread_id": native_id,
                    "method": info.method,
                    "route": route,
                    "handler": info.handler,
                    "status": info.status or (500 if info.error else 0),
                    "start_ns": start_ns,
                    "end_ns": info.end_ns,
                    "duration_ns": info.end_ns - start_ns,
                    "error": info.error,
                }
            )
        except Exception as exc:
            self._recorder.error(exc, "WSGI request end")


class ProbeWSGIMiddleware:
    """``app.wsgi_app = ProbeWSGIMiddleware(app.wsgi_app, recorder, app)``."""

    _deskprof_probe = True

    def __init__(self, wsgi_app: Any, recorder: Recorder, flask_app: Any = None) -> None:
        self.wsgi_app = wsgi_app
        self.recorder = recorder
        self.flask_app = flask_app
        if flask_app is not None:
            try:
                watch_flask_errors(flask_app)
            except Exception as exc:
                recorder.error(exc, "connecting to got_request_exception")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not self.recorder.serving:
            self.recorder.mark_serving()
        if not self.recorder.active:
            return self.wsgi_app(environ, start_response)
        return handle(self.recorder, self.wsgi_app, self.flask_app, environ, start_response)


def wrap_flask_app(app: Any, recorder: Recorder) -> bool:
    """The Flask-documented way to add WSGI middleware, keeping ``app`` itself."""
    if getattr(app, "_deskprof_probe_installed", False):
        return False
    app.wsgi_app = ProbeWSGIMiddleware(app.wsgi_app, recorder, app)
    app._deskprof_probe_installed = True
    return True


def patch_flask_class(cls: type, recorder: Recorder) -> bool:
    """``deskprof run``: ``Flask.wsgi_app`` of every app records through ``recorder``."""
    original = cls.__dict__.get("wsgi_app")
    if original is None or getattr(original, "_deskprof_original", None) is not None:
        return False

    @functools.wraps(original)
    def wsgi_app(self: Any, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not recorder.serving:
            recorder.mark_serving()
        if not recorder.active or getattr(self, "_deskprof_probe_installed", False):
            return original(self, environ, start_response)
        try:
            watch_flask_errors(self)
        except Exception as exc:
            recorder.error(exc, "connecting to got_request_exception")
        return handle(recorder, functools.partial(original, self), self, environ, start_response)

    wsgi_app._deskprof_original = original  # type: ignore[attr-defined]
    cls.wsgi_app = wsgi_app  # type: ignore[attr-defined]
    return True
