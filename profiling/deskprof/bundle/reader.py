"""Opening a capture bundle: the one way analyses, views and reports read captured data.

``open_capture(path)`` checks what can be checked cheaply up front (it is a bundle, its
schema version is one we read, every table the manifest counts is there and has an
intact Parquet footer) so a bad bundle fails at once with one line naming the file. Tables
are then read only when asked for, once, and come back as pandas DataFrames with exactly
the columns of :mod:`deskprof.bundle.schema` plus the derived columns the analysis layer adds
(``endpoint``, ``fingerprint``, ``attributed_by``...; see the properties). A table the
bundle lacks is an empty DataFrame with the right columns, so callers need no special case.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deskprof.bundle.manifest import Manifest
from deskprof.bundle.schema import MANIFEST, TABLES
from deskprof.errors import BundleError, first_line

# What open_capture gives for the stored stacks table: its frame ids resolved to labels
STACK_VIEW = ("stack_id", "frames", "leaf", "handler")

_EMPTY = {"int64": 0, "float64": 0.0, "string": "", "bool": False}


def _empty_table(name: str) -> pd.DataFrame:
    if name == "stacks":
        return pd.DataFrame(
            {
                "stack_id": pd.Series([], dtype="int64"),
                "frames": pd.Series([], dtype=object),
                "leaf": pd.Series([], dtype=str),
                "handler": pd.Series([], dtype=str),
            }
        )
    out = {}
    for col in TABLES[name]:
        if col.dtype.startswith("list<"):
            out[col.name] = pd.Series([], dtype=object)
        elif col.dtype == "string":
            out[col.name] = pd.Series([], dtype=str)
        else:
            out[col.name] = pd.Series([], dtype=col.dtype)
    return pd.DataFrame(out)


def conform(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with exactly the schema's columns of table ``name`` in schema order and
    dtypes (missing values filled with 0/""/False), and the columns that had to be added.

    Also used on frames built by hand (tests, log ingestion) so they look like a bundle's."""
    added = []
    out = {}
    n = len(frame)
    for col in TABLES[name]:
        if col.name in frame.columns:
            values = frame[col.name]
        else:
            added.append(col.name)
            values = pd.Series([None] * n, index=frame.index, dtype=object)
        if col.dtype.startswith("list<"):
            values = pd.Series(
                [list(v) if v is not None and not _is_na(v) else [] for v in values],
                index=frame.index,
                dtype=object,
            )
        elif col.dtype == "string":
            values = values.fillna("").astype(str)
        else:
            if values.isna().any():
                values = values.fillna(_EMPTY[col.dtype])
            values = values.astype(col.dtype)
        out[col.name] = values
    return pd.DataFrame(out, index=frame.index), added


