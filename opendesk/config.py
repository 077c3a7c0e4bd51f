"""Settings of the reference service, read once from the environment.

Everything a deployment varies lives here so that an experiment can describe a variant
by its environment alone (``OPENDESK_FIXES``, ``OPENDESK_DATABASE_URL``, ...).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OPENDESK_DATA_DIR", REPO_ROOT / "data"))

# The named switches of the planted problems. Each one, when on, replaces a first-version
# behaviour with its fix; `indexes` is a schema migration that `serve` applies or reverts.
FIX_NAMES: dict[str, str] = {
    "eager_loading": "load creator, assignee, tags and comments eagerly (no N+1)",
    "indexes": "indexes on the columns lists filter, sort and join on (a migration)",
    "report_cache": "aggregate reports in SQL and cache them in Redis, invalidated on writes",
    "keyset_pagination": "keyset (cursor) pagination, total count cached",
    "streaming_export": "stream the CSV export from a server-side cursor",
    "connection_pool": "a sized connection pool with pre-ping instead of a connection per request",
    "sla_closed_form": "closed-form SLA due time instead of a minute-by-minute loop",
    "async_notifications": "queue notifications in Redis; a worker renders them in batches",
}


class ConfigError(ValueError):
    """A setting the operator gave is wrong; the message says which and what to do."""


def parse_fixes(text: str | None) -> frozenset[str]:
    """Parse ``OPENDESK_FIXES`` ("all", "none", or comma-separated names)."""
    if not text or text.strip().lower() in {"", "none", "baseline"}:
        return frozenset()
    names = {part.strip() for part in text.split(",") if part.strip()}
    if "all" in names:
        return frozenset(FIX_NAMES)
    unknown = sorted(names - set(FIX_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown fix name(s) in OPENDESK_FIXES: {', '.join(unknown)}; "
            f"known: all, {', '.join(FIX_NAMES)}"
        )
    return frozenset(names)


def default_database_url() -> str:
    return f"sqlite:///{DATA_DIR / 'opendesk.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """One deployment's configuration."""

    database_url: str = field(default_factory=default_database_url)
    redis_url: str | None = None
    fixes: frozenset[str] = frozenset()
    pool_size: int = 10
    report_cache_ttl_s: int = 60
    page_size_max: int = 100
    token_ttl_s: int = 7 * 24 * 3600

    def fixed(self, name: str) -> bool:
        """True when the fix called ``name`` is switched on."""
        if name not in FIX_NAMES:  # a typo here would silently test the baseline
            raise KeyError(name)
        return name in self.fixes

    @property
    def redis_prefix(self) -> str:
        """Key prefix per database, so deployments (and tests) sharing a Redis never mix."""
        digest = hashlib.sha1(self.database_url.encode(), usedforsecurity=False).hexdigest()
        return f"opendesk:{digest[:10]}"

    @property
    def notification_queue(self) -> str:
        return f"{self.redis_prefix}:notifications"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        url = env.get("OPENDESK_DATABASE_URL") or default_database_url()
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # psycopg 3 is the driver we ship; say so in the URL SQLAlchemy sees.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return cls(
            database_url=url,
            redis_url=env.get("OPENDESK_REDIS_URL") or None,
            fixes=parse_fixes(env.get("OPENDESK_FIXES")),
            pool_size=int(env.get("OPENDESK_POOL_SIZE", "10")),
        )

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env = {
            "OPENDESK_DATABASE_URL": self.database_url,
            "OPENDESK_FIXES": ",".join(sorted(self.fixes)) or "none",
            "OPENDESK_POOL_SIZE": str(self.pool_size),
        }
        if self.redis_url:
            env["OPENDESK_REDIS_URL"] = self.redis_url
        return env
