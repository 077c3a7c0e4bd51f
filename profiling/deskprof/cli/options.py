"""The CLI's side of the library's option types: defaults read from them, and library
option errors told in flag names.

The library validates its own options (``CaptureOptions``, ``Experiment``, ``Design``,
``WorkloadSpec``) and names them by keyword; each verb lists ``FLAGS`` (keyword → flag)
so the same mistake reads ``--duration must be ...`` on the terminal and
``duration_s must be ...`` in a notebook.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from deskprof.errors import DeskprofError, OptionError


def defaults(option_type: type) -> dict[str, Any]:
    """Field → default of a dataclass option type (fields without a plain default are
    left out), so ``--help`` and the parser never drift from the library."""
    return {f.name: f.default for f in fields(option_type) if f.default is not MISSING}


def message(exc: DeskprofError, flags: dict[str, str]) -> str:
    """``exc``'s one line, option keywords replaced by the verb's flags."""
    return exc.for_flags(flags) if isinstance(exc, OptionError) else str(exc)


def add_app_package(parser: Any) -> None:
    """``--app-package NAME`` (repeatable), for the verbs that run the detectors."""
    parser.add_argument(
        "--app-package",
        action="append",
        default=[],
        metavar="NAME",
        help="a top-level package that is the service's own code, wherever installed "
        "(repeatable; the request handlers' packages always are)",
    )
