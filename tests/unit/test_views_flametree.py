"""Flame-graph tree building and filtering on a ten-row capture built by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from deskprof.errors import DeskprofError
from deskprof.views.flametree import (
    ROOT_NAME,
    UNKNOWN_STACK,
    FrameTrie,
    filter_samples,
    flame_tree,
    is_process_frame,
    parse_frame,
    sample_period_ms,
    short_frame,
    stack_labels,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
MAIN = "main (/srv/app.py:1)"
LIST = "handle_list (/srv/api.py:10)"
ITEM = "handle_get (/srv/api.py:20)"
QUERY = "query (/srv/db.py:5)"
RENDER = "render (/srv/tpl.py:7)"
SELECT = "select (/usr/lib/python3.11/selectors.py:468)"


def ten_row_capture() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One thread, ten consecutive runs: 24 samples at 100 Hz (10 ms each)."""
    stacks = pd.DataFrame(
        {
            "stack_id": [0, 1, 2, 3],
            "frames": [
                [MAIN, LIST, QUERY],
                [MAIN, LIST, RENDER],
                [MAIN, ITEM, QUERY],
                [MAIN, SELECT],
            ],
            "leaf": [QUERY, RENDER, QUERY, SELECT],
            "handler": ["api:handle_list", "api:handle_list", "api:handle_get", ""],
        }
    )
    rows = [  # start ms, n_samples, stack, state, endpoint, request
        (0, 3, 0, "cpu", "GET /list", "r1"),
        (30, 2, 1, "cpu", "GET /list", "r1"),
        (50, 1, 0, "wait", "GET /list", "r1"),
        (60, 4, 2, "cpu", "GET /item", "r2"),
        (100, 2, 2, "wait", "GET /item", "r2"),
        (120, 5, 3, "wait", "", ""),
        (170, 1, 0, "cpu", "GET /list", "r3"),
        (180, 2, 1, "cpu", "GET /list", "r3"),
        (200, 3, 3, "wait", "", ""),
        (230, 1, 2, "cpu", "GET /item", "r4"),
    ]
    samples = pd.DataFrame(
        {
            "ts_ns": [T0 + r[0] * MS for r in rows],
            "end_ns": [T0 + (r[0] + 10 * r[1]) * MS for r in rows],
            "n_samples": [r[1] for r in rows],
            "pid": 1,
            "thread_id": 7,
            "thread_name": "MainThread",
            "stack_id": [r[2] for r in rows],
            "state": [r[3] for r in rows],
            "endpoint": [r[4] for r in rows],
            "request_id": [r[5] for r in rows],
            "attributed_by": ["stack" if r[4] else "" for r in rows],
        }
    )
    return samples, stacks


def path_value(root, *names: str) -> int:
    node = root
    for name in names:
        node = node.children[name]
    return node.value


def test_weights_add_up_from_leaves_to_root():
    samples, stacks = ten_row_capture()
    root = flame_tree(samples, stacks, short_paths=False)
    assert root.name == ROOT_NAME
    assert root.value == samples["n_samples"].sum() == 24
    main = root.children[MAIN]
    assert main.value == 24
    assert main.value == sum(c.value for c in main.children.values()) + main.self_value
    assert path_value(root, MAIN, LIST) == 9
    assert path_value(root, MAIN, LIST, QUERY) == 5
    assert path_value(root, MAIN, LIST, RENDER) == 4
    assert path_value(root, MAIN, ITEM, QUERY) == 7
    assert path_value(root, MAIN, SELECT) == 8
    assert sum(node.self_value for _, node in root.walk()) == 24
    assert [n.value for n in root.find(QUERY)] == [5, 7]


def test_filters_do_what_they_say():
    samples, stacks = ten_row_capture()
    on_list = flame_tree(samples, stacks, short_paths=False, endpoint="GET /list")
    assert on_list.value == 9 and set(on_list.children[MAIN].children) == {LIST}
    both_endpoints = flame_tree(samples, stacks, endpoint=["GET /list", "GET /item"])
    assert both_endpoints.value == 16
    assert flame_tree(samples, stacks, state="cpu").value == 13
    assert flame_tree(samples, stacks, state="wait").value == 11
    assert flame_tree(samples, stacks, request_id="r1").value == 6
    assert flame_tree(samples, stacks, request_id=["r2", "r4"], state="cpu").value == 5


