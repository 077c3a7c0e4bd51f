from __future__ import annotations

import pytest

from opendesk.config import FIX_NAMES, ConfigError, Settings, parse_fixes
from opendesk.tickets import BadCursor, decode_cursor, encode_cursor


def test_parse_fixes():
    assert parse_fixes(None) == frozenset()
    assert parse_fixes("none") == frozenset()
    assert parse_fixes("all") == frozenset(FIX_NAMES)
    assert parse_fixes(" eager_loading , indexes ") == {"eager_loading", "indexes"}
    with pytest.raises(ConfigError, match=r"unknown fix name.*eager_load\b"):
        parse_fixes("eager_load")


def test_settings_from_env_normalises_postgres_url():
    settings = Settings.from_env({"OPENDESK_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.redis_url is None
    assert Settings.from_env({}).database_url.startswith("sqlite:///")


def test_settings_round_trip_through_env():
    settings = Settings(
        database_url="sqlite:///x", redis_url="redis://h", fixes=frozenset({"indexes"})
    )
    assert Settings.from_env(settings.to_env()) == settings


def test_fixed_rejects_unknown_names():
    with pytest.raises(KeyError):
        Settings().fixed("eager")


def test_redis_prefix_separates_databases():
    assert (
        Settings(database_url="sqlite:///a").redis_prefix
        != Settings(database_url="sqlite:///b").redis_prefix
    )


def test_cursor_round_trip():
    from datetime import datetime

    stamp = datetime(2026, 11, 2, 10, 0, 5)
    assert decode_cursor(encode_cursor(stamp, 42), "-created_at") == (stamp, 42)
    assert decode_cursor(encode_cursor("OD-0000042", 42), "number") == ("OD-0000042", 42)
    for junk in ("", "abc", encode_cursor(stamp, 1)[:-3], encode_cursor(5, 1)):
        with pytest.raises(BadCursor):
            decode_cursor(junk, "number")
