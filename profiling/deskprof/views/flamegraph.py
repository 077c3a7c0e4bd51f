"""The interactive CPU flame graph: one self-contained HTML page, or a notebook display.

Rendering is d3-flame-graph (vendored in ``assets/``, see its README); this module decides
what data the page carries. To keep a long capture's page small and every filter instant,
the page does not carry one tree per endpoint and state: it carries the trie of calling
contexts once and a weight per (context, endpoint, state), and the browser sums the rows
the reader selects. Filters given here (endpoint, request, time window) narrow the data
before it is embedded; the endpoint selector and the on-CPU/waiting toggle work in the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from deskprof.errors import DeskprofError
from deskprof.views.document import HtmlView, render_document
from deskprof.views.flametree import (
    STATES,
    FrameTrie,
    filter_samples,
    node_weights,
    page_data,
    sample_period_ms,
    stack_labels,
)


def profile_data(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    *,
    lines: bool = True,
    short_paths: bool = True,
    processes: bool = False,
) -> dict[str, Any]:
    """What the page embeds: ``trie`` (names, parent, name per node), ``endpoints``
    (labels, heaviest first) and ``rows`` (parallel lists node, endpoint, state, weight:
    samples of that stack on that endpoint in that state)."""
    labels = stack_labels(stacks, lines=lines, short_paths=short_paths, processes=processes)
    trie = FrameTrie()
    rows = node_weights(samples, labels, trie)
    ranking = rows.groupby("endpoint")["w"].sum().sort_values(ascending=False)
    endpoints = [str(e) for e in ranking.index]
    return page_data(trie, rows, endpoints, {"weight": "w"})


def _window_text(start_ns: int | None, end_ns: int | None) -> str:
    def at(ns: int) -> str:
        return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]

    if start_ns is None and end_ns is None:
        return ""
    lo = at(start_ns) if start_ns is not None else "start"
    hi = at(end_ns) if end_ns is not None else "end"
    return f"window {lo} to {hi} UTC"


def flamegraph_html(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    *,
    title: str = "CPU flame graph",
    endpoint: str | list[str] | None = None,
    request_id: str | list[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    state: str = "cpu",
    rate_hz: float | None = None,
    lines: bool = True,
    short_paths: bool = True,
    processes: bool = False,
    inverted: bool = True,
) -> str:
    """One standalone HTML document (no network) with the flame graph of ``samples``.

    ``endpoint``, ``request_id`` and the ``[start_ns, end_ns)`` window filter the samples
    before they are embedded (see :func:`~deskprof.views.flametree.filter_samples`);
    ``state`` only picks the toggle's initial position (the page carries all three); it
    starts on ``cpu`` because idle threads waiting for work would otherwise fill the graph.
    ``rate_hz`` (the capture's sampling rate) turns samples into time in tooltips;
    ``processes`` keeps py-spy's per-process root frames (by default workers merge);
    ``inverted`` draws the root at the top (an icicle) so it sits next to the controls.
    Page hooks: ``#fg-search``, ``#fg-reset``, ``#fg-endpoint``, ``input[name=fg-state]``,
    ``#fg-matched`` and one ``g.frame[data-name]`` per frame drawn.
    """
    if state not in STATES:
        raise DeskprofError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    kept = filter_samples(
        samples, endpoint=endpoint, request_id=request_id, start_ns=start_ns, end_ns=end_ns
    )
    data = profile_data(kept, stacks, lines=lines, short_paths=short_paths, processes=processes)
    period_ms = sample_period_ms(samples, rate_hz)
    total = int(kept["n_samples"].sum()) if len(kept) else 0
    threads = kept[["pid", "thread_id"]].drop_duplicates().shape[0] if len(kept) else 0
    parts = [
        f"{total:,} samples (on CPU and waiting)",
        f"{1000 / period_ms:.0f} Hz" + ("" if rate_hz else " (measured)"),
        f"{kept['pid'].nunique() if len(kept) else 0} processes, {threads} threads",
    ]
    if endpoint is not None:
        parts.append(f"endpoint {endpoint if isinstance(endpoint, str) else ', '.join(endpoint)}")
    if request_id is not None:
        ids = [request_id] if isinstance(request_id, str) else list(request_id)
        parts.append(f"request {ids[0]}" if len(ids) == 1 else f"{len(ids)} requests")
    if window := _window_text(start_ns, end_ns):
        parts.append(window)
    parts.append("wall time per thread: 'waiting' is a leaf-frame classification")
    data.update(
        period_ms=period_ms,
        inverted=inverted,
        initial={"endpoint": -1, "state": state},
    )
    return render_document(mode="profile", title=title, subtitle=" · ".join(parts), data=data)


def _from_capture(source: Any, stacks: pd.DataFrame | None, options: dict[str, Any]) -> tuple:
    """Lets notebooks write ``flamegraph(cap)`` for ``flamegraph(cap.samples, cap.stacks)``."""
    if stacks is None:
        if not (hasattr(source, "samples") and hasattr(source, "stacks")):
            raise DeskprofError(
                "flamegraph() needs (samples, stacks) DataFrames or an opened capture"
            )
        rate = getattr(source, "cpu_rate_hz", None)
        if rate and "rate_hz" not in options:
            options["rate_hz"] = float(rate)
        return source.samples, source.stacks
    return source, stacks


def flamegraph(
    samples: Any, stacks: pd.DataFrame | None = None, *, height: int = 640, **options: Any
) -> HtmlView:
    """The flame graph for a notebook: displays itself (an isolated iframe) and has
    ``.save(path)`` and ``.html``. Takes ``(samples, stacks)`` or a Capture, and the
    keyword options of :func:`flamegraph_html`."""
    samples, stacks = _from_capture(samples, stacks, options)
    return HtmlView(flamegraph_html(samples, stacks, **options), height=height)
