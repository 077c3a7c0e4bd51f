"""Connection churn: new DBAPI connections per request (a pool that does not pool).

One finding for the whole service: the fix is the engine's pool, not an endpoint's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deskprof.analysis.finding import Finding, Thresholds
from deskprof.analysis.sqltext import NS_PER_MS


def detect_connection_churn(
    connections: pd.DataFrame, requests: pd.DataFrame, *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """New DBAPI connections (``connect`` events) per request at least ``churn_min_ratio``.

    One finding for the whole service (endpoint ``""``: the fix is the engine's pool), with
    the per-endpoint ratios as evidence. The probe does not time a connect, so the saving
    is measured only when an endpoint has requests with and without a new connection (the
    difference of their medians); otherwise it is 0 and the evidence says so."""
    t = thresholds or Thresholds()
    if requests.empty or len(requests) < t.churn_min_requests:
        return []
    connects = connections[connections["event"] == "connect"]
    inside = connects[connects["request_id"] != ""]
    ratio = len(inside) / len(requests)
    if ratio < t.churn_min_ratio:
        return []
    per_request = inside.groupby("request_id").size()
    reqs = requests.assign(connects=requests["request_id"].map(per_request).fillna(0))
    by_endpoint = reqs.groupby("endpoint").agg(
        requests=("request_id", "size"), connects=("connects", "sum")
    )
    by_endpoint["per_request"] = by_endpoint["connects"] / by_endpoint["requests"]
    savings, weights = [], []
    for _endpoint, rows in reqs.groupby("endpoint"):
        with_new = rows[rows["connects"] > 0]["duration_ns"]
        without = rows[rows["connects"] == 0]["duration_ns"]
        if len(with_new) >= 3 and len(without) >= 3:
            savings.append(max(0.0, float(with_new.median() - without.median()) / NS_PER_MS))
            weights.append(len(with_new))
    saving = float(np.average(savings, weights=weights)) if savings else 0.0
    evidence: list[dict[str, Any]] = [
        {
            "connects_per_request": round(ratio, 3),
            "connects_in_requests": len(inside),
            "connects_outside_requests": int(len(connects) - len(inside)),
            "requests": len(requests),
            "checkouts": int((connections["event"] == "checkout").sum()),
            "saving_basis": (
                "median latency with a new connection minus without, same endpoint"
                if savings
                else "not measured: every request opened a connection and the probe does "
                "not time connects"
            ),
        }
    ]
    evidence.extend(
        {
            "endpoint": ep,
            "requests": int(r["requests"]),
            "connects_per_request": round(float(r["per_request"]), 3),
        }
        for ep, r in by_endpoint.sort_values("requests", ascending=False).head(8).iterrows()
    )
    return [
        Finding(
            kind="connection_churn",
            severity="high" if ratio >= 0.9 else "medium",
            endpoint="",
            title=f"Connection churn: {ratio:.2f} new database connections per request",
            evidence=evidence,
            estimated_saving_ms=saving,
            fix=(
                "Keep connections: a sized pool (SQLAlchemy QueuePool with pool_size and "
                "pool_pre_ping=True) instead of NullPool or a connection per request; with "
                "many worker processes, PgBouncer in front of PostgreSQL."
            ),
            affected_requests=int((reqs["connects"] > 0).sum()),  # requests, not connects
        )
    ]
