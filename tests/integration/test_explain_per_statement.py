"""EXPLAIN per statement, on real SQLite and PostgreSQL: a locking statement and one the
database cannot parse are "not checked" with their reasons, while the others (subqueries
with SQLAlchemy's anonymous aliases, CTEs, IN lists) are checked and the real missing
index, on comments.ticket_id, is still reported."""

from __future__ import annotations

import pytest

from deskprof.analysis.detectors.missing_index import detect_missing_indexes
from tests.unit.test_findings_sql import per_request, queries, requests

pytestmark = pytest.mark.integration

LAZY = {  # the N+1 that needs an index, as each driver writes its placeholders
    "sqlite": "SELECT comments.id, comments.body FROM comments WHERE ? = comments.ticket_id",
    "postgresql": "SELECT comments.id, comments.body FROM comments "
    "WHERE %(param_1)s::INTEGER = comments.ticket_id",
}
OTHERS = [
    "SELECT tickets.id FROM tickets WHERE tickets.status = 'open' FOR UPDATE",  # locks
    "SELECT tickets.id FROM tickets WHERE tickets.id = = 1",  # the database cannot parse it
    # SQLite plans this as "SCAN anon_1" (the old detector counted rows of a table of
    # that name and lost the whole statement: "no such table: anon_1")
    "SELECT anon_1.n FROM (SELECT tickets.status AS status, count(*) AS n FROM tickets "
    "GROUP BY tickets.status) AS anon_1 WHERE anon_1.n > 1",
    "WITH recent AS (SELECT tickets.id AS id FROM tickets ORDER BY tickets.id DESC LIMIT 50) "
    "SELECT count(*) FROM recent WHERE recent.id > 3",
    "SELECT tags.name FROM tags WHERE tags.id IN (1, 2, 3)",
]


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_one_statement_never_stops_the_detector(database_url):
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    statements = [(LAZY[backend], 8.0)] + [(sql, 9.0) for sql in OTHERS]
    rows = per_request(6, statements)
    for row in rows:  # the lazy load ran for ticket 17, the others bind nothing
        row["parameters"] = (
            '{"param_1": 17}'
            if "param_1" in row["statement"]
            else ("[17]" if "?" in row["statement"] else "[]")
        )
    notes: list[dict] = []
    found = detect_missing_indexes(
        queries(rows), requests([f"r{i}" for i in range(6)]),
        database_url=_plain(database_url), parameters_kept=True, notes=notes,
    )  # fmt: skip
    unchecked = {n["statement"]: n["reason"] for n in notes}
    assert len(unchecked) == 2, notes
    # each names its query (the fingerprint), not a hash the reader cannot look up
    assert all(statement.startswith("select ") for statement in unchecked), unchecked
    assert any("FOR UPDATE" in reason for reason in unchecked.values()), unchecked
    assert any("rejected" in reason for reason in unchecked.values()), unchecked
    assert not any("anon_1" in reason or "recent" in reason for reason in unchecked.values())
    indexes = [f.evidence[0]["suggested_index"] for f in found]
    assert any("comments" in ddl and "ticket_id" in ddl for ddl in indexes), indexes
