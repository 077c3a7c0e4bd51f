"""The signal sources a session runs, behind one small interface.

``--sources cpu,memory,sql,system`` picks them. Each source can add environment to a
launched target (the probe), wrap its command (``memray run``), start and stop around
the capture window, and convert what it gathered into bundle tables, returning the
reasons its part is incomplete (an empty list when it is whole).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deskprof.capturing.services import ServiceStats
from deskprof.capturing.system import SystemSampler

if TYPE_CHECKING:
    from deskprof.bundle.writer import BundleWriter
    from deskprof.capturing.session import CaptureOptions
    from deskprof.capturing.target import Target

SOURCE_NAMES = ("cpu", "memory", "sql", "system")
# the sources this version can run
AVAILABLE_SOURCES = ("cpu", "memory", "sql", "system")


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


class ServicesSource(Source):
    """PostgreSQL and Redis statistics, when the target uses them."""

    name = "services"

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options
        self.stats: ServiceStats | None = None

    def start(self, target: Target, writer: BundleWriter) -> None:
        database = self.options.database_url or target.environ.get("OPENDESK_DATABASE_URL")
        redis_url = self.options.redis_url or target.environ.get("OPENDESK_REDIS_URL")
        self.stats = ServiceStats(database_url=database, redis_url=redis_url).start()
        for warning in self.stats.warnings:
            writer.warn(warning)

    def stop(self) -> None:
        if self.stats:
            self.stats.stop()

    def collect(self, writer: BundleWriter, context: dict[str, Any]) -> list[str]:
        if self.stats is None:
            return []
        for warning in self.stats.warnings:
            writer.warn(warning)
        if self.stats.rows:
            writer.write_table("service_stats", self.stats.stats_frame())
        if self.stats.has_statements:
            writer.write_table("db_statements", self.stats.statements_frame())
        return []


def build_sources(options: CaptureOptions) -> list[Source]:
    """The sources ``options.sources`` asks for, in start order."""
    chosen = set(options.sources)
    sources: list[Source] = []
    if "sql" in chosen:
        from deskprof.capturing.probe_source import ProbeSource

        sources.append(ProbeSource(options))
    if "system" in chosen:
        sources.append(SystemSource())
    if "sql" in chosen or "system" in chosen:
        sources.append(ServicesSource(options))
    if "memory" in chosen:
        from deskprof.capturing.memory_source import MemorySource

        sources.append(MemorySource(options))
    if "cpu" in chosen:
        from deskprof.capturing.cpu_source import CpuSource

        sources.append(CpuSource(options))
    return sources
