"""In-process instrumentation for the profiled service: requests and SQL, per request.

Imported into the target, so: standard library only (SQLAlchemy, Starlette and Flask are
imported lazily, from the target's own environment), never raises into the application
(internal errors are counted in ``probe_stats``), and nearly free when switched off.

Two ways in::

    handle = deskprof.probe.install(app, engine, out_dir="data/probe")  # code you own
    deskprof run --out data/probe -- uvicorn opendesk.app:create_app --factory  # code you don't

Output: ``<out_dir>/probe-<pid>.jsonl``, one JSON object per line with ``"kind"`` naming
a table of ``deskprof.bundle.schema`` (``requests``, ``queries``, ``connections``) and exactly
its columns, plus ``probe_stats`` lines; ``deskprof.probe.reader`` reads them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deskprof.probe.installer import ProbeHandle, install

__all__ = ["ProbeHandle", "install"]


def __getattr__(name: str) -> Any:
    # lazy, so that ``deskprof run``'s sitecustomize, which imports
    # ``deskprof.probe.autoinstrument`` in every process, loads only what it uses
    if name in __all__:
        from deskprof.probe import installer

        return getattr(installer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
