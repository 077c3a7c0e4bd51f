"""Seeding is deterministic and gives the sizes it promises."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from opendesk.config import Settings
from opendesk.db import make_engine
from opendesk.seed import SIZES, seed, seeded_as
from tests.conftest import ANCHOR

pytestmark = pytest.mark.integration

TABLES = ["users", "tickets", "ticket_tags", "comments", "articles", "article_ratings"]


def _digest(engine) -> dict[str, str]:
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
            # password hashes are salted; everything else must be identical
            cleaned = [tuple(v for v in row if not str(v).startswith("$2b$")) for row in rows]
            out[table] = hashlib.sha256(repr(cleaned).encode()).hexdigest()
    return out


def test_seed_is_deterministic_with_promised_sizes(tmp_path):
    digests = []
    for n in range(2):
        engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / f'{n}.db'}"))
        seed(engine, "small", anchor=ANCHOR)
        digests.append(_digest(engine))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM tickets")) == SIZES["small"].tickets
            assert conn.scalar(text("SELECT count(*) FROM comments")) == SIZES["small"].comments
            assert conn.scalar(text("SELECT max(created_at) FROM tickets")) < str(ANCHOR)
        assert seeded_as(engine)["seed_size"] == "small"
        engine.dispose()
    assert digests[0] == digests[1]


def test_postgres_copy_load_matches_sqlite(database_url):
    """Both loaders write the same rows (the seeded fixture databases)."""
    engine = make_engine(Settings(database_url=database_url))
    with engine.connect() as conn:
        count = conn.scalar(text("SELECT count(*) FROM tickets WHERE number LIKE 'OD-%'"))
        assert count >= SIZES["small"].tickets
        first = conn.execute(text("SELECT number, title, priority FROM tickets WHERE id = 1")).one()
    engine.dispose()
    assert first.number == "OD-0000001"
