"""EXPLAIN cannot execute anything a captured statement smuggles in.

Every statement below was captured (or could be) and handed to ``explain`` with the
most dangerous options a user can pick (``analyze=True``, values kept). After each, no
row, sequence or other session changed: on PostgreSQL (dblink where the server has it)
and on SQLite. The guards under test: plain EXPLAIN unless asked, one statement per call
by protocol, no ANALYZE of volatile or unknown functions, read-only and rolled back, a
timeout that cannot round to zero.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import create_engine, text

from deskprof.analysis.explain import explain
from deskprof.errors import DeskprofError

pytestmark = pytest.mark.integration

SMUGGLED = [
    # a -- comment ends at \r for PostgreSQL, not only at \n
    "SELECT v FROM victim WHERE id = 5 -- note\r; COMMIT; DELETE FROM victim WHERE id <= 100; "
    "SELECT 1",
    "SELECT v FROM victim WHERE id = 5; COMMIT; DELETE FROM victim WHERE id <= 100",
    # comment and quoting tricks a tokenizer can get wrong
    "SELECT $$ -- $$; DELETE FROM victim; SELECT 1",
    "SELECT 'a'';' ; DELETE FROM victim",
    'SELECT "v;" FROM victim; DELETE FROM victim',
    "SELECT 1 /* nested /* comment */ ; DELETE FROM victim; */",
    "SELECT E'\\'; DELETE FROM victim; --'",
    # statements with side effects
    "WITH gone AS (DELETE FROM victim RETURNING id) SELECT count(*) FROM gone",
    "SELECT nextval('victim_id_seq')",
    "SELECT setval('victim_id_seq', 1)",
    "SELECT v FROM victim WHERE id = 1 FOR UPDATE",
    "SELECT victim_writer()",
    "SELECT pg_sleep(30)",
]


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _state(conn: psycopg.Connection) -> tuple:
    rows = conn.execute("SELECT count(*), sum(id), string_agg(v, ',' ORDER BY id) FROM victim")
    seq = conn.execute("SELECT last_value FROM victim_id_seq").fetchone()
    audit = conn.execute("SELECT count(*) FROM victim_audit").fetchone()
    return (*rows.fetchone(), *seq, *audit)


@pytest.fixture
def victim(seeded_postgres):
    url = _plain(seeded_postgres)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS victim, victim_audit")
        conn.execute("CREATE TABLE victim (id serial PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE victim_audit (at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO victim (v) SELECT 'row' || n FROM generate_series(1, 200) n")
        conn.execute(
            "CREATE OR REPLACE FUNCTION victim_writer() RETURNS int LANGUAGE sql AS "
            "$$ INSERT INTO victim_audit DEFAULT VALUES RETURNING 1 $$"
        )
        has_dblink = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'dblink'"
        ).fetchone()
        if has_dblink:
            conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    try:
        yield url, bool(has_dblink)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS victim, victim_audit")
            conn.execute("DROP FUNCTION IF EXISTS victim_writer()")


def _attempt(url: str, statement: str, **kwargs) -> str:
    started = time.monotonic()
    try:
        plan = explain(url, statement, kwargs.pop("parameters", None), analyze=True, **kwargs)
        outcome = f"planned ({'analyzed' if plan.analyzed else 'not executed'}) {plan.note}"
    except DeskprofError as exc:
        outcome = f"refused: {exc}"
    assert time.monotonic() - started < 10, f"{statement!r} ran away"
    return outcome


@pytest.mark.parametrize("statement", SMUGGLED)
def test_postgres_no_side_effect_survives(victim, statement):
    url, _ = victim
    with psycopg.connect(url, autocommit=True) as conn:
        before = _state(conn)
        outcome = _attempt(url, statement, timeout_s=2)
        assert _state(conn) == before, f"{statement!r}: {outcome}"


def test_postgres_dblink_and_terminating_other_sessions_are_never_run(victim):
    url, has_dblink = victim
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url) as bystander:
        before = _state(conn)
        pid = bystander.execute("SELECT pg_backend_pid()").fetchone()[0]
        outcome = _attempt(url, f"SELECT pg_terminate_backend({pid})")
        assert "not executed" in outcome and "pg_terminate_backend" in outcome, outcome
        if has_dblink:
            dsn = url.replace("'", "")
            write = f"SELECT dblink_exec('{dsn}', 'DELETE FROM victim')"
            assert "dblink_exec" in _attempt(url, write)
        assert bystander.execute("SELECT 1").fetchone() == (1,), "the other session lives"
        assert _state(conn) == before


def test_postgres_analyze_only_when_asked_and_safe(victim):
    url, _ = victim
    safe = "SELECT v FROM victim WHERE lower(v) = %(v)s"
    assert not explain(url, safe, '{"v": "row7"}').analyzed, "plain EXPLAIN by default"
    assert explain(url, safe, '{"v": "row7"}', analyze=True).analyzed
    slow = "SELECT count(*) FROM generate_series(1, 200000000)"
    with pytest.raises(DeskprofError, match="statement_timeout"):
        explain(url, slow, None, analyze=True, timeout_s=0.0004)  # rounds up to 1 ms, never 0
    for bad in (0, -1, float("nan"), 10_000):
        with pytest.raises(DeskprofError, match="timeout must be"):
            explain(url, safe, None, timeout_s=bad)


@pytest.fixture
def sqlite_victim(tmp_path):
    path = tmp_path / "victim.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE victim (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO victim (v) VALUES ('a'), ('b'), ('c')"))
    engine.dispose()
    return path


@pytest.mark.parametrize("statement", [*SMUGGLED[:7], SMUGGLED[7], SMUGGLED[10]])
def test_sqlite_no_side_effect_survives(sqlite_victim, statement):
    import sqlite3

    def state() -> list:
        with sqlite3.connect(sqlite_victim) as conn:
            return conn.execute("SELECT id, v FROM victim ORDER BY id").fetchall()

    before = state()
    _attempt(f"sqlite:///{sqlite_victim}", statement, timeout_s=2)
    assert state() == before


def test_postgres_protocol_refuses_several_statements_whatever_a_check_says(victim):
    """The guard under the SELECT check: the extended protocol takes one statement."""
    from sqlalchemy.engine import make_url

    from deskprof.analysis.explain import pg_read_only

    url, _ = victim
    with psycopg.connect(url, autocommit=True) as conn:
        before = _state(conn)
        with (
            pytest.raises(DeskprofError, match="multiple commands"),
            pg_read_only(make_url(url), 2) as cur,
        ):
            cur.execute("SELECT 1; COMMIT; DELETE FROM victim")
        assert _state(conn) == before