def test_time_window_clips_runs_at_its_edges():
    samples, stacks = ten_row_capture()
    # [40 ms, 110 ms): half of run 2 (30-50, 2 samples), runs 3 and 4 whole, half of run 5
    kept = filter_samples(samples, start_ns=T0 + 40 * MS, end_ns=T0 + 110 * MS)
    assert kept["n_samples"].tolist() == [1, 1, 4, 1]
    assert kept["ts_ns"].min() == T0 + 40 * MS and kept["end_ns"].max() == T0 + 110 * MS
    assert flame_tree(samples, stacks, start_ns=T0 + 40 * MS, end_ns=T0 + 110 * MS).value == 7
    assert filter_samples(samples, start_ns=T0 + 235 * MS)["n_samples"].sum() == 0
    assert filter_samples(samples, end_ns=T0)["n_samples"].sum() == 0


def test_bad_filters_say_what_to_do():
    samples, _ = ten_row_capture()
    with pytest.raises(DeskprofError, match="state must be one of"):
        filter_samples(samples, state="idle")
    with pytest.raises(DeskprofError, match="open_capture"):
        filter_samples(samples.drop(columns=["endpoint"]), endpoint="GET /list")
    with pytest.raises(DeskprofError, match="empty time window"):
        filter_samples(samples, start_ns=T0 + 50 * MS, end_ns=T0 + 10 * MS)


def test_labels_shorten_paths_drop_process_frames_and_keep_unknown_stacks():
    assert parse_frame("query (/srv/db.py:5)") == ("query", "/srv/db.py", 5)
    assert parse_frame("<native>") == ("<native>", "", None)
    site = "execute (/v/lib/python3.11/site-packages/sqlalchemy/orm/session.py:2300)"
    assert short_frame(site) == "execute (sqlalchemy/orm/session.py:2300)"
    assert short_frame(SELECT) == "select (selectors.py:468)"
    assert short_frame(site, lines=False) == "execute (sqlalchemy/orm/session.py)"
    process = 'process 19138:".venv/bin/python -m opendesk serve --port 8765" (:0)'
    assert is_process_frame(process) and not is_process_frame(MAIN)
    stacks = pd.DataFrame(
        {"stack_id": [5], "frames": [[process, MAIN]], "leaf": [MAIN], "handler": ""}
    )
    assert stack_labels(stacks)[5] == (MAIN,)
    assert stack_labels(stacks, processes=True)[5] == (process, MAIN)

    samples, stacks = ten_row_capture()
    samples.loc[0, "stack_id"] = 99  # a sample whose stack the bundle lost
    root = flame_tree(samples, stacks)
    assert root.children[UNKNOWN_STACK].value == 3 and root.value == 24


def test_lines_false_folds_the_lines_of_a_function():
    samples, stacks = ten_row_capture()
    stacks.loc[1, "frames"] = [MAIN, "handle_list (/srv/api.py:11)", RENDER]
    assert len(flame_tree(samples, stacks).children[MAIN].children) == 4
    folded = flame_tree(samples, stacks, lines=False).children["main (/srv/app.py)"]
    assert folded.children["handle_list (/srv/api.py)"].value == 9


def test_trie_numbers_parents_before_children_and_shares_prefixes():
    trie = FrameTrie()
    leaf_a = trie.add([MAIN, LIST, QUERY])
    leaf_b = trie.add([MAIN, LIST, RENDER])
    assert trie.add([MAIN, LIST, QUERY]) == leaf_a
    assert len(trie) == 5  # root, main, list, query, render
    assert all(trie.parent[i] < i for i in range(1, len(trie)))
    assert trie.parent[leaf_a] == trie.parent[leaf_b]
    encoded = trie.to_json()
    assert encoded["up"] == [0] + [i - p for i, p in enumerate(trie.parent) if i]
    assert [encoded["names"][n] for n in encoded["name"]][1:] == [MAIN, LIST, QUERY, RENDER]


def test_sample_period_from_rate_or_from_the_runs():
    samples, _ = ten_row_capture()
    assert sample_period_ms(samples, 250) == 4.0
    assert sample_period_ms(samples) == pytest.approx(10.0)
