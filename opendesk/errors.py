"""The operator's mistakes, as one exception the command line prints as one line (its
own module so the commands and the modules they run share it without a circle)."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake the operator can fix; printed as one line."""
