"""Query parameters leave the process as types unless values are asked for."""

from __future__ import annotations

import datetime
import decimal
import json

from deskprof.probe.params import MAX_ROWS, MAX_TEXT, describe_parameters


def test_default_keeps_types_only():
    named = describe_parameters({"email_1": "alice@example.com", "id_1": 7, "flag": None})
    assert json.loads(named) == {"email_1": "str", "id_1": "int", "flag": "None"}
    assert "alice" not in named
    assert json.loads(describe_parameters(("secret", 2.5, True))) == ["str", "float", "bool"]
    assert describe_parameters(None) == "null"


def test_the_cached_shape_never_carries_a_value_from_an_earlier_call():
    first = describe_parameters({"token": "s3cret"})
    second = describe_parameters({"token": "other"})
    assert first == second == '{"token":"str"}'
    assert describe_parameters({"token": 5}) == '{"token":"int"}'  # same names, other types


def test_keep_stores_values_in_json_friendly_form():
    when = datetime.datetime(2026, 11, 2, 9, 30)
    kept = json.loads(
        describe_parameters(
            {"at": when, "amount": decimal.Decimal("1.50"), "n": 3, "x": float("inf")}, keep=True
        )
    )
    assert kept == {"at": "2026-11-02T09:30:00", "amount": "1.50", "n": 3, "x": "inf"}


def test_long_text_is_truncated_and_executemany_bounded():
    text = json.loads(describe_parameters(["a" * (MAX_TEXT + 10)], keep=True))[0]
    assert text.endswith("...[truncated]") and len(text) < MAX_TEXT + 20
    many = json.loads(
        describe_parameters([{"v": n} for n in range(MAX_ROWS + 5)], executemany=True)
    )
    assert many == [{"v": "int"}] * MAX_ROWS
