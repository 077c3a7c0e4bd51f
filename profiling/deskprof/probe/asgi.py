"""ASGI middleware (FastAPI, Starlette): one ``requests`` record per HTTP request.

It wraps the app's whole middleware stack (outside Starlette's ``ServerErrorMiddleware``),
so the time measured is the time the server sees and an exception that escapes the app is
recorded with status 500. The route template comes from ``scope["route"]`` once the
router has matched (FastAPI and current Starlette put it there); otherwise the app's
routes are matched after the response. ``end_ns`` is taken when the last body chunk has
been handed to the server, so a streaming response ends with its last chunk, and
background tasks that run afterwards do not count.

Off switch: the first line reads ``recorder.active``; when False the request goes
straight to the app.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from deskprof.probe.context import REQUEST, RequestInfo, request_id_from
from deskprof.probe.recorder import Recorder
from deskprof.probe.slices import Sliced, relative_us, slice_child_tasks

SCOPE_KEY = "deskprof.probe"  # set on the scope by the outermost probe middleware
# One HTTP request, one record: nested ASGI layers see SCOPE_KEY; a WSGI app mounted inside
# (WSGIMiddleware, a2wsgi) sees this request in the context and only names its route.
_HEADER = b"x-request-id"
_FINAL_BODY = ("http.response.body",)
_FINAL_OTHER = ("http.response.pathsend", "http.response.zerocopysend")


def qualified_name(obj: Any) -> str:
    """``module:qualname`` of an endpoint function (or of its class)."""
    while hasattr(obj, "func") and not hasattr(obj, "__qualname__"):  # functools.partial
        obj = obj.func
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not isinstance(qualname, str):
        qualname = type(obj).__qualname__
        module = type(obj).__module__
    return f"{module}:{qualname}" if module else qualname


def _live_route(scope: dict[str, Any]) -> str:
    """The template of the route matched so far (for SQL comments during the request)."""
    return getattr(scope.get("route"), "path", None) or ""


def _match_routes(routes: Any, scope: dict[str, Any]) -> str | None:
    """Starlette versions that do not set ``scope["route"]``: match the routes again."""
    from starlette.routing import Match

    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            path = getattr(route, "path", None)
            inner = getattr(route, "routes", None)
            if inner:
                sub = {**scope, **child}
                rest = _match_routes(inner, sub)
                return (path or "") + (rest or "")
            return path
    return None


class ProbeASGIMiddleware:
    """Records requests; pass-through when the probe is off or an outer probe records."""

    _deskprof_probe = True

    def __init__(self, app: Any, recorder: Recorder, starlette_app: Any = None) -> None:
        self.app = app
        self.recorder = recorder
        self.starlette_app = starlette_app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.recorder.serving and scope["type"] == "http":
            self.recorder.mark_serving()
        if not self.recorder.active or scope["type"] != "http" or SCOPE_KEY in scope:
            if scope["type"] == "lifespan":
                send = self._flush_at_shutdown(send)
            await self.app(scope, receive, send)
            return
        recorder = self.recorder
        try:
            info, begin = self._begin(scope)
        except Exception as exc:
            recorder.error(exc, "ASGI request start")
            await self.app(scope, receive, send)
            return

        async def send_and_watch(message: dict[str, Any]) -> None:
            final = False
            try:
                kind = message["type"]
                if kind == "http.response.start":
                    info.status = int(message["status"])
                elif kind in _FINAL_BODY:
                    final = not message.get("more_body", False)
                elif kind in _FINAL_OTHER:
                    final = True
            except Exception as exc:
                recorder.error(exc, "ASGI send")
            await send(message)
            if final:
                info.end_ns = time.time_ns()

        try:
            slice_child_tasks(asyncio.get_running_loop(), REQUEST)
        except Exception as exc:  # a loop that refuses a task factory: outer slices only
            recorder.error(exc, "ASGI task slicing")
        token = REQUEST.set(info)
        try:
            await Sliced(self.app(scope, receive, send_and_watch), info.slices)
        except BaseException as exc:
            info.error = type(exc).__name__
            raise
        finally:
            try:
                REQUEST.reset(token)
            except Exception:
                REQUEST.set(None)
            try:
                self._finish(scope, info, begin)
            except Exception as exc:
                recorder.error(exc, "ASGI request end")

    def _flush_at_shutdown(self, send: Any) -> Any:
        """uvicorn ends a worker by re-raising the SIGTERM it handled, so ``atexit`` never
        runs there: write what is buffered when the app reports its shutdown done."""
        recorder = self.recorder

        async def send_and_flush(message: dict[str, Any]) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                recorder.flush(final=True)
            await send(message)

        return send_and_flush

    def _begin(self, scope: dict[str, Any]) -> tuple[RequestInfo, tuple[Any, ...]]:
        scope[SCOPE_KEY] = True
        incoming = None
        for name, value in scope.get("headers") or ():
            if name == _HEADER:
                incoming = value
                break
        info = RequestInfo(request_id_from(incoming), scope.get("method", ""), scope, _live_route)
        info.layer = "asgi"
        snapshot = None
        if self.starlette_app is not None:  # for route matching after the fact, if needed
            snapshot = {k: scope[k] for k in ("type", "path", "root_path", "method") if k in scope}
            snapshot["headers"] = scope.get("headers") or []
        begin = (
            time.time_ns(),
            threading.get_ident(),
            threading.get_native_id(),
            scope.get("root_path", ""),
            snapshot,
        )
        return info, begin

    def _finish(self, scope: dict[str, Any], info: RequestInfo, begin: tuple[Any, ...]) -> None:
        start_ns, thread_id, native_id, root_before, snapshot = begin
        end_ns = info.end_ns or time.time_ns()
        template = getattr(scope.get("route"), "path", None)
        if template is None and snapshot is not None:
            template = _match_routes(getattr(self.starlette_app, "routes", ()), snapshot)
        if template is not None:
            root_after = scope.get("root_path", "")
            if root_after.startswith(root_before) and root_after != root_before:
                template = root_after[len(root_before) :] + template  # inside a Mount
        else:
            template = scope.get("path", "")
        endpoint = scope.get("endpoint")
        handler = qualified_name(endpoint) if endpoint is not None else ""
        if info.route_template and info.handler:  # a WSGI app inside answered: its route wins
            template, handler = info.route_template, info.handler
        status = info.status or (500 if info.error else 0)
        recorder = self.recorder
        recorder.emit(
            {
                "kind": "requests",
                "request_id": info.request_id,
                "pid": recorder.pid,
                "thread_id": thread_id,
                "native_thread_id": native_id,
                "method": info.method,
                "route": template,
                "handler": handler,
                "status": status,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "duration_ns": end_ns - start_ns,
                "error": info.error,
                "task_slices_us": relative_us(info.slices, start_ns),
            }
        )


def wrap_starlette_app(app: Any, recorder: Recorder) -> bool:
    """Put the probe outside ``app``'s middleware stack, now or when it is built.

    Works before and after the app has started (Starlette refuses ``add_middleware`` once
    it has), and keeps the probe outermost whatever middleware the app adds later.
    """
    if getattr(app, "_deskprof_probe_installed", False):
        return False
    stack = getattr(app, "middleware_stack", None)
    if stack is not None:
        app.middleware_stack = ProbeASGIMiddleware(stack, recorder, app)
    else:
        build = app.build_middleware_stack

        def build_middleware_stack() -> Any:
            built = build()
            return ProbeASGIMiddleware(built, recorder, app)

        app.build_middleware_stack = build_middleware_stack
    app._deskprof_probe_installed = True
    return True


def patch_starlette_class(cls: type, recorder: Recorder) -> bool:
    """``deskprof run``: every app of class ``cls`` gets the probe when its stack is built.

    FastAPI overrides ``build_middleware_stack`` without calling Starlette's, so both
    classes are patched; a stack that is already a probe is not wrapped twice.
    """
    original = cls.__dict__.get("build_middleware_stack")
    if original is None or getattr(original, "_deskprof_original", None) is not None:
        return False

    def build_middleware_stack(self: Any) -> Any:
        stack = original(self)
        try:
            if isinstance(stack, ProbeASGIMiddleware) or getattr(
                self, "_deskprof_probe_installed", False
            ):
                return stack
            return ProbeASGIMiddleware(stack, recorder, self)
        except Exception as exc:
            recorder.error(exc, "wrapping the middleware stack")
            return stack

    build_middleware_stack.__name__ = original.__name__
    build_middleware_stack.__qualname__ = original.__qualname__
    build_middleware_stack.__doc__ = original.__doc__
    build_middleware_stack._deskprof_original = original  # type: ignore[attr-defined]
    cls.build_middleware_stack = build_middleware_stack  # type: ignore[attr-defined]
    return True
