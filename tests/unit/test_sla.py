"""The closed-form SLA due time equals the minute-by-minute loop it replaces."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from opendesk import sla


@pytest.mark.slow  # a few seconds: make test runs it, make test-fast does not
def test_matches_loop_on_random_instants():
    rng = random.Random(7)
    base = datetime(2026, 1, 1)
    for _ in range(3000):
        created = base + timedelta(seconds=rng.randrange(86400 * 400))
        priority = rng.choice(list(sla.TARGET_MINUTES))
        assert sla.due_time_closed_form(created, priority) == sla.due_time_loop(created, priority)


@pytest.mark.parametrize(
    "created",
    [
        datetime(2026, 11, 6, 16, 59),  # Friday, last business minute
        datetime(2026, 11, 6, 17, 0),  # Friday closing
        datetime(2026, 11, 7, 12, 0),  # Saturday
        datetime(2026, 11, 8, 23, 59, 59),  # Sunday night
        datetime(2026, 11, 9, 9, 0),  # Monday opening
        datetime(2026, 11, 9, 8, 59, 30),  # just before opening, with seconds
        datetime(2026, 11, 9, 16, 59, 1),
    ],
)
@pytest.mark.parametrize("priority", ["urgent", "high", "medium", "low"])
def test_matches_loop_on_boundaries(created, priority):
    assert sla.due_time_closed_form(created, priority) == sla.due_time_loop(created, priority)


def test_known_values():
    monday_9 = datetime(2026, 11, 9, 9, 0)
    assert sla.due_time_closed_form(monday_9, "high") == datetime(2026, 11, 9, 17, 0)
    assert sla.due_time_closed_form(monday_9, "urgent") == datetime(2026, 11, 9, 13, 0)
    # 40 business hours from Monday 09:00 is Friday 17:00
    assert sla.due_time_closed_form(monday_9, "low") == datetime(2026, 11, 13, 17, 0)
    friday_16 = datetime(2026, 11, 13, 16, 0)
    assert sla.due_time_closed_form(friday_16, "urgent") == datetime(2026, 11, 16, 12, 0)


def test_breach_rules():
    due = datetime(2026, 11, 9, 13, 0)
    assert sla.is_breached(due, due + timedelta(seconds=1), due, is_open=False)
    assert not sla.is_breached(due, due, due + timedelta(days=3), is_open=False)
    assert sla.is_breached(due, None, due + timedelta(minutes=1), is_open=True)
    assert not sla.is_breached(due, None, due + timedelta(days=9), is_open=False)
