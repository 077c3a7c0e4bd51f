"""From CPU samples to a flame-graph tree: filtering, frame labels, the tree, its compact form.

Every flame-graph view (HTML, differential, speedscope) starts here, so they agree on what
a frame is and what a filter keeps. A sample row is a run of ``n_samples`` identical
stacks on one thread; its stack comes from ``stacks.frames`` (root first, each frame
``"function (file:line)"``). Weights are sample counts; one sample is one sampling period
of wall time on that thread (``state`` says whether it ran or waited).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from deskprof.bundle.frames import format_frame, parse_frame
from deskprof.errors import DeskprofError

STATES = ("both", "cpu", "wait")
STATE_CODES = {"cpu": 0, "wait": 1}  # how the HTML views encode a run's state
ROOT_NAME = "all"
UNKNOWN_STACK = "[stack not in the stacks table]"

_STDLIB = re.compile(r"^.*/lib/python\d+\.\d+t?/")
# py-spy --subprocesses puts one 'process PID:"command line" (:0)' frame at each root
_PROCESS_FRAME = re.compile(r'^process \d+:".*" \(:?\d*\)$')


def short_frame(label: str, *, lines: bool = True, short_paths: bool = True) -> str:
    """The label a person reads: installed packages and the standard library lose their
    directory prefix (``sqlalchemy/orm/query.py``), and ``lines=False`` drops the line so
    every line of a function folds into one frame."""
    function, file, line = parse_frame(label)
    if not file and line is None:
        return label
    if short_paths:
        for marker in ("/site-packages/", "/dist-packages/"):
            if marker in file:
                file = file.rsplit(marker, 1)[1]
                break
        else:
            file = _STDLIB.sub("", file)
    return format_frame(function, file, line if lines else None)


def sample_endpoints(samples: pd.DataFrame) -> pd.Series:
    """The endpoint of each sample run (``""`` when unattributed or not yet attributed)."""
    if "endpoint" in samples.columns:
        return samples["endpoint"].fillna("").astype(str)
    return pd.Series("", index=samples.index, dtype=object)


def _as_set(value: str | Iterable[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def filter_samples(
    samples: pd.DataFrame,
    *,
    endpoint: str | Iterable[str] | None = None,
    request_id: str | Iterable[str] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    state: str = "both",
) -> pd.DataFrame:
    """The sample runs a flame graph of these filters should weigh.

    ``endpoint``/``request_id`` keep runs attributed to them (the analysis layer's
    columns); ``state`` is ``cpu``, ``wait`` or ``both``. A time window keeps the part of
    each run inside ``[start_ns, end_ns)``: a run that straddles an edge is clipped and its
    ``n_samples`` scaled to the share of its duration inside the window (a run that
    rounds to no sample is dropped), so a window never counts samples taken outside it.
    """
    if state not in STATES:
        raise DeskprofError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    out = samples
    for column, wanted in (("endpoint", endpoint), ("request_id", request_id)):
        if wanted is None:
            continue
        if column not in out.columns:
            raise DeskprofError(
                f"these samples have no {column!r} column to filter on: "
                "open the bundle with deskprof.open_capture(), which attributes them"
            )
        out = out[out[column].isin(_as_set(wanted))]
    if state != "both":
        out = out[out["state"] == state]
    if start_ns is not None or end_ns is not None:
        out = _clip_window(out, start_ns, end_ns)
    return out


def _clip_window(samples: pd.DataFrame, start_ns: int | None, end_ns: int | None) -> pd.DataFrame:
    lo = np.iinfo(np.int64).min if start_ns is None else int(start_ns)
    hi = np.iinfo(np.int64).max if end_ns is None else int(end_ns)
    if hi <= lo:
        raise DeskprofError(f"empty time window: end_ns ({hi}) must be after start_ns ({lo})")
    ts = samples["ts_ns"].to_numpy(dtype="int64")
    end = np.maximum(samples["end_ns"].to_numpy(dtype="int64"), ts)
    inside = ((ts < hi) & (end > lo)) | ((ts == end) & (ts >= lo) & (ts < hi))
    out = samples[inside].copy()
    ts, end = ts[inside], end[inside]
    clipped_ts, clipped_end = np.maximum(ts, lo), np.minimum(end, hi)
    span = (end - ts).astype("float64")
    share = np.where(span > 0, (clipped_end - clipped_ts) / np.where(span > 0, span, 1), 1.0)
    weight = np.rint(out["n_samples"].to_numpy(dtype="float64") * share).astype("int64")
    out["ts_ns"], out["end_ns"], out["n_samples"] = clipped_ts, clipped_end, weight
    return out[out["n_samples"] > 0]


def is_process_frame(label: str) -> bool:
    """py-spy's per-process root frame (``process 123:"python -m opendesk serve" (:0)``)."""
    return label.startswith("process ") and bool(_PROCESS_FRAME.match(label))


