"""Server-side statistics against real Redis and PostgreSQL."""

from __future__ import annotations

import pytest
import redis

from deskprof.capturing.services import ServiceStats

pytestmark = pytest.mark.integration


def test_redis_info_deltas(redis_url):
    stats = ServiceStats(redis_url=redis_url, interval_s=0.1).start()
    client = redis.Redis.from_url(redis_url)
    for n in range(20):
        client.get(f"deskprof-test-missing-{n}")
    stats.stop()
    frame = stats.stats_frame()
    misses = frame[(frame.service == "redis") & (frame.name == "keyspace_misses")]
    assert misses["value"].iloc[-1] >= 20


def test_postgres_activity_and_missing_pg_stat_statements(pg_database):
    import psycopg

    from deskprof.capturing.services import postgres_dsn

    with psycopg.connect(postgres_dsn(pg_database)) as other_client:
        other_client.execute("SELECT 1")
        stats = ServiceStats(database_url=pg_database, interval_s=0.1).start()
        stats.stop()
    frame = stats.stats_frame()
    assert (frame.service == "postgresql").any()
    if not stats.has_statements:
        assert any("pg_stat_statements" in w for w in stats.warnings)


def test_unreachable_servers_are_warnings_not_errors():
    stats = ServiceStats(
        database_url="postgresql://nobody@127.0.0.1:1/none", redis_url="redis://127.0.0.1:1/0"
    ).start()
    stats.stop()
    assert len(stats.warnings) == 2
