"""Compatibility names for code written against the old profile-detector module.

The detectors are now one module each under :mod:`deskprof.analysis.detectors`, the stack
classification is :mod:`deskprof.analysis.stackframes` and the frame parser is
:func:`deskprof.bundle.frames.parse_frame`. ``deskprof.lab`` still imports
``is_application``, ``split_frame`` and ``owner_frame`` from here; new code should import
from the modules above (this one only re-exports them).
"""

from __future__ import annotations

from deskprof.analysis.detectors.cpu_hotspot import detect_cpu_hotspots
from deskprof.analysis.detectors.memory_growth import detect_memory_growth
from deskprof.analysis.detectors.memory_peak import detect_memory_peaks
from deskprof.analysis.stackframes import cpu_kind, is_application, is_database_call, owner_frame
from deskprof.bundle.frames import parse_frame as split_frame

__all__ = [
    "cpu_kind",
    "detect_cpu_hotspots",
    "detect_memory_growth",
    "detect_memory_peaks",
    "is_application",
    "is_database_call",
    "owner_frame",
    "split_frame",
]
