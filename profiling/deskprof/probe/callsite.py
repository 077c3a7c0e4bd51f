"""Where in the application a SQL statement came from.

The call site is the first stack frame outside SQLAlchemy, deskprof and the standard
library: for an ORM lazy load that is the line touching the attribute, which is what a
developer has to change. Each file name is classified once and cached, so the walk costs
a dictionary lookup per frame.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType

_SKIP: dict[str, bool] = {}
_THIRD_PARTY = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


def _package_dir(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) + os.sep if path else None


def _stdlib_dirs() -> tuple[str, ...]:
    found = {os.path.dirname(os.path.abspath(os.__file__)) + os.sep}
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found.add(os.path.abspath(path) + os.sep)
    return tuple(sorted(found))


_STDLIB = _stdlib_dirs()


def is_skipped(filename: str) -> bool:
    """True for frames that are not the application's: SQLAlchemy, deskprof, the stdlib,
    and generated code (``<string>``, ``<frozen ...>``)."""
    skip = _SKIP.get(filename)
    if skip is None:
        skip = _classify(filename)
        _SKIP[filename] = skip
    return skip


def _classify(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    path = os.path.abspath(filename)
    for name in ("sqlalchemy", "deskprof"):
        prefix = _package_dir(name)
        if prefix and path.startswith(prefix):
            return True
    for prefix in _STDLIB:
        if path.startswith(prefix):
            # a virtualenv's site-packages sits inside its "platstdlib": not stdlib
            rest = path[len(prefix) - 1 :]
            return not any(marker in rest for marker in _THIRD_PARTY)
    return False


def call_site(frame: FrameType | None = None) -> tuple[str, str]:
    """(``file:line``, function qualname) of the first application frame, or ("", "")."""
    if frame is None:
        frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        skip = _SKIP.get(filename)
        if skip is None:
            skip = is_skipped(filename)
        if not skip:
            return f"{filename}:{frame.f_lineno}", code.co_qualname
        frame = frame.f_back
    return "", ""