def stack_labels(
    stacks: pd.DataFrame,
    *,
    lines: bool = True,
    short_paths: bool = True,
    processes: bool = False,
) -> dict[int, tuple[str, ...]]:
    """``stack_id`` → frame labels, root first, as the views display them.

    py-spy's per-process root frames are dropped unless ``processes``: workers run the
    same code, so their stacks merge into one tree (and two captures, whose PIDs always
    differ, can be compared)."""
    cache: dict[str, str] = {}

    def label(frame: str) -> str:
        text = cache.get(frame)
        if text is None:
            text = cache[frame] = short_frame(frame, lines=lines, short_paths=short_paths)
        return text

    return {
        int(stack_id): tuple(
            label(str(f)) for f in frames if processes or not is_process_frame(str(f))
        )
        for stack_id, frames in zip(stacks["stack_id"], stacks["frames"], strict=True)
    }


def sample_period_ms(samples: pd.DataFrame, rate_hz: float | None = None) -> float:
    """How much wall time one sample stands for: ``1000 / rate_hz`` when the rate is known
    (the manifest's ``cpu_rate_hz``), else measured from the runs themselves (their total
    duration over their total samples), else py-spy's default 100 Hz."""
    if rate_hz:
        return 1000.0 / float(rate_hz)
    if len(samples):
        n = samples["n_samples"].to_numpy(dtype="float64")
        span = (samples["end_ns"] - samples["ts_ns"]).to_numpy(dtype="float64")
        runs = n > 1
        if runs.any() and span[runs].sum() > 0:
            return float(span[runs].sum() / n[runs].sum() / 1e6)
    return 10.0


@dataclass
class FlameNode:
    """One frame in one calling context: ``value`` counts its samples with everything it
    called, ``self_value`` only those where it was the innermost frame."""

    name: str
    value: float = 0
    self_value: float = 0
    children: dict[str, FlameNode] = field(default_factory=dict)

    def child(self, name: str) -> FlameNode:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = FlameNode(name)
        return node

    def walk(self, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FlameNode]]:
        """Every node with its path of names from this one (excluded), depth first."""
        for child in self.children.values():
            here = (*path, child.name)
            yield here, child
            yield from child.walk(here)

    def find(self, name: str) -> list[FlameNode]:
        """The nodes named ``name`` anywhere below (one per calling context)."""
        return [node for _, node in self.walk() if node.name == name]

    def to_dict(self) -> dict[str, Any]:
        """d3-flame-graph's input: ``{"name", "value", "children"}`` (value inclusive)."""
        out: dict[str, Any] = {"name": self.name, "value": self.value}
        if self.children:
            out["children"] = [c.to_dict() for c in self.children.values()]
        return out


def stack_weights(samples: pd.DataFrame) -> pd.Series:
    """Samples per ``stack_id``: what a tree needs from the runs."""
    if samples.empty:
        return pd.Series([], dtype="int64")
    return samples.groupby("stack_id", sort=False)["n_samples"].sum()


