"""Run a callback right after a module has been imported (post-import hooks).

``deskprof run`` instruments an application it cannot edit: when ``sqlalchemy``,
``starlette.applications``, ``fastapi.applications`` or ``flask.app`` finishes executing,
the probe patches it, before application code can use it. A finder first on
``sys.meta_path`` lets the other finders locate the module as usual and wraps only the
loader's ``exec_module``; the original loader is put back on the module once it has run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

log = logging.getLogger("deskprof.probe")

Callback = Callable[[ModuleType], None]
_HOOKS: dict[str, list[Callback]] = {}


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if module is not None and not getattr(spec, "_initializing", False):
        _run(callback, module)
        return
    _HOOKS.setdefault(name, []).append(callback)
    if not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())


def _run(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception:  # the application's import must succeed whatever happens here
        log.warning("deskprof probe: could not instrument %s", module.__name__, exc_info=True)


class _PostImportFinder:
    """Finds nothing itself: asks the finders after it, then wraps the loader."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in _HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader, fullname)
        return spec

    def invalidate_caches(self) -> None:
        pass


class _HookedLoader:
    """Delegates to the real loader; after ``exec_module`` runs the module's callbacks."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        for callback in _HOOKS.pop(self._name, []):
            _run(callback, module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_data...
        return getattr(self._loader, name)
