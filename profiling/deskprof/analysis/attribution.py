"""Which endpoint (and which request) caused a CPU sample, an allocation or a query.

DESIGN.md's rule: by stack first, by context second, by time last, and say which. A CPU
sample or an allocation belongs to the endpoint whose handler function is on its stack
(``attributed_by="stack"``); a query to the request whose context was active when it ran
(its ``request_id``); a sample with no handler on its stack falls back to the one request
running on that pid and thread at that time (``attributed_by="time"``). On an event loop
thread, where requests interleave, a sample inside a slice of a request's task (the probe
notes when each task ran) belongs to that request (``attributed_by="task"``,
:mod:`deskprof.analysis.task_slices`); where more than one request could own a sample and
no slice says, the request stays ``""``: an honest blank beats a guess.

Handlers are ``module:qualname`` (from the probe); stack frames are py-spy's
``"function (file:line)"``. A frame is a handler's when its function is the qualname (or
its last part: py-spy may or may not qualify methods) and its file path ends with the
module's path (``opendesk/api/tickets.py`` or ``.../__init__.py``); matching path suffixes
rather than guessing a module from an absolute path works for source checkouts,
site-packages and relative paths alike. A function defined inside a handler
(``export_csv.<locals>.stream``, a streaming response's body) is the handler's code too:
it often runs after the handler returned, when only it is left on the stack.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deskprof.analysis.background import background_group
from deskprof.analysis.task_slices import task_owners
from deskprof.bundle.frames import parse_frame


def add_endpoint(requests: pd.DataFrame) -> pd.DataFrame:
    """``requests`` + ``endpoint`` = ``"{method} {route}"`` (e.g. ``GET /tickets/{ticket_id}``)."""
    out = requests.copy()
    if len(out):
        out["endpoint"] = (out["method"].astype(str) + " " + out["route"].astype(str)).astype(str)
    else:
        out["endpoint"] = pd.Series([], dtype=str)
    return out


def handler_endpoints(requests: pd.DataFrame) -> dict[str, str]:
    """handler (``module:qualname``) → endpoint; a handler serving several routes maps to
    the one it served most often."""
    if not len(requests) or "endpoint" not in requests:
        return {}
    pairs = requests.loc[requests["handler"] != "", ["handler", "endpoint"]]
    if not len(pairs):
        return {}
    counts = pairs.value_counts().reset_index()  # sorted by count, descending
    first = counts.drop_duplicates("handler")
    return dict(zip(first["handler"], first["endpoint"], strict=True))


class HandlerMatcher:
    """Finds the handler a stack frame belongs to; caches per distinct frame label."""

    def __init__(self, handlers: list[str]) -> None:
        self._by_name: dict[str, list[tuple[str, tuple[str, ...], str]]] = defaultdict(list)
        for handler in handlers:
            module, sep, qualname = handler.partition(":")
            if not sep or not qualname:
                continue
            path = module.replace(".", "/")
            suffixes = (f"/{path}.py", f"/{path}/__init__.py")
            self._by_name[qualname.rsplit(".", 1)[-1]].append((qualname, suffixes, handler))
        self._cache: dict[str, str] = {}

    def match(self, label: str) -> str:
        """The handler this frame is in, or ``""``."""
        found = self._cache.get(label)
        if found is None:
            found = self._cache[label] = self._match(label)
        return found

    def _match(self, label: str) -> str:
        function, file, _ = parse_frame(label)
        # code nested in a handler ("export_csv.<locals>.stream") is the handler's
        function = function.split(".<locals>.", 1)[0]
        candidates = self._by_name.get(function.rsplit(".", 1)[-1])
        if not candidates:
            return ""
        path = "/" + file.replace("\\", "/").lstrip("/")
        for qualname, suffixes, handler in candidates:
            # a qualified frame name ("TicketView.get") must agree with the qualname; a bare
            # one ("get") matches by last part (the candidates are indexed by it)
            qualified_mismatch = "." in function and not (
                qualname == function or qualname.endswith("." + function)
            )
            if not qualified_mismatch and path.endswith(suffixes):
                return handler
        return ""

    def stack_handler(self, frames: list[str]) -> str:
        """The outermost handler frame of a stack (root first): the endpoint actually
        invoked, even when it calls another handler function."""
        for label in frames:
            handler = self.match(label)
            if handler:
                return handler
        return ""


def stack_handlers(stacks: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """``stacks`` with ``handler`` filled from the requests' handlers (kept where the
    bundle already had one)."""
    out = stacks.copy()
    handlers = sorted(set(requests["handler"].astype(str).unique()) - {""}) if len(requests) else []
    if not len(out) or not handlers:
        return out
    matcher = HandlerMatcher(handlers)
    found = [matcher.stack_handler(frames) for frames in out["frames"]]
    existing = out["handler"].astype(str)
    out["handler"] = existing.where(existing != "", pd.Series(found, index=out.index, dtype=str))
    return out


def stack_endpoints(stacks: pd.DataFrame, requests: pd.DataFrame) -> pd.Series:
    """stack_id → endpoint of the handler on that stack (``""`` when none)."""
    mapping = handler_endpoints(requests)
    if not len(stacks):
        return pd.Series([], dtype=str)
    endpoints = stacks["handler"].map(lambda handler: mapping.get(handler, "")).astype(str)
    return pd.Series(endpoints.to_numpy(), index=stacks["stack_id"].to_numpy())


def _map_stack(stack_ids: pd.Series, by_stack: pd.Series) -> np.ndarray:
    if not len(by_stack):
        return np.full(len(stack_ids), "", dtype=object)
    position = by_stack.index.get_indexer(stack_ids.to_numpy())
    values = np.append(by_stack.to_numpy(dtype=object), "")
    return values[position]  # -1 (unknown stack) picks the appended ""


def overlapping_request(
    pid: np.ndarray,
    thread_id: np.ndarray,
    start_ns: np.ndarray,
    end_ns: np.ndarray,
    requests: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """For each interval, (row position in ``requests`` of the single request on the same
    pid and thread that overlaps it, or -1; number of overlapping requests).

    Vectorised per (pid, thread): overlaps = #(starts < end) - #(ends <= start), and when
    that is one, the overlapping request is the one with the latest end among those
    started before ``end`` (every other such request ended before ``start``)."""
    n = len(start_ns)
    owner = np.full(n, -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    if not n or not len(requests):
        return owner, count
    end_ns = np.maximum(end_ns, start_ns + 1)
    keys = pd.DataFrame({"pid": pid, "thread_id": thread_id})
    sample_groups = keys.groupby(["pid", "thread_id"], sort=False).indices
    request_groups = requests.groupby(["pid", "thread_id"], sort=False).indices
    r_start = requests["start_ns"].to_numpy(dtype=np.int64)
    r_end = requests["end_ns"].to_numpy(dtype=np.int64)
    for key, rows in sample_groups.items():
        req_rows = request_groups.get(key)
        if req_rows is None:
            continue
        order = req_rows[np.argsort(r_start[req_rows], kind="stable")]
        starts = r_start[order]
        ends_by_start = r_end[order]
        ends_sorted = np.sort(ends_by_start)
        s, e = start_ns[rows], end_ns[rows]
        started = np.searchsorted(starts, e, side="left")  # starts < e
        finished = np.searchsorted(ends_sorted, s, side="right")  # ends <= s
        overlaps = started - finished
        count[rows] = overlaps
        running_max = np.maximum.accumulate(ends_by_start)
        idx = np.arange(len(order))
        argmax = np.maximum.accumulate(np.where(ends_by_start == running_max, idx, 0))
        single = overlaps == 1
        owner[rows[single]] = order[argmax[started[single] - 1]]
    return owner, count


MIN_INSIDE_SHARE = 0.5  # of a run's span, for the time window to charge it to a request


def _mostly_inside(owner: np.ndarray, samples: pd.DataFrame, requests: pd.DataFrame) -> np.ndarray:
    """``owner`` with -1 where a run of samples lies mostly outside the request that
    overlaps it: a 344 ms run of a worker's idle wait overlapping a request by 22 ms is
    not that request's (its samples are spread over a span, not at one instant)."""
    start = samples["ts_ns"].to_numpy(dtype=np.int64)
    end = np.maximum(samples["end_ns"].to_numpy(dtype=np.int64), start + 1)
    found = owner >= 0
    r_start = requests["start_ns"].to_numpy(dtype=np.int64)[owner[found]]
    r_end = requests["end_ns"].to_numpy(dtype=np.int64)[owner[found]]
    inside = np.minimum(end[found], r_end) - np.maximum(start[found], r_start)
    share = inside / (end[found] - start[found])
    kept = owner.copy()
    kept[np.flatnonzero(found)[share < MIN_INSIDE_SHARE]] = -1
    return kept


