"""Tables the experiment notebooks read their evidence from, and the service pokes behind them.

Probe output an experiment kept per arm (``raw/probe-<arm>/``), connections per request,
statements per page, samples per function on the stack, the memory an endpoint holds at
the high-water mark; PostgreSQL's session count and the cost of one connect; the
reference service's outbox of e-mails; the export locustfile.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deskprof import paths
from deskprof.errors import DeskprofError

if TYPE_CHECKING:
    import pandas as pd

ROLES = ("baseline", "candidate")


# --- probe output of an experiment's arms ----------------------------------------------------


def probe_records(
    result_path: str | Path, kind: str, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """The probe's ``kind`` records (``queries``, ``connections``, ``requests``) of both
    arms of the experiment at ``result_path`` (``raw/probe-<arm>/``), one table with an
    ``arm`` column; ``columns`` keeps those (missing ones empty). An arm that ran without
    the probe (staging) adds no rows."""
    import pandas as pd

    from deskprof.probe.reader import read_probe_dir

    frames = []
    for role in ROLES:
        directory = Path(result_path) / "raw" / f"probe-{role}"
        records = read_probe_dir(directory).get(kind, []) if directory.is_dir() else []
        frame = pd.DataFrame(records)
        if columns is not None:
            frame = frame.reindex(columns=list(columns))
        frames.append(frame.assign(arm=role))
    return pd.concat(frames, ignore_index=True)


def arm_queries(
    result_path: str | Path, requests: pd.DataFrame, role: str
) -> tuple[pd.DataFrame, pd.Series]:
    """The probe's statements of arm ``role`` that belong to its rows of ``requests`` (the
    measured requests of interest, with ``arm`` and ``request_id``), and those requests'
    ids; no statements when the arm ran without the probe."""
    ids = requests.loc[requests["arm"].eq(role), "request_id"]
    queries = probe_records(result_path, "queries")
    queries = queries[queries["arm"].eq(role)].drop(columns="arm")
    if queries.empty or "request_id" not in queries:
        return queries.iloc[0:0], ids
    return queries[queries["request_id"].isin(set(ids))].reset_index(drop=True), ids


def connections_per_request(
    connections: pd.DataFrame, requests: pd.DataFrame, by: str
) -> pd.DataFrame:
    """New connections (``connect`` events) and pool checkouts per request, grouped by
    ``by`` (a column of ``requests``: ``endpoint``, ``arm``); requests without any event
    count as zero, events outside a request are left out."""
    import pandas as pd

    inside = connections[connections["request_id"].fillna("") != ""]
    events = pd.crosstab(inside["request_id"], inside["event"])
    events = events.reindex(columns=["connect", "checkout"], fill_value=0)
    joined = requests.join(events, on="request_id")[[by, "connect", "checkout"]].fillna(0)
    table = joined.groupby(by).agg(
        requests=("connect", "size"), connects=("connect", "mean"), checkouts=("checkout", "mean")
    )
    return table.rename(
        columns={"connects": "new connections per request", "checkouts": "checkouts per request"}
    )


def median_by_position(statements: pd.DataFrame) -> pd.DataFrame:
    """Median duration (ms) of the 1st, 2nd... statement of a request, per arm: whether
    the first statement on a fresh connection pays for the backend's start."""
    ordered = statements.sort_values("start_ns").copy()
    ordered["statement in request"] = ordered.groupby("request_id").cumcount() + 1
    table = ordered.pivot_table(
        index="statement in request", columns="arm", values="duration_ns", aggfunc="median"
    )
    return (table / 1e6).rename(columns=lambda arm: f"{arm} median ms")


def statements_per_request(
    queries: pd.DataFrame, endpoint: str | Callable[[pd.Series], pd.Series]
) -> pd.DataFrame:
    """Per fingerprint, of the requests of ``endpoint`` (a name, or a test on the
    ``endpoint`` column): ``calls per request``, ``ms per request`` (total time over the
    requests) and ``median_ms`` (per call), most time first."""
    column = queries["endpoint"]
    mine = queries[column.eq(endpoint) if isinstance(endpoint, str) else endpoint(column)]
    n = max(mine["request_id"].nunique(), 1)
    grouped = mine.groupby("fingerprint")["duration_ns"]
    table = grouped.agg(["size", "sum", "median"])
    table = table.assign(
        **{
            "calls per request": table["size"] / n,
            "ms per request": table["sum"] / 1e6 / n,
            "median_ms": table["median"] / 1e6,
        }
    )[["calls per request", "ms per request", "median_ms"]]
    return table.sort_values("ms per request", ascending=False)


