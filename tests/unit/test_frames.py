"""The one frame-label parser and writer (``deskprof.bundle.frames``)."""

from __future__ import annotations

import pytest

from deskprof.bundle.frames import format_frame, parse_frame


@pytest.mark.parametrize(
    ("label", "parsed"),
    [
        ("list_tickets (/srv/api/tickets.py:42)", ("list_tickets", "/srv/api/tickets.py", 42)),
        ("<module> (C:\\app\\x.py:3)", ("<module>", "C:\\app\\x.py", 3)),
        ("query (/srv/db.py:5)", ("query", "/srv/db.py", 5)),
        ("<lambda> (x.py:3)", ("<lambda>", "x.py", 3)),
        ("export.<locals>.stream (/srv/a.py:9)", ("export.<locals>.stream", "/srv/a.py", 9)),
        # the function runs to the last " (": a path holding " (" splits there, as always
        ("f (a (b).py:1)", ("f (a", "b).py", 1)),
        ('process 19138:"python -m x" (:0)', ('process 19138:"python -m x"', "", 0)),
        ("due_time_loop (/srv/opendesk/sla.py)", ("due_time_loop", "/srv/opendesk/sla.py", None)),
        ("weird", ("weird", "", None)),
        ("<native>", ("<native>", "", None)),
    ],
)  # fmt: skip
def test_parse_frame(label: str, parsed: tuple[str, str, int | None]) -> None:
    assert parse_frame(label) == parsed


@pytest.mark.parametrize(
    ("function", "file", "line"),
    [
        ("list_tickets", "/srv/opendesk/api/tickets.py", 42),
        ("<lambda>", "x.py", 3),
        ("due_time_loop", "/srv/opendesk/sla.py", None),
        ("Thread._bootstrap", "/usr/lib/python3.11/threading.py", 0),
        ("f (a", "b).py", 1),
    ],
)
def test_format_then_parse_round_trips(function: str, file: str, line: int | None) -> None:
    label = format_frame(function, file, line)
    assert parse_frame(label) == (function, file, line)
    assert format_frame(*parse_frame(label)) == label


def test_a_missing_line_is_written_without_a_colon_and_read_as_none() -> None:
    """The convention the capture side uses (py-spy frames without a line)."""
    assert format_frame("f", "/a.py") == "f (/a.py)"
    assert format_frame("f", "/a.py", None) == "f (/a.py)"
    assert parse_frame("f (/a.py)") == ("f", "/a.py", None)
    assert format_frame("f", "/a.py", 7) == "f (/a.py:7)"


def test_parse_frame_reads_the_labels_attribution_matches() -> None:
    """(Moved from test_attribution: attribution parses with this function.)"""
    assert parse_frame("list_tickets (/srv/opendesk/api/tickets.py:42)") == (
        "list_tickets",
        "/srv/opendesk/api/tickets.py",
        42,
    )
    assert parse_frame("<module> (C:\\app\\x.py:3)") == ("<module>", "C:\\app\\x.py", 3)
    assert parse_frame("weird") == ("weird", "", None)
