"""Differential flame graph: where a candidate capture spends more or less than a baseline.

Two captures differ in length and load, so raw sample counts do not compare. Each side is
normalised first: milliseconds of sampled thread time **per request** of the endpoint in
view (per request of any endpoint for the whole-capture view) when both captures have
requests, else **per capture second**. The graph takes the candidate's shape (widths are
its milliseconds; a toggle shows the baseline's, where removed code is still visible) and
colours each frame by how its total with callees changed: red = more in the candidate,
blue = less, grey = unchanged; saturation is the change relative to the frame's larger
side (new and vanished frames are fully coloured; width shows the magnitude).
:func:`flame_diff_table` gives the numbers behind the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deskprof.errors import DeskprofError
from deskprof.views.document import HtmlView, render_document
from deskprof.views.flametree import (
    STATE_CODES,
    STATES,
    FrameTrie,
    node_weights,
    page_data,
    sample_period_ms,
    stack_labels,
)

PER = ("auto", "request", "second")
TABLE_COLUMNS = [
    *("frame", "baseline_ms", "candidate_ms", "delta_ms", "change"),
    *("baseline_self_ms", "candidate_self_ms", "self_delta_ms"),
]
NEUTRAL, MORE, LESS = (232, 232, 232), (220, 40, 40), (40, 90, 220)


@dataclass
class FlameSource:
    """One side of a comparison: its samples and stacks, and what normalises them."""

    samples: pd.DataFrame
    stacks: pd.DataFrame
    requests: pd.DataFrame | None = None
    duration_s: float | None = None
    rate_hz: float | None = None
    label: str = ""

    @classmethod
    def of(cls, source: Any, label: str = "") -> FlameSource:
        """A ``FlameSource`` as is, or one read from an opened Capture."""
        if isinstance(source, FlameSource):
            return source
        if not (hasattr(source, "samples") and hasattr(source, "stacks")):
            raise DeskprofError(
                "compare two opened captures (deskprof.open_capture) or FlameSources"
            )
        manifest = getattr(source, "manifest", {}) or {}
        return cls(
            samples=source.samples,
            stacks=source.stacks,
            requests=getattr(source, "requests", None),
            duration_s=manifest.get("duration_s"),
            rate_hz=getattr(source, "cpu_rate_hz", None),
            label=label or _capture_name(source, manifest),
        )

    def request_counts(self) -> pd.Series:
        """Requests per endpoint (``"{method} {route}"``)."""
        if self.requests is None or self.requests.empty:
            return pd.Series([], dtype="int64")
        if "endpoint" in self.requests.columns:
            endpoints = self.requests["endpoint"].astype(str)
        else:
            method, route = self.requests["method"], self.requests["route"]
            endpoints = method.astype(str) + " " + route.astype(str)
        return endpoints.value_counts()

    def seconds(self) -> float:
        if self.duration_s:
            return float(self.duration_s)
        if self.samples.empty:
            return 0.0
        return float(self.samples["end_ns"].max() - self.samples["ts_ns"].min()) / 1e9


def _capture_name(source: Any, manifest: dict[str, Any]) -> str:
    label = (manifest.get("options") or {}).get("label") or manifest.get("label")
    path = getattr(source, "path", None)
    return str(label or (getattr(path, "name", "") if path is not None else ""))


def change_colour(baseline: float, candidate: float) -> str:
    """The fill for a frame that took ``baseline`` then ``candidate`` (normalised): grey
    when unchanged, towards red (more) or blue (less) by the change relative to the larger
    of the two, so a new or vanished frame is fully coloured and width shows magnitude."""
    delta = candidate - baseline
    larger = max(abs(baseline), abs(candidate))
    if not larger > 0 or delta == 0:
        return "rgb({},{},{})".format(*NEUTRAL)
    t = min(1.0, abs(delta) / larger)
    to = MORE if delta > 0 else LESS
    rgb = [math.floor(n + (m - n) * t + 0.5) for n, m in zip(NEUTRAL, to, strict=True)]
    return "rgb({},{},{})".format(*rgb)


def _unit(base: FlameSource, cand: FlameSource, per: str) -> str:
    if per not in PER:
        raise DeskprofError(f"per must be one of {', '.join(PER)}, not {per!r}")
    has_requests = not base.request_counts().empty and not cand.request_counts().empty
    if per == "request" and not has_requests:
        raise DeskprofError(
            "per='request' needs requests in both captures (capture with the sql source), "
            "or use per='second'"
        )
    return "request" if per == "request" or (per == "auto" and has_requests) else "second"


def _factors(side: FlameSource, unit: str, endpoints: list[str]) -> dict[str, Any]:
    """Milliseconds per sample after normalising: for the whole view and per endpoint
    (0 where an endpoint had no requests on this side, so it cannot be normalised)."""
    period = sample_period_ms(side.samples, side.rate_hz)
    if unit == "second":
        seconds = side.seconds()
        f = period / seconds if seconds > 0 else 0.0
        return {"all": f, "endpoint": [f] * len(endpoints)}
    counts = side.request_counts()
    total = int(counts.sum())
    return {
        "all": period / total if total else 0.0,
        "endpoint": [period / int(counts[e]) if counts.get(e, 0) else 0.0 for e in endpoints],
    }


def diff_data(
    baseline: Any,
    candidate: Any,
    *,
    per: str = "auto",
    lines: bool = True,
    short_paths: bool = True,
) -> dict[str, Any]:
    """What the differential page embeds: one trie over both captures' stacks (matched by
    frame labels, since stack ids are per bundle), raw sample weights per (node,
    endpoint, state) for each side, and the factors that turn them into milliseconds
    per request (or per second)."""
    base, cand = FlameSource.of(baseline), FlameSource.of(candidate)
    unit = _unit(base, cand, per)
    trie = FrameTrie()
    sides = []
    for side in (base, cand):
        labels = stack_labels(side.stacks, lines=lines, short_paths=short_paths)
        sides.append(node_weights(side.samples, labels, trie))
    rows = pd.merge(
        sides[0].rename(columns={"w": "base"}),
        sides[1].rename(columns={"w": "cand"}),
        on=["node", "endpoint", "state"],
        how="outer",
    ).fillna({"base": 0, "cand": 0})
    weight = rows.groupby("endpoint")[["base", "cand"]].sum().sum(axis=1)
    endpoints = [str(e) for e in weight.sort_values(ascending=False).index]
    return {
        **page_data(trie, rows, endpoints, {"base": "base", "cand": "cand"}),
        "scale": {"base": _factors(base, unit, endpoints), "cand": _factors(cand, unit, endpoints)},
        "per": unit,
        "unit_label": f"ms per {unit}",
        "labels": {"base": base.label, "cand": cand.label},
    }


def _selected_rows(data: dict[str, Any], endpoint: str | None, state: str) -> pd.DataFrame:
    if state not in STATES:
        raise DeskprofError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    rows = pd.DataFrame(data["rows"])
    i = -1
    if endpoint is not None:
        if endpoint not in data["endpoints"]:
            raise DeskprofError(f"no samples for endpoint {endpoint!r} in either capture")
        i = data["endpoints"].index(endpoint)
        rows = rows[rows["endpoint"] == i]
    if state != "both":
        rows = rows[rows["state"] == STATE_CODES[state]]
    for side in ("base", "cand"):
        scale = data["scale"][side]
        factor = scale["all"] if endpoint is None else scale["endpoint"][i]
        rows[side + "_ms"] = rows[side] * factor
    return rows


def diff_frame(
    baseline: Any,
    candidate: Any,
    *,
    endpoint: str | None = None,
    state: str = "both",
    per: str = "auto",
    lines: bool = True,
    short_paths: bool = True,
) -> pd.DataFrame:
    """Every calling context of the comparison, as the page draws it for this endpoint
    and state: ``node``, ``parent``, ``frame``, ``depth``, ``baseline_ms``, ``candidate_ms``
    (with callees), ``delta_ms``, ``baseline_self_ms``, ``candidate_self_ms``, ``colour``."""
    data = diff_data(baseline, candidate, per=per, lines=lines, short_paths=short_paths)
    rows = _selected_rows(data, endpoint, state)
    trie = data["trie"]
    n = len(trie["up"])
    parent = np.arange(n) - np.asarray(trie["up"])
    out = {}
    for side in ("base", "cand"):
        self_ms = np.bincount(rows["node"], weights=rows[side + "_ms"], minlength=n)
        total = self_ms.copy()
        for k in range(n - 1, 0, -1):
            total[parent[k]] += total[k]
        out[side] = (self_ms, total)
    depth = np.zeros(n, dtype="int64")
    for k in range(1, n):
        depth[k] = depth[parent[k]] + 1
    frame = pd.DataFrame(
        {
            "node": np.arange(n),
            "parent": np.where(np.arange(n) == 0, -1, parent),
            "frame": [trie["names"][i] for i in trie["name"]],
            "depth": depth,
            "baseline_ms": out["base"][1],
            "candidate_ms": out["cand"][1],
            "baseline_self_ms": out["base"][0],
            "candidate_self_ms": out["cand"][0],
        }
    )
    frame["delta_ms"] = frame["candidate_ms"] - frame["baseline_ms"]
    frame = frame[(frame["baseline_ms"] > 0) | (frame["candidate_ms"] > 0)].copy()
    frame["colour"] = [
        change_colour(b, c)
        for b, c in zip(frame["baseline_ms"], frame["candidate_ms"], strict=True)
    ]
    frame.attrs.update(per=data["per"], unit=data["unit_label"])
    return frame.reset_index(drop=True)


def flame_diff_table(
    baseline: Any,
    candidate: Any,
    *,
    endpoint: str | None = None,
    state: str = "both",
    per: str = "auto",
    top: int | None = 20,
    lines: bool = True,
    short_paths: bool = True,
) -> pd.DataFrame:
    """The frames whose time changed most, summed over every calling context (a frame on
    a stack twice, by recursion, counts once): ``frame``, ``baseline_ms``,
    ``candidate_ms``, ``delta_ms``, ``change`` (relative; NaN when new), and the same for
    self time; ms per request (or per second: see ``attrs["per"]``), largest change first."""
    data = diff_data(baseline, candidate, per=per, lines=lines, short_paths=short_paths)
    rows = _selected_rows(data, endpoint, state)
    trie = data["trie"]
    parent = np.arange(len(trie["up"])) - np.asarray(trie["up"])
    names, name_of = trie["names"], trie["name"]
    inclusive: dict[str, list[float]] = {}
    own: dict[str, list[float]] = {}
    by_node = rows.groupby("node")[["base_ms", "cand_ms"]].sum()
    for node, (b, c) in zip(by_node.index, by_node.to_numpy(), strict=True):
        seen = set()
        k = int(node)
        leaf = names[name_of[k]]
        slot = own.setdefault(leaf, [0.0, 0.0])
        slot[0] += b
        slot[1] += c
        while k > 0:
            name = names[name_of[k]]
            if name not in seen:
                seen.add(name)
                slot = inclusive.setdefault(name, [0.0, 0.0])
                slot[0] += b
                slot[1] += c
            k = int(parent[k])
    table = pd.DataFrame(
        [(name, b, c, *own.get(name, (0.0, 0.0))) for name, (b, c) in inclusive.items()],
        columns=["frame", "baseline_ms", "candidate_ms", "baseline_self_ms", "candidate_self_ms"],
    )
    table["delta_ms"] = table["candidate_ms"] - table["baseline_ms"]
    table["self_delta_ms"] = table["candidate_self_ms"] - table["baseline_self_ms"]
    base = table["baseline_ms"].where(table["baseline_ms"] > 0)
    table["change"] = table["delta_ms"] / base
    table = table.reindex(table["delta_ms"].abs().sort_values(ascending=False, kind="stable").index)
    table = table[TABLE_COLUMNS].reset_index(drop=True)
    if top is not None:
        table = table.head(top)
    table.attrs.update(per=data["per"], unit=data["unit_label"])
    return table


def diff_flamegraph_html(
    baseline: Any,
    candidate: Any,
    *,
    title: str = "Differential flame graph",
    per: str = "auto",
    state: str = "cpu",
    lines: bool = True,
    short_paths: bool = True,
    inverted: bool = True,
) -> str:
    """One standalone HTML page comparing two captures (opened Captures or
    :class:`FlameSource`), with the same controls as the flame graph plus a
    candidate/baseline shape toggle."""
    if state not in STATES:
        raise DeskprofError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    base, cand = FlameSource.of(baseline), FlameSource.of(candidate)
    data = diff_data(base, cand, per=per, lines=lines, short_paths=short_paths)
    n_base, n_cand = (int(s.samples["n_samples"].sum()) for s in (base, cand))
    parts = [
        f"baseline {base.label or ''}: {n_base:,} samples".replace(" :", ":"),
        f"candidate {cand.label or ''}: {n_cand:,} samples".replace(" :", ":"),
        f"normalised to {data['unit_label']}",
    ]
    if data["per"] == "request":
        parts.append(
            f"{int(base.request_counts().sum()):,} vs {int(cand.request_counts().sum()):,} requests"
        )
    data.update(inverted=inverted, initial={"endpoint": -1, "state": state})
    return render_document(mode="diff", title=title, subtitle=" · ".join(parts), data=data)


def diff_flamegraph(
    baseline: Any, candidate: Any, *, height: int = 680, **options: Any
) -> HtmlView:
    """The differential flame graph for a notebook (displays itself; ``.save(path)``)."""
    return HtmlView(diff_flamegraph_html(baseline, candidate, **options), height=height)
