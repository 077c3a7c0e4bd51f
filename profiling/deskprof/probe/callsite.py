"""Where in the application a SQL statement came from.

The call site is the first stack frame outside SQLAlchemy (and the ORM layers on it),
deskprof, the template engines and the standard library: for an ORM lazy load that is
the line touching the attribute, which is what a developer has to change. Each file name
is classified once and cached, so the walk costs a dictionary lookup per frame.

Two places a plain walk cannot see:

- **Templates.** A lazy load inside a Jinja2 template runs in the template's compiled
  code, whose frame carries the template (``__jinja_template__`` in its globals): the
  call site is the template file and the *template's* line (Jinja2's own line map), not
  ``jinja2/environment.py``.
- **Async SQLAlchemy.** The ORM runs the statement in a greenlet whose stack ends at
  the greenlet's start; the coroutine that awaited it is suspended in the parent
  greenlet. When a greenlet's frames hold no application frame, the walk goes on from
  where its parent switched away (``parent.gr_frame``): the awaiting coroutine's line.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType

_SKIP: dict[str, bool] = {}
# packages whose frames are never the call site: the ORM and its layers, template engines
_LIBRARIES = ("sqlalchemy", "sqlmodel", "flask_sqlalchemy", "jinja2", "markupsafe", "deskprof")
_MAX_GREENLETS = 4  # parents walked at most (a greenlet's parent chain is short)
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
    for name in _LIBRARIES:
        prefix = _package_dir(name)
        if prefix and path.startswith(prefix):
            return True
    for prefix in _STDLIB:
        if path.startswith(prefix):
            # a virtualenv's site-packages sits inside its "platstdlib": not stdlib
            rest = path[len(prefix) - 1 :]
            return not any(marker in rest for marker in _THIRD_PARTY)
    return False


def _walk(frame: FrameType | None) -> tuple[str, str] | None:
    """The first application frame from ``frame`` outwards, or None."""
    while frame is not None:
        code = frame.f_code
        filename = code.co_filename
        skip = _SKIP.get(filename)
        if skip is None:
            skip = is_skipped(filename)
        if not skip or filename == "<template>":
            template = frame.f_globals.get("__jinja_template__")
            if template is not None:
                return _template_site(template, frame.f_lineno)
            if not skip:
                return f"{filename}:{frame.f_lineno}", code.co_qualname
        frame = frame.f_back
    return None


def _template_site(template: object, lineno: int) -> tuple[str, str]:
    """A Jinja2 template frame as ``template file:template line``."""
    name = getattr(template, "name", None) or "<template>"
    filename = getattr(template, "filename", None) or name
    try:
        line = template.get_corresponding_lineno(lineno)  # type: ignore[attr-defined]
    except Exception:  # an engine version without the map: the compiled line
        line = lineno
    return f"{filename}:{line}", f"template {name}"


def _parent_frames() -> list[FrameType]:
    """Where each parent greenlet of the current one switched away, nearest first."""
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return []
    frames: list[FrameType] = []
    try:
        parent = greenlet.getcurrent().parent
        while parent is not None and len(frames) < _MAX_GREENLETS:
            if parent.gr_frame is not None:
                frames.append(parent.gr_frame)
            parent = parent.parent
    except Exception:  # never let the probe fail a query
        return frames
    return frames


def _started_by_sqlalchemy(frame: FrameType | None) -> bool:
    """Whether this stack's outermost frame is SQLAlchemy's (its greenlet_spawn runs the
    ORM in a greenlet): only then is the parent greenlet the awaiting coroutine, not a
    scheduler's hub (gevent) that would name its own loop."""
    outermost = None
    while frame is not None:
        outermost, frame = frame, frame.f_back
    if outermost is None:
        return False
    prefix = _package_dir("sqlalchemy")
    return bool(prefix) and os.path.abspath(outermost.f_code.co_filename).startswith(prefix)


def call_site(frame: FrameType | None = None) -> tuple[str, str]:
    """(``file:line``, function qualname) of the first application frame, or ("", "")."""
    if frame is None:
        frame = sys._getframe(1)
    found = _walk(frame)
    if found is None and _started_by_sqlalchemy(frame):
        for parent in _parent_frames():
            found = _walk(parent)
            if found is not None:
                break
    return found or ("", "")
