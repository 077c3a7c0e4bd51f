"""Views of a capture: flame graphs (HTML and notebook), differential flame graphs,
seaborn figures, and exports to speedscope and Perfetto (Chrome trace)."""

from deskprof.views.diff_flamegraph import (
    FlameSource,
    change_colour,
    diff_flamegraph,
    diff_flamegraph_html,
    diff_frame,
    flame_diff_table,
)
from deskprof.views.document import HtmlView
from deskprof.views.export import (
    chrome_trace_events,
    speedscope_document,
    to_chrome_trace,
    to_speedscope,
)
from deskprof.views.figures import (
    findings_summary_plot,
    latency_ecdf,
    query_profile_plot,
    timeline,
    verdict_ratio_plot,
)
from deskprof.views.flamegraph import flamegraph, flamegraph_html, profile_data
from deskprof.views.flametree import FlameNode, filter_samples, flame_tree

__all__ = [
    "FlameNode",
    "FlameSource",
    "HtmlView",
    "change_colour",
    "chrome_trace_events",
    "diff_flamegraph",
    "diff_flamegraph_html",
    "diff_frame",
    "filter_samples",
    "findings_summary_plot",
    "flame_diff_table",
    "flame_tree",
    "flamegraph",
    "flamegraph_html",
    "latency_ecdf",
    "profile_data",
    "query_profile_plot",
    "speedscope_document",
    "timeline",
    "to_chrome_trace",
    "to_speedscope",
    "verdict_ratio_plot",
]
