"""PostgreSQL and Redis statistics around the window (with ``sql`` or ``system``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deskprof.capturing.services import ServiceStats
from deskprof.capturing.source import Source

if TYPE_CHECKING:
    from deskprof.bundle.writer import BundleWriter
    from deskprof.capturing.session import CaptureOptions
    from deskprof.capturing.target import Target


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
