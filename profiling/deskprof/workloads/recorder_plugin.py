"""Loaded beside a user's own locustfile: records every request Locust reports.

Custom locustfiles do not use our recording client, so their requests are taken from
Locust's ``request`` event: the start is the event's ``start_time`` (the end minus
Locust's response time on Locust versions without it), the end is when the event fires.
Closed loop only, so the intended start is the actual start. Every request carries an
``X-Request-ID`` (the locustfile's own when it sends one, else one added here), and it is
recorded, so the load generator's requests join the probe's whatever the locustfile.

Request labels are redacted before Locust sees them (its statistics and its log, our
records): Locust labels a request by its URL, query included, unless the locustfile names
it, so a search for a customer's e-mail would otherwise be in every file.
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from locust import events
from locust.clients import HttpSession

from deskprof.redact import request_name

OUT = os.path.join(os.environ.get("DESKPROF_WORKLOAD_DIR", "."), f"workload-{os.getpid()}.jsonl")
_rows: list[str] = []


def sent_request_id(response: object) -> str:
    """The ``X-Request-ID`` header of the request behind ``response`` (Locust's HttpUser
    and FastHttpUser both keep it on ``response.request.headers``), else ``""``."""
    headers = getattr(getattr(response, "request", None), "headers", None)
    if headers is None:
        return ""
    try:
        value = headers.get("X-Request-ID") or headers.get("x-request-id")
    except Exception:  # an unusual headers object must not stop the load
        return ""
    return str(value or "")[:200]


def _default_label(url: Any) -> str:
    """What Locust would label an unnamed request: the URL's path and query."""
    text = url.decode(errors="replace") if isinstance(url, bytes) else str(url)
    parts = urlsplit(text)
    if not parts.scheme:
        return text
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _has_request_id(headers: Any) -> bool:
    try:
        return any(str(key).lower() == "x-request-id" for key in headers or ())
    except Exception:  # an odd mapping: leave it as the locustfile made it
        return True


def _redacting(request: Any) -> Any:
    @functools.wraps(request)
    def wrapper(self: Any, method: Any, url: Any, name: str | None = None, *args, **kwargs):
        label = request_name(name if name is not None else _default_label(url))
        headers = kwargs.get("headers")
        positional_headers = len(args) > 3  # FastHttpSession's 7th parameter, given by position
        session_id = _has_request_id(getattr(self, "headers", None))
        if not (positional_headers or session_id or _has_request_id(headers)):
            kwargs["headers"] = {**(headers or {}), "X-Request-ID": uuid.uuid4().hex}
        return request(self, method, url, label, *args, **kwargs)

    wrapper._deskprof_redacting = True  # type: ignore[attr-defined]
    return wrapper


def redact_labels() -> None:
    """Every Locust client's ``request`` labels its requests with redacted names and
    sends an ``X-Request-ID``."""
    sessions: list[Any] = [HttpSession]
    try:
        from locust.contrib.fasthttp import FastHttpSession

        sessions.append(FastHttpSession)
    except ImportError:  # FastHttpUser's extra is not installed
        pass
    for session in sessions:
        if not getattr(session.request, "_deskprof_redacting", False):
            session.request = _redacting(session.request)


redact_labels()


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, **kw) -> None:
    end_ns = time.time_ns()
    start_time = kw.get("start_time")
    if isinstance(start_time, int | float) and start_time > 0:
        start_ns = min(int(start_time * 1e9), end_ns)
    else:
        start_ns = end_ns - int((response_time or 0) * 1e6)
    response = kw.get("response")
    status = int(getattr(response, "status_code", 0) or 0)
    _rows.append(
        json.dumps(
            {
                "name": request_name(str(name)),
                "method": request_type,
                "intended_ns": start_ns,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "latency_ns": end_ns - start_ns,
                "status": status,
                "error": "" if exception is None else str(exception)[:200],
                "user": "",
                "request_id": sent_request_id(response),
            }
        )
    )
    if len(_rows) >= 1000:
        _flush()


@events.quitting.add_listener
@events.quit.add_listener
def _flush(**_kwargs) -> None:
    """Write what is buffered: at ``quitting``, and again at ``quit``, which Locust fires
    after its runner stopped the users, so the requests that were still in flight when
    the capture stopped (answered during the stop timeout) are recorded too."""
    if _rows:
        with open(OUT, "a", encoding="utf-8") as out:
            out.write("\n".join(_rows) + "\n")
        _rows.clear()
