"""The notebook harness's own logic (fast): what it injects, what it accepts."""

from __future__ import annotations

import pytest

from tests.notebooks.test_notebooks import (
    KNOWN_REQUIREMENTS,
    NOTEBOOKS,
    ci_parameters,
    notebook_settings,
)


def test_ci_parameters_layer_ci_the_notebooks_own_and_the_services():
    settings = {"ci_parameters": {"duration_s": 4, "ci": "overridden"}, "requires": ["x"]}
    services = {"postgresql": "postgresql://pg/db", "redis": "redis://r:6379/0"}
    assert ci_parameters(settings, services) == {
        "ci": "overridden",
        "duration_s": 4,
        "database_url": "postgresql://pg/db",
        "redis_url": "redis://r:6379/0",
    }
    assert ci_parameters({}, {}) == {"ci": True}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_metadata_is_what_the_harness_reads(path):
    settings = notebook_settings(path)
    unknown = set(settings.get("requires") or []) - set(KNOWN_REQUIREMENTS)
    assert not unknown, f"{path.name}: requires {unknown}; known: {sorted(KNOWN_REQUIREMENTS)}"
    assert isinstance(settings.get("ci_parameters") or {}, dict)
    assert int(settings.get("timeout_s", 300)) > 0


@pytest.mark.integration
def test_notebooks_get_a_seeded_postgresql_database_of_their_own(notebook_postgres):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from opendesk.seed import seeded_as
    from tests.conftest import PG_ADMIN_URL

    assert make_url(notebook_postgres).database != make_url(PG_ADMIN_URL).database
    engine = create_engine(notebook_postgres)
    try:
        assert seeded_as(engine)["seed_size"] == "small"
    finally:
        engine.dispose()
