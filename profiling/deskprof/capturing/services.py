"""What the database and cache servers saw during the capture.

PostgreSQL: ``pg_stat_statements`` deltas (end minus start, per queryid) when the
extension is loaded, and ``pg_stat_activity`` connection counts by state over time.
Redis: ``INFO`` counters (hits, misses, commands, connections) as deltas over time.
Each source is optional: when a server or extension is not there, the session gets a
warning that says so, never an error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from deskprof.bundle.schema import columns

REDIS_COUNTERS = (
    "keyspace_hits",
    "keyspace_misses",
    "total_commands_processed",
    "total_connections_received",
    "expired_keys",
    "evicted_keys",
)
REDIS_GAUGES = ("connected_clients", "used_memory")
STATEMENTS_SQL = """
SELECT queryid::text, query, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
ACTIVITY_SQL = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1
"""


def postgres_dsn(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


@dataclass
class ServiceStats:
    """Polls the servers every ``interval_s`` on a background thread."""

    database_url: str | None = None
    redis_url: str | None = None
    interval_s: float = 1.0
    rows: list[tuple] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statements_start: dict[str, tuple] = field(default_factory=dict)
    statements_end: dict[str, tuple] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pg: Any = None
    _redis: Any = None
    _redis_base: dict[str, float] = field(default_factory=dict)

    @property
    def has_statements(self) -> bool:
        return bool(self.statements_start or self.statements_end)

    def start(self) -> ServiceStats:
        if self.database_url and self.database_url.startswith("postgres"):
            self._connect_postgres()
        if self.redis_url:
            self._connect_redis()
        if self._pg is not None or self._redis is not None:
            self._thread = threading.Thread(target=self._run, name="deskprof-services", daemon=True)
            self._thread.start()
        return self

    def _connect_postgres(self) -> None:
        import psycopg

        try:
            self._pg = psycopg.connect(
                postgres_dsn(self.database_url or ""), autocommit=True, connect_timeout=3
            )
        except psycopg.Error as exc:
            self.warnings.append(f"PostgreSQL statistics unavailable: {str(exc).strip()[:200]}")
            return
        try:
            self.statements_start = self._read_statements()
        except psycopg.Error:
            self.warnings.append(
                "pg_stat_statements is not loaded on this server (shared_preload_libraries); "
                "query reconciliation against the server is skipped"
            )

    def _connect_redis(self) -> None:
        import redis

        try:
            self._redis = redis.Redis.from_url(self.redis_url or "", socket_timeout=2)
            info = self._redis.info()
        except redis.RedisError as exc:
            self.warnings.append(f"Redis statistics unavailable: {exc}")
            self._redis = None
            return
        self._redis_base = {k: float(info.get(k, 0)) for k in REDIS_COUNTERS}

    def _read_statements(self) -> dict[str, tuple]:
        with self._pg.cursor() as cur:
            cur.execute(STATEMENTS_SQL)
            return {row[0]: row[1:] for row in cur.fetchall()}

    def _poll(self) -> None:
        now = time.time_ns()
        if self._pg is not None:
            try:
                with self._pg.cursor() as cur:
                    cur.execute(ACTIVITY_SQL)
                    for state, count in cur.fetchall():
                        self.rows.append((now, "postgresql", f"connections_{state}", float(count)))
            except Exception as exc:  # the server went away: say so once, keep capturing
                self.warnings.append(f"PostgreSQL polling stopped: {type(exc).__name__}")
                self._pg = None
        if self._redis is not None:
            try:
                info = self._redis.info()
            except Exception as exc:
                self.warnings.append(f"Redis polling stopped: {type(exc).__name__}")
                self._redis = None
                return
            for key in REDIS_COUNTERS:
                value = float(info.get(key, 0)) - self._redis_base.get(key, 0.0)
                self.rows.append((now, "redis", key, value))
            for key in REDIS_GAUGES:
                self.rows.append((now, "redis", key, float(info.get(key, 0))))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._poll()
        if self._pg is not None and self.statements_start:
            try:
                self.statements_end = self._read_statements()
            except Exception as exc:
                self.warnings.append(f"pg_stat_statements final read failed: {exc}")
        if self._pg is not None:
            self._pg.close()
        if self._redis is not None:
            self._redis.close()

    def stats_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=columns("service_stats"))
        return frame.astype({"ts_ns": "int64", "value": "float64"})

    def statements_frame(self) -> pd.DataFrame:
        """Per queryid, what ran during the capture (end minus start)."""
        rows = []
        for queryid, end in self.statements_end.items():
            start = self.statements_start.get(queryid, (end[0], 0, 0.0, 0, 0, 0))
            calls = end[1] - start[1]
            if calls <= 0:
                continue
            rows.append(
                (
                    queryid,
                    end[0],
                    calls,
                    end[2] - start[2],
                    end[3] - start[3],
                    end[4] - start[4],
                    end[5] - start[5],
                )
            )
        return pd.DataFrame(rows, columns=columns("db_statements"))