def attribute_samples(
    samples: pd.DataFrame, stacks: pd.DataFrame, requests: pd.DataFrame
) -> pd.DataFrame:
    """``samples`` + ``endpoint``, ``request_id``, ``attributed_by`` (see module doc).

    ``stacks`` must have ``handler`` filled (:func:`stack_handlers`); ``requests`` must
    have ``endpoint`` (:func:`add_endpoint`)."""
    out = samples.copy()
    n = len(out)
    by_stack = _map_stack(out["stack_id"], stack_endpoints(stacks, requests))
    owner, _ = overlapping_request(
        out["pid"].to_numpy(dtype=np.int64),
        out["thread_id"].to_numpy(dtype=np.int64),
        out["ts_ns"].to_numpy(dtype=np.int64),
        out["end_ns"].to_numpy(dtype=np.int64),
        requests,
    )
    if len(requests):
        owner = _mostly_inside(owner, out, requests)
        req_ids = np.append(requests["request_id"].to_numpy(dtype=object), "")
        req_eps = np.append(requests["endpoint"].to_numpy(dtype=object), "")
        owner_id, owner_ep = req_ids[owner], req_eps[owner]
    else:
        owner_id = owner_ep = np.full(n, "", dtype=object)
    has_stack = by_stack != ""
    has_time = ~has_stack & (owner_ep != "")
    endpoint = np.where(has_stack, by_stack, owner_ep)
    # a stack-attributed sample takes the request only when that request is the same endpoint
    request_id = np.where(has_stack & (owner_ep != by_stack), "", owner_id)
    how = np.where(has_stack, "stack", np.where(has_time, "time", ""))
    # on an event loop thread: the request whose task was running, exactly
    task, _ = task_owners(out, np.asarray(by_stack, dtype=object), requests)
    has_task = task >= 0
    if has_task.any():
        endpoint = np.where(has_task, req_eps[task], endpoint)
        request_id = np.where(has_task, req_ids[task], request_id)
        how = np.where(has_task, "task", how)
    out["endpoint"] = pd.Series(endpoint, index=out.index, dtype=str)
    out["request_id"] = pd.Series(request_id, index=out.index, dtype=str)
    out["attributed_by"] = pd.Series(how, index=out.index, dtype=str)
    return out


