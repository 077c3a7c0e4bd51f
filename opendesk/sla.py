"""SLA due times in business hours (Monday-Friday, 09:00-17:00 UTC).

A ticket's clock starts at the first whole minute at or after it was created and runs
only in business hours; it is due when its priority's business minutes have elapsed.

``due_time_loop`` is the first version: it walks the calendar a minute at a time, a CPU
hot spot on every list and report. ``due_time_closed_form`` (the ``sla_closed_form`` fix)
computes the same instant with arithmetic on days and weeks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

OPEN_HOUR = 9
CLOSE_HOUR = 17
DAY_MINUTES = (CLOSE_HOUR - OPEN_HOUR) * 60
TARGET_MINUTES = {"urgent": 4 * 60, "high": 8 * 60, "medium": 24 * 60, "low": 40 * 60}
_MINUTE = timedelta(minutes=1)


def clock_start(created_at: datetime) -> datetime:
    """The first whole minute at or after ``created_at``."""
    floor = created_at.replace(second=0, microsecond=0)
    return floor if floor == created_at else floor + _MINUTE


def is_business_minute(t: datetime) -> bool:
    return t.weekday() < 5 and OPEN_HOUR <= t.hour < CLOSE_HOUR


def due_time_loop(created_at: datetime, priority: str) -> datetime:
    """Walk the calendar minute by minute, counting business minutes (the slow way)."""
    remaining = TARGET_MINUTES[priority]
    t = clock_start(created_at)
    while remaining > 0:
        if is_business_minute(t):
            remaining -= 1
        t += _MINUTE
    return t


def _next_business_start(t: datetime) -> datetime:
    """``t`` itself if it is inside business hours, else the next opening time."""
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if t.weekday() < 5 and t.hour < OPEN_HOUR:
        return day.replace(hour=OPEN_HOUR)
    if is_business_minute(t):
        return t
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=OPEN_HOUR)


def _add_business_days(day: datetime, n: int) -> datetime:
    """Move ``day`` (a weekday) forward by ``n`` weekdays."""
    weeks, rest = divmod(n, 5)
    day += timedelta(weeks=weeks)
    for _ in range(rest):
        day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
    return day


def due_time_closed_form(created_at: datetime, priority: str) -> datetime:
    """Same result as ``due_time_loop`` in O(1)."""
    remaining = TARGET_MINUTES[priority]
    start = _next_business_start(clock_start(created_at))
    minutes_left_today = (CLOSE_HOUR - start.hour) * 60 - start.minute
    if remaining <= minutes_left_today:
        return start + timedelta(minutes=remaining)
    remaining -= minutes_left_today
    # `remaining` more minutes, each full day holds DAY_MINUTES; the last minute may end
    # exactly at closing time, hence the -1.
    full_days, _ = divmod(remaining - 1, DAY_MINUTES)
    last_day = _add_business_days(start.replace(hour=OPEN_HOUR, minute=0), full_days + 1)
    return last_day + timedelta(minutes=remaining - full_days * DAY_MINUTES)


def due_time(created_at: datetime, priority: str, *, closed_form: bool) -> datetime:
    if closed_form:
        return due_time_closed_form(created_at, priority)
    return due_time_loop(created_at, priority)


def is_breached(
    due_at: datetime, resolved_at: datetime | None, now: datetime, *, is_open: bool
) -> bool:
    """Resolved after its due time, or still open past it."""
    if resolved_at is not None:
        return resolved_at > due_at
    return is_open and now > due_at
