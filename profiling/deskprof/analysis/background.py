"""Work outside requests as an endpoint-like group: background loops, scheduler jobs,
worker threads and start-up, named by what ran them.

The probe records what ran a statement that no request started (``task <coroutine>`` or
``thread <name>``); the analysis names its group ``BACKGROUND task poll_loop`` the way a
request's is ``GET /tickets``, so findings and reports show it as a place of its own
instead of an empty endpoint. Standard library only (the findings wording uses it).
"""

from __future__ import annotations

BACKGROUND = "BACKGROUND"


def background_group(context: str) -> str:
    """The group name of work run by ``context`` (``task poll_loop``)."""
    return f"{BACKGROUND} {context}"


def is_background(endpoint: str) -> bool:
    """True for a group of work outside requests."""
    return endpoint.startswith(BACKGROUND + " ")
