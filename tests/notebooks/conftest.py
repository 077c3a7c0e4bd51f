"""Fixtures for executing the notebooks: a PostgreSQL database of their own.

Notebooks that declare ``"requires": ["postgresql"]`` get a database created here (not
the session's shared test database: an experiment notebook may apply the indexes
migration, which other tests must not see), seeded once with the small data set, and
dropped at the end. Without a server they skip with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, _pg_reachable


@pytest.fixture(scope="session")
def notebook_postgres() -> Iterator[str]:
    """The URL of a PostgreSQL database seeded with the small reference data."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(f"this notebook requires PostgreSQL: {reason}")
    from deskprof.lab import reference_database

    name = f"deskprof_notebooks_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield reference_database("small", database_url=url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
