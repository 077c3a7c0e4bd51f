"""What PostgreSQL counted (``pg_stat_statements``) beside what the probe measured.

The probe times each statement in the worker, around the driver's call; the server counts
each statement it executed, from every client, in ``pg_stat_statements`` (deltas over the
capture window, the ``db_statements`` table). Joined by fingerprint (the server's ``$1``
and the driver's ``%(name)s`` placeholders normalise alike), the two say:

- whether the probe saw everything: a statement the server ran more often than the probe
  saw came from another client, or from work the probe was not installed in;
- where the time went: the server's execution time vs the probe's duration, whose
  difference is the round trip, the driver and the wait for a connection;
- what the buffer cache did (shared blocks hit vs read from disk or the OS cache).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deskprof.analysis.fingerprint import fingerprint_series

COLUMNS = [
    "fingerprint_id",
    "fingerprint",
    "probe_calls",
    "server_calls",
    "probe_ms",
    "server_ms",
    "outside_server_ms",
    "cache_hit_share",
    "rows",
]


def reconcile_statements(queries: pd.DataFrame, db_statements: pd.DataFrame) -> pd.DataFrame:
    """One row per fingerprint the server or the probe saw, the server's busiest first:
    calls and milliseconds on each side, the milliseconds outside the server's execution
    (probe minus server, when both saw it), the buffer cache hit share and rows."""
    if db_statements.empty:
        return pd.DataFrame(columns=COLUMNS)
    server = pd.concat(
        [db_statements.reset_index(drop=True), fingerprint_series(db_statements["query"])],
        axis=1,
    )
    by_server = server.groupby("fingerprint_id").agg(
        fingerprint=("fingerprint", "first"),
        server_calls=("calls", "sum"),
        server_ms=("total_exec_ms", "sum"),
        rows=("rows", "sum"),
        hit=("shared_blks_hit", "sum"),
        read=("shared_blks_read", "sum"),
    )
    ok = queries[queries["error"].fillna("") == ""] if "error" in queries else queries
    by_probe = ok.groupby("fingerprint_id").agg(
        probe_fingerprint=("fingerprint", "first"),
        probe_calls=("duration_ns", "size"),
        probe_ms=("duration_ns", "sum"),
    )
    by_probe["probe_ms"] = by_probe["probe_ms"] / 1e6
    out = by_server.join(by_probe, how="outer")
    out["fingerprint"] = out["fingerprint"].fillna(out["probe_fingerprint"])
    for column in ("server_calls", "probe_calls", "rows", "hit", "read"):
        out[column] = out[column].fillna(0).astype(np.int64)
    blocks = out["hit"] + out["read"]
    out["cache_hit_share"] = np.where(blocks > 0, out["hit"] / blocks.clip(lower=1), np.nan)
    out["outside_server_ms"] = np.where(
        out["server_calls"] > 0, out["probe_ms"] - out["server_ms"], np.nan
    )
    out = out.reset_index().sort_values("server_ms", ascending=False, na_position="last")
    return out[COLUMNS].reset_index(drop=True)
