"""Loaded beside a user's own locustfile: records every request Locust reports.

Custom locustfiles do not use our recording client, so their requests are taken from
Locust's ``request`` event: the start is the event's ``start_time`` (the end minus
Locust's response time on Locust versions without it), the end is when the event fires.
Closed loop only, so the intended start is the actual start. A locustfile that sends an
``X-Request-ID`` header gets it recorded, so its requests join the probe's.
"""

from __future__ import annotations

import json
import os
import time

from locust import events

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
                "name": name,
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
def _flush(**_kwargs) -> None:
    if _rows:
        with open(OUT, "a", encoding="utf-8") as out:
            out.write("\n".join(_rows) + "\n")
        _rows.clear()
