"""User mistakes, as one exception family.

The CLI catches ``DeskprofError`` once at the top and prints its message as one line
with its exit code; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class DeskprofError(Exception):
    """A mistake the user can fix; ``str()`` says what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