def shorten(texts: pd.Index | pd.Series, width: int = 95, *, end: bool = True) -> Any:
    """Long statements cut to ``width`` characters: their end with a leading ``…`` (where
    page queries differ: ``LIMIT ? OFFSET ?``), or their start."""
    if end:
        return "…" + texts.str.slice(-width)
    return texts.str.slice(0, width)


def count_gone(diff: pd.DataFrame, *, at_most: float = 0.1) -> bool:
    """Whether a ``COUNT(...)`` statement of the baseline is (nearly) gone in the
    candidate: some fingerprint with ``count(`` has at most ``at_most`` of the baseline's
    calls per unit in a :func:`~deskprof.analysis.compare.query_diff` table."""
    counts = diff[diff["fingerprint"].str.lower().str.contains("count(", regex=False)]
    base = counts["baseline_calls_per_unit"]
    return bool((base.gt(0) & counts["candidate_calls_per_unit"].le(at_most * base)).any())


# --- CPU and memory of one endpoint ---------------------------------------------------------


def on_stack_shares(
    capture: Any, endpoint: str, names: Iterable[str], *, state: str = "both"
) -> pd.Series:
    """The share of ``endpoint``'s samples (``state``: cpu, wait or both) with a frame
    containing each of ``names`` anywhere on the stack (inclusive, not self time)."""
    import pandas as pd

    from deskprof.views.flametree import filter_samples

    kept = filter_samples(capture.samples, endpoint=endpoint, state=state)
    frames = capture.stacks.drop_duplicates("stack_id").set_index("stack_id")["frames"]
    on_stack = kept["stack_id"].map(frames)
    total = max(int(kept["n_samples"].sum()), 1)
    shares = {}
    for name in names:
        has = on_stack.map(lambda f, n=name: f is not None and any(n in x for x in f))
        shares[name] = kept.loc[has.astype(bool), "n_samples"].sum() / total
    return pd.Series(shares, name="share of the endpoint's samples", dtype=float)


def peak_mib(capture: Any, endpoint: str) -> tuple[float, float]:
    """MiB ``endpoint`` holds at the high-water mark, and MiB held there in all."""
    from deskprof.lab import memory_by

    by_endpoint = memory_by(capture, "endpoint").set_index("endpoint")["bytes"]
    return float(by_endpoint.get(endpoint, 0)) / 2**20, float(by_endpoint.sum()) / 2**20


# --- PostgreSQL -----------------------------------------------------------------------------


def require_postgresql(database_url: str, why: str) -> str:
    """``database_url`` when it is a PostgreSQL URL, else DeskprofError saying ``why``
    this notebook needs one and how to give it."""
    if not (database_url or "").startswith("postgres"):
        raise DeskprofError(
            f"{why}: set database_url to a PostgreSQL URL "
            "(postgresql://user@host:5432/db; the reference data is seeded once)"
        )
    return database_url


