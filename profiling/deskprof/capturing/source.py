"""The interface every signal source of a capture implements (the base class alone, so
the sources and the registry that lists them import it without importing each other).

Each source can add environment to a launched target (the probe), wrap its command
(``memray run``), start and stop around the capture window, and convert what it gathered
into bundle tables, returning the reasons its part is incomplete (an empty list when it
is whole).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deskprof.bundle.writer import BundleWriter
    from deskprof.capturing.target import Target


class Source:
    """Base: every hook is optional."""

    name = "source"

    def launch_env(self, raw_dir) -> dict[str, str]:
        return {}

    def wrap_launch(self, command: str, raw_dir) -> str:
        return command

    def start(self, target: Target, writer: BundleWriter) -> None:
        pass

    def stop(self) -> None:
        pass

    def pending_bytes(self) -> int:
        """What this source holds outside the bundle directory that will be written into
        it (the disk cap counts it while capturing, not only at the end)."""
        return 0

    def collect(self, writer: BundleWriter, context: dict[str, Any]) -> list[str]:
        return []
