"""deskprof: CPU, memory and SQL of OpenDesk, tied to the endpoint that caused them.

The handful of names a notebook needs::

    from deskprof.capturing import capture          # run a capture (launch or attach)
    from deskprof import open_capture, findings, flamegraph, Experiment, Variant
    from deskprof.reporting import report            # share it as one HTML file

``capture`` and ``report`` live in their subpackages because the subpackages carry the
same names. The names here are loaded on first use: the in-process probe
(``deskprof.probe``) lives in this package too and runs inside the profiled service,
where importing pandas, matplotlib or Locust would cost start-up time and memory the
target should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deskprof.errors import DeskprofError
from deskprof.lazy import lazy_getattr

__version__ = "0.1.0"

if TYPE_CHECKING:
    from deskprof.analysis.findings import detect_all as findings
    from deskprof.bundle.reader import Capture, open_capture
    from deskprof.capturing.session import capture
    from deskprof.experiment import Experiment, Variant, load_result
    from deskprof.reporting import report
    from deskprof.views import diff_flamegraph, flamegraph

_LAZY = {
    "capture": ("deskprof.capturing.session", "capture"),
    "report": ("deskprof.reporting", "report"),
    "open_capture": ("deskprof.bundle.reader", "open_capture"),
    "Capture": ("deskprof.bundle.reader", "Capture"),
    "findings": ("deskprof.analysis.findings", "detect_all"),
    "compare_captures": ("deskprof.analysis.capture_compare", "compare_captures"),
    "flamegraph": ("deskprof.views", "flamegraph"),
    "diff_flamegraph": ("deskprof.views", "diff_flamegraph"),
    "Experiment": ("deskprof.experiment", "Experiment"),
    "Variant": ("deskprof.experiment", "Variant"),
    "load_result": ("deskprof.experiment", "load_result"),
    "Design": ("deskprof.experiment", "Design"),
    "endpoint_summary": ("deskprof.analysis", "endpoint_summary"),
    "query_profile": ("deskprof.analysis", "query_profile"),
    "explain": ("deskprof.analysis.explain", "explain"),
}

__all__ = [
    "Capture",
    "DeskprofError",
    "Experiment",
    "Variant",
    "__version__",
    "capture",
    "compare_captures",
    "diff_flamegraph",
    "findings",
    "flamegraph",
    "load_result",
    "open_capture",
    "report",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
