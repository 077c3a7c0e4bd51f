"""The typed ``manifest.json`` of a capture bundle.

The manifest says what was captured, how, on which clock, and whether it is whole. It
was an untyped dict read by key all over the tree; :class:`Manifest` names every
top-level field once, with its type, and keeps unknown fields (a newer deskprof's) so a
bundle read and rewritten loses nothing. The nested sections (``sources``, ``overhead``,
``clock``, ``integrity``...) stay JSON objects: each source writes its own.

A :class:`Manifest` is also a read-only mapping over its JSON form, so
``manifest["status"]`` reads the file's key as it is written.

Standard library only, like :mod:`deskprof.bundle.schema`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from deskprof.bundle.schema import (
    MANIFEST,
    OLDEST_READABLE_VERSION,
    SCHEMA_VERSION,
    STATUS_COMPLETE,
    STATUS_PARTIAL,
)
from deskprof.errors import BundleError, first_line

DEFAULT_CPU_RATE_HZ = 100.0
# fields left out of the file until the capture writes them
_UNTIL_WRITTEN = frozenset(
    {"start_ns", "end_ns", "duration_s", "host", "tools", "options", "target", "clock"}
    | {"sources", "overhead", "integrity"}
)


@dataclass
class Manifest(Mapping[str, Any]):
    """Every top-level field of ``manifest.json``; ``extra`` keeps fields this version
    does not know."""

    schema_version: int = SCHEMA_VERSION
    created_ns: int = field(default_factory=time.time_ns)
    status: str = STATUS_PARTIAL
    partial_reasons: list[str] = field(default_factory=lambda: ["capture in progress"])
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    start_ns: int | None = None
    end_ns: int | None = None
    duration_s: float | None = None
    host: dict[str, Any] = field(default_factory=dict)
    # versions of the tools that captured: deskprof's own version and revision are here,
    # never in ``target`` (the target's revision is the target's)
    tools: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    workload: dict[str, Any] | None = None
    target: dict[str, Any] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    overhead: dict[str, Any] = field(default_factory=dict)
    integrity: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # --- typed readings of the option block ----------------------------------------

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    @property
    def label(self) -> str:
        return str(self.options.get("label") or self.extra.get("label") or "")

    @property
    def keep_parameters(self) -> bool | None:
        kept = self.options.get("keep_parameters")
        return None if kept is None else bool(kept)

    @property
    def cpu_rate_hz(self) -> float:
        """py-spy's sampling rate: one sample weighs ``1 / cpu_rate_hz`` seconds."""
        rate = self.options.get("cpu_rate_hz")
        try:
            return float(rate) if rate and float(rate) > 0 else DEFAULT_CPU_RATE_HZ
        except (TypeError, ValueError):
            return DEFAULT_CPU_RATE_HZ

    def source(self, name: str) -> dict[str, Any]:
        """The section source ``name`` wrote (``{}`` when it did not run)."""
        section = self.sources.get(name)
        return section if isinstance(section, dict) else {}

    # --- JSON ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON form. A section appears once something is in it, as in the files
        earlier versions wrote: readers (and people watching a capture's manifest) can
        tell "not yet" from "empty"."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in _UNTIL_WRITTEN and value in (None, {})):
                continue
            out[f.name] = value
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Manifest:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in document.items() if k in known}
        extra = {k: v for k, v in document.items() if k not in known}
        for name, empty in (("partial_reasons", []), ("warnings", []), ("counts", {})):
            if values.get(name) is None:
                values[name] = empty
        for name in ("host", "tools", "options", "target", "clock", "sources", "overhead"):
            if not isinstance(values.get(name), dict):
                values[name] = {}
        if not isinstance(values.get("integrity"), dict):
            values["integrity"] = {}
        return cls(**values, extra=extra)

    @classmethod
    def read(cls, file: Path) -> Manifest:
        """The manifest at ``file``, checked: JSON object, a schema version we read."""
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(
                f"{file} is not readable JSON ({first_line(exc)}); copy the bundle again"
            ) from None
        if not isinstance(document, dict):
            raise BundleError(f"{file} is not a capture manifest (not a JSON object)")
        _check_version(file, document.get("schema_version"))
        return cls.from_json(document)

    def write(self, directory: Path) -> None:
        """Write atomically (temporary file, then rename) into bundle ``directory``."""
        target = directory / MANIFEST
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, default=str, sort_keys=True))
        tmp.replace(target)

    # --- read-only mapping over the JSON form ---------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


def _check_version(file: Path, version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise BundleError(
            f"{file} has an unknown schema_version {version!r}; this deskprof reads version "
            f"{SCHEMA_VERSION}"
        )
    if version > SCHEMA_VERSION:
        raise BundleError(
            f"{file} has schema_version {version}, newer than this deskprof reads "
            f"({SCHEMA_VERSION}); upgrade deskprof"
        )
    if version < OLDEST_READABLE_VERSION:
        raise BundleError(
            f"{file} has schema_version {version}, older than this deskprof reads "
            f"({OLDEST_READABLE_VERSION}-{SCHEMA_VERSION}); open it with the deskprof "
            "version that wrote it"
        )
