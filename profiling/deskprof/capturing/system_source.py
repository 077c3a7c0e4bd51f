"""The ``system`` source: psutil per target process at 10 Hz."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deskprof.capturing.source import Source
from deskprof.capturing.system import SystemSampler

if TYPE_CHECKING:
    from deskprof.bundle.writer import BundleWriter
    from deskprof.capturing.target import Target


class SystemSource(Source):
    """psutil per process at 10 Hz."""

    name = "system"

    def __init__(self) -> None:
        self.sampler: SystemSampler | None = None

    def start(self, target: Target, writer: BundleWriter) -> None:
        self.sampler = SystemSampler(target.pids).start()

    def stop(self) -> None:
        if self.sampler:
            self.sampler.stop()

    def collect(self, writer: BundleWriter, context: dict[str, Any]) -> list[str]:
        if self.sampler is None:
            return ["did not run"]
        writer.write_table("metrics", self.sampler.frame())
        writer.manifest.overhead["system"] = {
            "rate_hz": 10,
            "how": "psutil reads /proc for each target PID from the capturing process; "
            "the target does no work for it",
        }
        return []
