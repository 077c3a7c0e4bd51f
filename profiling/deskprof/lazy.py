"""Names a package exports but imports only when first used (PEP 562 ``__getattr__``).

``deskprof`` must stay cheap to import (the probe inside the target imports the package),
and ``deskprof.lab`` re-exports figures a notebook may never draw; both list their names
as ``{name: (module, attribute)}`` and get their ``__getattr__`` from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_getattr(
    package: str, names: Mapping[str, tuple[str, str]], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``names[name]`` on first use and caches it in
    ``namespace`` (the package's ``globals()``), so the next access is a plain lookup."""

    def __getattr__(name: str) -> Any:
        if name in names:
            module, attribute = names[name]
            value = getattr(import_module(module), attribute)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
