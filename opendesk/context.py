"""What a running OpenDesk process holds: settings, engine, sessions, Redis.

Built once per worker process by ``create_app`` and reached from handlers through
``request.app.state.ctx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from opendesk.cache import ReadCache, connect
from opendesk.config import ConfigError, Settings
from opendesk.db import make_engine, make_sessionmaker

NEEDS_REDIS = ("report_cache", "async_notifications")


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis | None
    cache: ReadCache | None

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        missing = [name for name in NEEDS_REDIS if name in settings.fixes]
        if missing and not settings.redis_url:
            raise ConfigError(
                f"fix(es) {', '.join(missing)} need Redis: set OPENDESK_REDIS_URL "
                "(or start through `python -m opendesk serve`, which starts one)"
            )
        engine = make_engine(settings)
        client = connect(settings.redis_url) if settings.redis_url else None
        cache = (
            ReadCache(client, settings.report_cache_ttl_s, settings.redis_prefix)
            if client
            else None
        )
        return cls(settings, engine, make_sessionmaker(engine), client, cache)

    def fixed(self, name: str) -> bool:
        return self.settings.fixed(name)

    def invalidate_reads(self) -> None:
        """After a ticket or comment write: cached reports and counts are stale."""
        if self.cache is not None and (
            self.fixed("report_cache") or self.fixed("keyset_pagination")
        ):
            self.cache.invalidate()

    def close(self) -> None:
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


def utcnow() -> datetime:
    """Naive UTC, the way timestamps are stored."""
    return datetime.now(UTC).replace(tzinfo=None)
