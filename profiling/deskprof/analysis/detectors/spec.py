"""A detector as data: what it reads, what it needs, and where its function lives.

``detect_all`` runs every detector the same way from this description (hand it the tables
it reads, skip it when a required one is empty or it needs a database to EXPLAIN against
and has none, pass the run options it declares), so adding a detector is one entry in
:data:`deskprof.analysis.detectors.DETECTORS` and never a special case by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from deskprof.analysis.finding import Finding

# run options a detector may declare; detect_all fills each from the capture or the call
OPTIONS = frozenset({"parameters_kept", "rate_hz", "database_url", "notes", "app_packages"})


@dataclass(frozen=True)
class Detector:
    """One detector: ``name`` is the kind of finding it reports and the name a skip says.

    ``reads`` are the capture's tables handed to the function positionally, in order;
    ``requires`` those of them that must be non-empty for it to run. ``needs_explain``:
    it runs only with a database to EXPLAIN against. ``options`` are the keyword arguments
    it takes besides ``thresholds`` (see :data:`OPTIONS`). ``function`` is
    ``"module:name"`` under this package, imported when the detector runs, so that a
    capture analysed without a database never imports SQLAlchemy for the EXPLAIN one."""

    name: str
    function: str
    reads: tuple[str, ...]
    requires: tuple[str, ...]
    needs_explain: bool = False
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.options) - OPTIONS
        if unknown or not set(self.requires) <= set(self.reads):
            raise ValueError(f"detector {self.name}: bad options {unknown} or requires")

    def load(self) -> Callable[..., list[Finding]]:
        """The detector's function (its module imported now)."""
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(f"deskprof.analysis.detectors.{module}"), name)