def libpq_url(database_url: str) -> str:
    """``database_url`` as psycopg takes it (no ``+psycopg`` driver suffix)."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_sessions(database_url: str) -> int:
    """Sessions PostgreSQL has established to this database so far (pg_stat_database)."""
    import psycopg

    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def median_ms(action: Callable[[], object], n: int = 20) -> float:
    """The median wall time of ``action()`` over ``n`` runs, in milliseconds."""
    if n < 1:
        raise DeskprofError(f"median_ms needs at least one run, not {n}")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def connect_cost_ms(database_url: str, n: int = 20) -> dict[str, float]:
    """Median ms of opening and closing a new connection (``connect_ms``) and of
    ``SELECT 1`` on an open one (``round_trip_ms``), over ``n`` runs each."""
    import psycopg

    url = libpq_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        round_trip = median_ms(lambda: conn.execute("SELECT 1").fetchone(), n)
    connect = median_ms(lambda: psycopg.connect(url).close(), n)
    return {"connect_ms": connect, "round_trip_ms": round_trip}


# --- the reference service's outbox and comments --------------------------------------------


class Outbox:
    """The reference service's e-mail outbox (``opendesk.models.Notification``) in
    ``database_url``: the newest row, the rows written since, waiting for the worker."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(database_url)

    def newest(self) -> int:
        """The id of the newest e-mail (0 when there is none): a mark for :meth:`since`."""
        from sqlalchemy import func, select

        from opendesk.models import Notification

        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.coalesce(func.max(Notification.id), 0))))

    def since(self, mark: int) -> list[tuple]:
        """The e-mails written after row ``mark``: (ticket, recipient, subject, body), in
        that order, so two runs compare equal when they wrote the same e-mails."""
        from sqlalchemy import select

        from opendesk.models import Notification as N

        columns = (N.ticket_id, N.recipient_email, N.subject)
        query = select(*columns, N.body).where(N.id > mark).order_by(*columns)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def wait_since(self, mark: int, count: int, timeout_s: float = 20) -> tuple[list, float]:
        """:meth:`since` once it holds ``count`` e-mails (or ``timeout_s`` passed), and the
        seconds that took."""
        started = time.monotonic()
        rows = self.since(mark)
        while len(rows) < count and time.monotonic() - started < timeout_s:
            time.sleep(0.05)
            rows = self.since(mark)
        return rows, time.monotonic() - started

    def close(self) -> None:
        self.engine.dispose()


def post_comments(
    url: str,
    tickets: Iterable[int] = (3, 5, 8),
    *,
    email: str = "agent1@opendesk.test",
    body: str = "Checked the logs: fixed.",
) -> int:
    """A public reply and an internal note on each of ``tickets``, as the agent
    ``email``; the number of comments posted (DeskprofError on a refused one)."""
    from deskprof.lab.experiments import logged_in

    posted = 0
    with logged_in(url, email) as http:
        for ticket in tickets:
            for internal in (False, True):
                answer = http.post(
                    f"/tickets/{ticket}/comments", json={"body": body, "internal": internal}
                )
                if answer.status_code >= 400:
                    raise DeskprofError(
                        f"POST /tickets/{ticket}/comments: HTTP {answer.status_code}"
                    )
                posted += 1
    return posted


# --- the export workload --------------------------------------------------------------------

EXPORT_TEMPLATE = Path(__file__).resolve().parents[1] / "workloads" / "export_locustfile.py"


def export_locustfile(
    export_path: str = "/tickets/export.csv",
    name: str = "GET /tickets/export.csv",
    *,
    wait_s: float = 0.2,
    out: str | Path | None = None,
) -> Path:
    """A locustfile of managers exporting ``export_path`` in a closed loop (``wait_s``
    between exports), each request named ``name`` and carrying an ``X-Request-ID`` (so
    the probe's SQL joins it): ``deskprof/workloads/export_locustfile.py`` with these
    settings, written to ``out`` (default ``data/export-locustfile-<hash>.py``)."""
    import hashlib

    if not export_path.startswith("/"):
        raise DeskprofError(f"export_path is a path on the service (/...), not {export_path!r}")
    template = EXPORT_TEMPLATE.read_text()
    settings = {"EXPORT_PATH": export_path, "NAME": name, "WAIT_S": float(wait_s)}
    lines = []
    for line in template.splitlines():
        key = line.partition(" = ")[0]
        lines.append(f"{key} = {settings[key]!r}" if key in settings else line)
    text = "\n".join(lines) + "\n"
    if out is None:
        digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]
        out = paths.data_dir() / f"export-locustfile-{digest}.py"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out


__all__ = [
    "EXPORT_TEMPLATE",
    "Outbox",
    "arm_queries",
    "connect_cost_ms",
    "connections_per_request",
    "count_gone",
    "export_locustfile",
    "libpq_url",
    "median_by_position",
    "median_ms",
    "on_stack_shares",
    "peak_mib",
    "pg_sessions",
    "post_comments",
    "probe_records",
    "require_postgresql",
    "shorten",
    "statements_per_request",
]