def flame_tree(
    samples: pd.DataFrame,
    stacks: pd.DataFrame,
    *,
    lines: bool = True,
    short_paths: bool = True,
    processes: bool = False,
    **filters: Any,
) -> FlameNode:
    """The flame graph of ``samples`` (after :func:`filter_samples` with ``filters``) as a
    tree rooted at ``"all"``; ``root.value`` is the number of samples kept."""
    kept = filter_samples(samples, **filters)
    labels = stack_labels(stacks, lines=lines, short_paths=short_paths, processes=processes)
    root = FlameNode(ROOT_NAME)
    for stack_id, weight in stack_weights(kept).items():
        frames = labels.get(int(stack_id), (UNKNOWN_STACK,))
        node = root
        root.value += weight
        for frame in frames:
            node = node.child(frame)
            node.value += weight
        node.self_value += weight
    return root


@dataclass
class FrameTrie:
    """Every calling context of a set of stacks, numbered so a parent comes before its
    children (``parent[i] < i``; node 0 is the root). The compact shape the HTML views
    embed: a browser sums weights into it and builds the tree it draws in one pass."""

    names: list[str] = field(default_factory=lambda: [ROOT_NAME])
    parent: list[int] = field(default_factory=lambda: [-1])
    name: list[int] = field(default_factory=lambda: [0])
    _index: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)
    _names: dict[str, int] = field(default_factory=lambda: {ROOT_NAME: 0}, repr=False)

    def add(self, frames: Sequence[str]) -> int:
        """Insert a stack (root first); returns the node of its innermost frame."""
        node = 0
        for frame in frames:
            name_id = self._names.get(frame)
            if name_id is None:
                name_id = self._names[frame] = len(self.names)
                self.names.append(frame)
            key = (node, name_id)
            child = self._index.get(key)
            if child is None:
                child = self._index[key] = len(self.parent)
                self.parent.append(node)
                self.name.append(name_id)
            node = child
        return node

    def __len__(self) -> int:
        return len(self.parent)

    def to_json(self) -> dict[str, list]:
        """``up[i] = i - parent[i]`` (mostly 1: stacks are long chains) keeps the page small."""
        return {
            "names": self.names,
            "up": [0] + [i - p for i, p in enumerate(self.parent) if i],
            "name": self.name,
        }


def node_weights(
    samples: pd.DataFrame, labels: dict[int, tuple[str, ...]], trie: FrameTrie
) -> pd.DataFrame:
    """Samples per (trie ``node``, ``endpoint``, ``state`` code) as column ``w``: the
    rows an HTML view embeds. Inserts the stacks the samples use into ``trie``; stacks
    with equal labels (e.g. the same code in two workers) share a node."""
    frame = pd.DataFrame(
        {
            "stack_id": samples["stack_id"].astype("int64"),
            "endpoint": sample_endpoints(samples),
            "state": samples["state"].map(STATE_CODES).fillna(0).astype("int64"),
            "w": samples["n_samples"].astype("int64"),
        }
    )
    keys = ["stack_id", "endpoint", "state"]
    grouped = frame.groupby(keys, sort=False, as_index=False)["w"].sum()
    node_of = {
        int(sid): trie.add(labels.get(int(sid), (UNKNOWN_STACK,)))
        for sid in pd.unique(grouped["stack_id"])
    }
    grouped["node"] = [node_of[int(sid)] for sid in grouped["stack_id"]]
    return grouped.groupby(["node", "endpoint", "state"], as_index=False, sort=False)["w"].sum()


def page_data(
    trie: FrameTrie, rows: pd.DataFrame, endpoints: list[str], weights: dict[str, str]
) -> dict[str, Any]:
    """The JSON a flame graph page embeds: the trie, the endpoint labels (in display
    order) and parallel lists node/endpoint/state plus one list per ``weights`` entry
    (page key → column of ``rows``)."""
    code = {e: i for i, e in enumerate(endpoints)}
    encoded: dict[str, list[int]] = {
        "node": rows["node"].astype("int64").tolist(),
        "endpoint": [code[e] for e in rows["endpoint"]],
        "state": rows["state"].astype("int64").tolist(),
    }
    for key, column in weights.items():
        encoded[key] = rows[column].astype("int64").tolist()
    return {"trie": trie.to_json(), "endpoints": endpoints, "rows": encoded}
