"""Analyses of a capture bundle: open it, attribute, digest, summarise per endpoint.

Everything reads bundles through :class:`Capture`; the analyses are plain functions from
DataFrames to DataFrames, so a notebook or a test can hand them a ten-row frame.
"""

from deskprof.analysis.digest import latency_histogram, overall_stats, query_profile
from deskprof.analysis.endpoints import endpoint_summary
from deskprof.analysis.findings import Finding, Thresholds, detect_all
from deskprof.analysis.fingerprint import fingerprint, fingerprint_id
from deskprof.bundle.reader import Capture, open_capture

__all__ = [
    "Capture",
    "Finding",
    "Thresholds",
    "detect_all",
    "endpoint_summary",
    "fingerprint",
    "fingerprint_id",
    "latency_histogram",
    "open_capture",
    "overall_stats",
    "query_profile",
]
