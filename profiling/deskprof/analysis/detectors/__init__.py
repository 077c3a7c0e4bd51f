"""Every detector, one module each, registered in :data:`DETECTORS` (the order ``skipped``
lists them in).

A detector is a plain function of the contract's DataFrames returning
:class:`~deskprof.analysis.finding.Finding` objects, so a test can hand it ten rows built
by hand. Detectors share helpers only through public modules that import no detector
(:mod:`deskprof.analysis.sqltext`, :mod:`deskprof.analysis.stackframes`), never each
other; this package's ``__init__`` imports none of them (see :class:`Detector`).
"""

from __future__ import annotations

from deskprof.analysis.detectors.spec import Detector

QUERIES = ("queries", "requests")

DETECTORS: tuple[Detector, ...] = (
    Detector("n_plus_one", "n_plus_one:detect_n_plus_one", QUERIES, ("queries",)),
    Detector("slow_query", "slow_query:detect_slow_queries", QUERIES, ("queries",)),
    Detector(
        "write_contention",
        "write_contention:detect_write_contention",
        ("queries", "requests", "connections"),
        ("queries",),
        options=("parameters_kept",),
    ),
    Detector(
        "uncached_read",
        "uncached_read:detect_uncached_reads",
        QUERIES,
        ("queries",),
        options=("parameters_kept",),
    ),
    Detector(
        "deep_pagination",
        "deep_pagination:detect_deep_pagination",
        QUERIES,
        ("queries",),
        options=("parameters_kept",),
    ),
    Detector(
        "connection_churn",
        "connection_churn:detect_connection_churn",
        ("connections", "requests"),
        ("connections", "requests"),
    ),
    Detector(
        "missing_index",
        "missing_index:detect_missing_indexes",
        QUERIES,
        ("queries",),
        needs_explain=True,
        options=("parameters_kept", "database_url", "notes"),
    ),
    Detector(
        "weak_index",
        "weak_index:detect_weak_indexes",
        QUERIES,
        ("queries",),
        needs_explain=True,
        options=("parameters_kept", "database_url", "notes"),
    ),
    Detector(
        "cpu_hotspot",
        "cpu_hotspot:detect_cpu_hotspots",
        ("samples", "stacks", "requests"),
        ("samples", "stacks"),
        options=("rate_hz", "app_packages"),
    ),
    Detector(
        "memory_peak",
        "memory_peak:detect_memory_peaks",
        ("allocations", "stacks", "requests", "memory"),
        ("allocations", "stacks"),
        options=("app_packages",),
    ),
    Detector(
        "memory_growth",
        "memory_growth:detect_memory_growth",
        ("memory", "allocations", "stacks", "requests"),
        ("memory",),
        options=("app_packages",),
    ),
)

__all__ = ["DETECTORS", "Detector"]
