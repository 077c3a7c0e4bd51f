"""Capturing: one module per signal source and the session that runs them together.

``deskprof.capture(url=..., launch=... | pids=[...], duration_s=30)`` is the notebook
entry point (``deskprof capture`` the CLI's); it returns the bundle it wrote, opened (a
:class:`deskprof.Capture`). The package is named ``capturing`` so that
``deskprof.capture`` can be that function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deskprof.capturing.session import CaptureOptions, CaptureResult, capture

__all__ = ["CaptureOptions", "CaptureResult", "capture"]


def __getattr__(name: str) -> Any:
    # lazy: the session pulls in pandas and psutil, which the sources' helpers may not need
    if name in __all__:
        from deskprof.capturing import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
