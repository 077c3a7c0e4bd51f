"""The signal sources a session runs: their names and the one list that builds them.

``--sources cpu,memory,sql,system`` picks them; each is a :class:`Source`
(:mod:`deskprof.capturing.source`) in a module of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deskprof.capturing.cpu_source import CpuSource
from deskprof.capturing.memory_source import MemorySource
from deskprof.capturing.probe_source import ProbeSource
from deskprof.capturing.services_source import ServicesSource
from deskprof.capturing.source import Source
from deskprof.capturing.system_source import SystemSource

if TYPE_CHECKING:
    from deskprof.capturing.session import CaptureOptions

SOURCE_NAMES = ("cpu", "memory", "sql", "system")
# the sources this version can run
AVAILABLE_SOURCES = ("cpu", "memory", "sql", "system")

__all__ = ["AVAILABLE_SOURCES", "SOURCE_NAMES", "Source", "build_sources"]


def build_sources(options: CaptureOptions) -> list[Source]:
    """The sources ``options.sources`` asks for, in start order."""
    chosen = set(options.sources)
    sources: list[Source] = []
    if "sql" in chosen:
        sources.append(ProbeSource(options))
    if "system" in chosen:
        sources.append(SystemSource())
    if "sql" in chosen or "system" in chosen:
        sources.append(ServicesSource(options))
    if "memory" in chosen:
        sources.append(MemorySource(options))
    if "cpu" in chosen:
        sources.append(CpuSource(options))
    return sources