def _is_na(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


class Capture:
    """One opened bundle. Construct with :func:`open_capture` or :meth:`Capture.open`.

    Attributes: ``path``, ``manifest`` (the parsed manifest.json), ``tables`` (the tables
    this bundle has), ``complete`` and ``partial_reasons`` (why it is partial: the
    capture's own reasons plus anything found while reading)."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest
        self.tables: list[str] = [n for n in TABLES if (path / f"{n}.parquet").is_file()]
        self._raw: dict[str, pd.DataFrame] = {}
        self._notes: list[str] = []

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Capture:
        """Validate the bundle at ``path`` and return it; raises :class:`BundleError`."""
        bundle = Path(path).expanduser()
        _check_bundle_dir(bundle)
        manifest = Manifest.read(bundle / MANIFEST)
        capture = cls(bundle, manifest)
        for name, count in manifest.counts.items():
            if name in TABLES and count and name not in capture.tables:
                raise BundleError(
                    f"{bundle / (name + '.parquet')} is missing but {MANIFEST} counts {count} "
                    f"{name} rows: the bundle was copied incompletely; copy it again"
                )
        for name in capture.tables:
            file = bundle / f"{name}.parquet"
            try:
                pq.read_metadata(file)
            except Exception as exc:
                raise BundleError(
                    f"{file} is truncated or corrupt ({first_line(exc)}); copy the bundle "
                    "again from the capture host"
                ) from None
        return capture

    # --- state ---------------------------------------------------------------------

    @property
    def partial_reasons(self) -> list[str]:
        reasons = []
        if not self.manifest.complete:
            reasons.extend(self.manifest.partial_reasons or ["capture did not finish"])
        return reasons + self._notes

    @property
    def complete(self) -> bool:
        return not self.partial_reasons

    @property
    def status(self) -> str:
        """``complete`` or ``partial`` as the capture ended (reading notes aside)."""
        return self.manifest.status

    @property
    def warnings(self) -> list[str]:
        return list(self.manifest.warnings)

    @property
    def cpu_rate_hz(self) -> float:
        """py-spy's sampling rate: one sample weighs ``1 / cpu_rate_hz`` seconds."""
        return self.manifest.cpu_rate_hz

    def __repr__(self) -> str:
        state = "complete" if self.complete else "partial"
        known = self.manifest.counts
        counts = ", ".join(f"{n}={known.get(n, '?')}" for n in self.tables)
        return f"<Capture {self.path} {state}: {counts}>"

    # --- raw tables --------------------------------------------------------------------

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` exactly as stored (schema columns and dtypes), read once.

        Prefer the properties: they add the derived columns."""
        if name not in TABLES:
            known = ", ".join(TABLES)
            raise BundleError(f"no table named {name!r} in the bundle schema; known: {known}")
        if name not in self._raw:
            self._raw[name] = self._read(name)
        return self._raw[name]

    def _read(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            return _empty_table(name)
        if name == "stacks":
            return self._read_stacks()
        file = self.path / f"{name}.parquet"
        frame = read_parquet(file).to_pandas()
        frame, added = conform(name, frame)
        if added:
            self._notes.append(f"{file.name} lacks columns {', '.join(added)} (filled empty)")
        return frame

    def _read_stacks(self) -> pd.DataFrame:
        """``stacks`` with ``frames`` as label lists: from frame ids and the ``frames``
        table (version 2), or stored as labels (version 1 bundles, migrated on read)."""
        from deskprof.bundle.stacks import stacks_from_arrow

        file = self.path / "stacks.parquet"
        try:
            stored = read_parquet(file)
        except BundleError:
            if self.manifest.schema_version == 1:
                raise BundleError(_v1_stacks_too_large(file)) from None
            raise
        if "frames" in stored.column_names:  # version 1 layout
            frame = stored.to_pandas()
            frame["frames"] = [list(f) if f is not None else [] for f in frame["frames"]]
        else:
            labels = self.path / "frames.parquet"
            if not labels.is_file():
                raise BundleError(
                    f"{labels} is missing: {file.name} points into it; copy the whole bundle"
                )
            frame = stacks_from_arrow(stored, read_parquet(labels))
        for column in ("leaf", "handler"):
            if column not in frame.columns:
                frame[column] = ""
        return frame[list(STACK_VIEW)]

    # --- tidy tables with derived columns ------------------------------------------

    @cached_property
    def requests(self) -> pd.DataFrame:
        """Schema columns + ``endpoint`` (``"GET /tickets/{ticket_id}"``)."""
        from deskprof.analysis.attribution import add_endpoint

        return add_endpoint(self.table("requests"))

    @cached_property
    def queries(self) -> pd.DataFrame:
        """Schema columns + ``fingerprint``, ``fingerprint_id``, ``operation`` and
        ``endpoint`` (of the request via ``request_id``; ``""`` outside requests)."""
        from deskprof.analysis.attribution import attribute_queries
        from deskprof.analysis.fingerprint import fingerprint_series

        queries = self.table("queries")
        queries = pd.concat([queries, fingerprint_series(queries["statement"])], axis=1)
        return attribute_queries(queries, self.requests)

    @cached_property
    def stacks(self) -> pd.DataFrame:
        """Schema columns; ``handler`` filled with the request handler found on the stack."""
        from deskprof.analysis.attribution import stack_handlers

        return stack_handlers(self.table("stacks"), self.requests)

    @cached_property
    def samples(self) -> pd.DataFrame:
        """Schema columns + ``endpoint``, ``request_id`` and ``attributed_by``
        (``"task"``: on an event loop, the request whose task was running;
        ``"stack"``: handler frame on the stack; ``"time"``: the request active on that
        pid/thread at that time; ``""``: none of these)."""
        from deskprof.analysis.attribution import attribute_samples

        return attribute_samples(self.table("samples"), self.stacks, self.requests)

    @cached_property
    def allocations(self) -> pd.DataFrame:
        """Schema columns + ``endpoint`` (by the handler frame on the allocation's stack)."""
        from deskprof.analysis.attribution import attribute_allocations

        return attribute_allocations(self.table("allocations"), self.stacks, self.requests)

    @property
    def memory(self) -> pd.DataFrame:
        return self.table("memory")

    @property
    def metrics(self) -> pd.DataFrame:
        return self.table("metrics")

    @property
    def workload(self) -> pd.DataFrame:
        return self.table("workload")

    @property
    def connections(self) -> pd.DataFrame:
        return self.table("connections")

    @property
    def db_statements(self) -> pd.DataFrame:
        return self.table("db_statements")

    @property
    def service_stats(self) -> pd.DataFrame:
        return self.table("service_stats")


def open_capture(path: str | os.PathLike[str] | Capture) -> Capture:
    """Open the bundle directory ``path`` (what ``deskprof capture`` wrote); an opened
    :class:`Capture` is returned as it is."""
    if isinstance(path, Capture):
        return path
    return Capture.open(path)


def read_columns(bundle: Path, name: str, columns: list[str]) -> pd.DataFrame:
    """Some columns of table ``name`` straight from its file, for the capture's own
    end-of-run checks (the bundle is not whole yet, so it is not opened)."""
    return read_parquet(bundle / f"{name}.parquet", columns).to_pandas()


def _check_bundle_dir(bundle: Path) -> None:
    if not bundle.is_dir():
        what = "is a file" if bundle.exists() else "does not exist"
        raise BundleError(
            f"{bundle} is not a capture bundle: it {what}; pass the directory "
            "deskprof capture wrote (data/captures/<id>)"
        )
    if not (bundle / MANIFEST).is_file():
        raise BundleError(
            f"{bundle} is not a capture bundle (no {MANIFEST}); pass the directory "
            "deskprof capture wrote (data/captures/<id>)"
        )


def _v1_stacks_too_large(file: Path) -> str:
    """Why a version 1 stacks table will not read: its size, from the footer alone."""
    meta = pq.ParquetFile(file).metadata
    frames = sum(meta.row_group(i).column(1).num_values for i in range(meta.num_row_groups))
    return (
        f"{file} is a version 1 stacks table of {meta.num_rows:,} stacks holding "
        f"{frames:,} frame labels, too large to read (deskprof before schema 2 let a forking "
        "server's worker stacks grow without bound); capture again with this deskprof, which "
        "samples each worker on its own and stores each frame once"
    )


def read_parquet(
    file: Path, columns: list[str] | None = None, *, whole: str = "the bundle"
) -> pa.Table:
    """The file (or only ``columns`` of it) as one Arrow table; a failure names the real
    cause in one line and says to copy ``whole`` (the directory it belongs to) again."""
    try:
        return pq.read_table(file, columns=columns)
    except OSError as exc:
        raise BundleError(
            f"{file} cannot be read ({first_line(exc)}): the file is damaged or was cut "
            f"short; copy {whole} again from the capture host"
        ) from None
    except Exception as exc:
        raise BundleError(
            f"{file} cannot be read by this deskprof ({type(exc).__name__}: "
            f"{first_line(exc)}); report it with the bundle's manifest.json"
        ) from None
