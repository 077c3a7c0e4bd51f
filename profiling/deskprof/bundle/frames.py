"""The one frame label of a bundle: ``"function (file:line)"``, or ``"function (file)"``
when the line is unknown.

The capture side writes these labels (py-spy frames in ``capturing/cpu.py``, memray's in
``capturing/memory.py``) and the analyses and views read them back; parsing and writing
live here so that every reader agrees on where the function ends and what a missing line
is (``None``, written as no ``:line`` at all, as py-spy's converter does). Standard library
only: the probe side and the views import it without pandas.
"""

from __future__ import annotations

import re

# The function is greedy: it runs to the last " (" that a file (and an optional ":line")
# and ")" can follow, so a name with spaces or brackets ('process 12:"python -m x"',
# "<lambda>") parses; a file whose path holds " (" splits there ("f (a (b).py:1)" is
# function "f (a", file "b).py"), as every reader has always read it.
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def parse_frame(label: str) -> tuple[str, str, int | None]:
    """``"list_tickets (/app/opendesk/api/tickets.py:42)"`` → ``(function, file, line)``;
    ``line`` is None when the label has none, and a label that is not a frame (``"<native>"``)
    is all function: ``(label, "", None)``."""
    text = str(label)
    match = FRAME.match(text)
    if match is None:
        return text, "", None
    line = match["line"]
    return match["function"], match["file"], int(line) if line else None


def format_frame(function: str, file: str, line: int | None = None) -> str:
    """The label :func:`parse_frame` reads back: ``"function (file:line)"``, or
    ``"function (file)"`` without a line (a function's lines folded into one frame)."""
    where = file if line is None else f"{file}:{line}"
    return f"{function} ({where})"
