"""Analyses of a capture bundle: open it, attribute, digest, summarise per endpoint.

Everything reads bundles through :class:`Capture`; the analyses are plain functions from
DataFrames to DataFrames, so a notebook or a test can hand them a ten-row frame.
"""

from deskprof.analysis.capture import Capture, open_capture
from deskprof.analysis.fingerprint import fingerprint, fingerprint_id

__all__ = ["Capture", "fingerprint", "fingerprint_id", "open_capture"]