def attribute_allocations(
    allocations: pd.DataFrame, stacks: pd.DataFrame, requests: pd.DataFrame
) -> pd.DataFrame:
    """``allocations`` + ``endpoint`` by the handler frame on the allocation's stack."""
    out = allocations.copy()
    endpoint = _map_stack(out["stack_id"], stack_endpoints(stacks, requests))
    out["endpoint"] = pd.Series(endpoint, index=out.index, dtype=str)
    return out


def attribute_queries(queries: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
    """``queries`` + ``endpoint`` of the request named by ``request_id``.

    A statement no request ran belongs to an endpoint-like group of what ran it:
    ``BACKGROUND task poll_loop`` (an asyncio task), ``BACKGROUND thread scheduler`` (a
    thread; ``thread MainThread`` is start-up), from the probe's ``context``. It is ``""``
    when the bundle does not say (written before the probe recorded it) or the query's
    request is not in the table."""
    out = queries.copy()
    if not len(out):
        out["endpoint"] = pd.Series([], dtype=str)
        return out
    by_request = requests.drop_duplicates("request_id")
    endpoint = lookup_str(out["request_id"], by_request["request_id"], by_request["endpoint"])
    if "context" in out:
        outside = (out["request_id"] == "") & (out["context"] != "")
        if outside.any():
            endpoint = endpoint.where(~outside, background_group("") + out["context"])
    out["endpoint"] = endpoint
    return out


def lookup_str(keys: pd.Series, table_keys: pd.Series, table_values: pd.Series) -> pd.Series:
    """Per row of ``keys``: the ``table_values`` entry whose ``table_keys`` entry equals it,
    ``""`` when none (``table_keys`` unique). A string column indexed like ``keys``.

    Hashing and gathering run in Arrow: for a million query rows against 100k requests
    this is ~10x faster than ``Index.get_indexer`` on Arrow-backed strings."""
    if not len(table_keys):
        return pd.Series("", index=keys.index, dtype=str)
    found = pc.index_in(
        pa.array(keys.astype(str)), value_set=pa.array(table_keys.astype(str))
    ).fill_null(len(table_keys))
    values = pa.array(table_values.astype(str), type=pa.large_string())
    gathered = pa.concat_arrays([values, pa.array([""], type=pa.large_string())]).take(found)
    out = pa.table({"v": gathered}).to_pandas()["v"]
    out.index = keys.index
    return out
