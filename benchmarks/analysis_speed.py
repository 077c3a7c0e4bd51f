"""Analysis speed: open and fully analyse a 10-minute capture; digest a PostgreSQL log.

1. Fingerprinting: deskprof's tokenizer vs parser libraries (sqlglot, sqlparse; pglast
   is GPL-3 and not measured) on the reference service's real statements: statements/s
   and how many grouping checks each gets right.
2. A synthetic bundle the shape of 10 minutes at 100 Hz with four workers (~250k sample
   rows, 1M queries, 100k requests), written with the real BundleWriter from the
   reference service's real statements and real handler frames. Timed: open + attribution
   + digest + endpoint summary + detectors (``findings.detect_all``), median of
   ``--rounds`` runs, as a ratio to the 10 s budget. Two variants, both printed:
   *probe* (the realistic default: the probe records statements as SQLAlchemy sends them,
   values bound, so distinct texts come from IN-list lengths; ``--literal-share`` adds
   inlined literals) and *stress* (10 % of statements with inlined literals, ~99k
   distinct texts: what a server log of the simple protocol looks like).
3. One PostgreSQL csvlog file digested by deskprof and by pgBadger, side by side.

``--compare REV`` also times the analysis code of git revision REV (exported with ``git
archive``) against the working tree's on the same bundles, each round a fresh process per
side, sides interleaved, and prints the per-step medians side by side with their ratio.

    python benchmarks/analysis_speed.py [--rounds 3] [--scale 1.0] [--compare REV]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

BUDGET_S = 10.0
PATHS = [
    "/tickets",
    "/tickets?page=5",
    "/tickets?status=open&sort=-priority",
    "/tickets/17",
    "/dashboard",
    "/articles?q=password",
    "/articles/3",
    "/reports/ticket-stats",
    "/reports/sla-compliance",
]

# --- the reference service's real statements and handlers ----------------------------


def reference_traffic(tmp: Path) -> tuple[dict[str, list[str]], dict[str, tuple[str, str]]]:
    """Statements per endpoint, and endpoint → (handler, handler frame as py-spy names it),
    recorded by the deskprof probe around the reference OpenDesk run in-process on a small
    seeded SQLite database."""
    from fastapi.testclient import TestClient

    from deskprof.probe import install
    from deskprof.probe.reader import read_probe_dir
    from opendesk.app import create_app
    from opendesk.config import Settings
    from opendesk.db import make_engine
    from opendesk.redis_server import EmbeddedRedis, ping
    from opendesk.seed import DEMO_PASSWORD, seed

    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    engine = make_engine(Settings(database_url=url))
    seed(engine, "small", anchor=date(2026, 11, 2))
    engine.dispose()
    redis = None if ping("127.0.0.1", 6379) else EmbeddedRedis().__enter__()
    redis_url = redis.url if redis else "redis://127.0.0.1:6379/0"
    app = create_app(Settings(database_url=url, redis_url=redis_url, fixes=frozenset()))
    handle = install(app, app.state.ctx.engine, out_dir=tmp / "probe")
    with TestClient(app) as client:
        token = client.post(
            "/auth/login", json={"email": "agent1@opendesk.test", "password": DEMO_PASSWORD}
        ).json()["token"]
        for path in PATHS:
            client.get(path, headers={"Authorization": f"Bearer {token}"})
    handle.close()
    app.state.ctx.close()
    if redis:
        redis.__exit__(None, None, None)
    records = read_probe_dir(tmp / "probe")
    requests = pd.DataFrame(records["requests"])
    requests["endpoint"] = requests["method"] + " " + requests["route"]
    queries = pd.DataFrame(records["queries"]).merge(requests[["request_id", "endpoint"]])
    statements = queries.groupby("endpoint")["statement"].apply(list).to_dict()
    handlers = {}
    for endpoint, handler in requests.drop_duplicates("endpoint")[["endpoint", "handler"]].values:
        module, _, qualname = handler.partition(":")
        function = importlib.import_module(module)
        for part in qualname.split("."):
            function = getattr(function, part)
        code = function.__code__
        frame = f"{code.co_name} ({code.co_filename}:{code.co_firstlineno + 2})"
        handlers[endpoint] = (handler, frame)
    return statements, handlers


_IN_LIST = None  # compiled lazily: IN (<placeholders>) as the SQLite and psycopg dialects write it


def with_list_length(statement: str, rng: random.Random, longest: int = 30) -> str:
    """The statement with each ``IN (...)`` list of placeholders given a random length
    (1 to ``longest``), as SQLAlchemy renders an expanding IN for the values of one call:
    the one way a bound statement's text varies."""
    import re

    global _IN_LIST
    _IN_LIST = _IN_LIST or re.compile(r"IN \(((?:\?|%\(\w+\)s)(?:, (?:\?|%\(\w+\)s))*)\)")

    def relist(match: re.Match[str]) -> str:
        first = match.group(1).split(", ")[0]
        n = rng.randint(1, longest)
        if first == "?":
            return "IN (" + ", ".join("?" for _ in range(n)) + ")"
        name = first[2:-2].rsplit("_", 1)[0]
        return "IN (" + ", ".join(f"%({name}_{i + 1})s" for i in range(n)) + ")"

    return _IN_LIST.sub(relist, statement)


def with_literals(statement: str, rng: random.Random) -> str:
    """The statement as a log of the simple protocol would show it: values inlined, IN
    lists of varying length."""
    import re

    out = re.sub(
        r"%\(([^)]*)\)s|\?|\$\d+|:\w+",
        lambda m: (
            str(rng.randint(1, 100_000)) if rng.random() < 0.7 else f"'v{rng.randint(1, 10**6)}'"
        ),
        statement,
    )
    return re.sub(
        r"IN \(([^()]*)\)",
        lambda m: (
            "IN (" + ", ".join(str(rng.randint(1, 9999)) for _ in range(rng.randint(1, 30))) + ")"
        ),
        out,
    )


# --- 1. fingerprinting: tokenizer vs parser libraries ---------------------------------

CHECKS = [  # (a, b, same?)
    ("SELECT * FROM t WHERE id = 1", "select *  from t where id = 42", True),
    ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (7)", True),
    ("SELECT 1 /* request_id='a' */", "SELECT 2", True),
    ("SELECT a FROM t WHERE b = 'it''s'", "SELECT a FROM t WHERE b = 'x'", True),
    ("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = %(id_1)s", True),
    ("SELECT * FROM t WHERE id = ?", "SELECT * FROM t WHERE id = 5", True),
    ('SELECT "Name" FROM t', "SELECT name FROM t", False),
    ("SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a = 1", False),
]


def _sqlglot_normaliser() -> Callable[[str], str] | None:
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        return None

    def normalise(statement: str) -> str:
        tree = sqlglot.parse_one(statement.replace("%(", ":").replace(")s", ""), read="postgres")

        def strip(node):
            if isinstance(node, exp.In) and node.expressions:
                node.set("expressions", [exp.Placeholder()])
            if isinstance(node, exp.Literal | exp.Placeholder | exp.Parameter):
                return exp.Placeholder()
            return node

        return tree.transform(strip).sql(dialect="postgres", comments=False).lower()

    return normalise


def _sqlparse_normaliser() -> Callable[[str], str] | None:
    try:
        import sqlparse
        from sqlparse import tokens as T
    except ImportError:
        return None

    def normalise(statement: str) -> str:
        out = []
        for token in sqlparse.parse(sqlparse.format(statement, strip_comments=True))[0].flatten():
            if token.ttype in T.Literal or token.ttype in T.Name.Placeholder:
                out.append("?")
            elif not token.is_whitespace:
                out.append(token.value.lower() if token.ttype not in T.Name else token.value)
        text = " ".join(out)
        import re

        return re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?+)", text)

    return normalise


def compare_fingerprinters(statements: list[str]) -> None:
    from deskprof.analysis.fingerprint import fingerprint

    candidates: dict[str, Callable[[str], str] | None] = {
        "deskprof tokenizer (regex)": lambda s: fingerprint.__wrapped__(s),
        "sqlglot (MIT)": _sqlglot_normaliser(),
        "sqlparse (BSD)": _sqlparse_normaliser(),
    }
    print(f"\n-- fingerprinting {len(statements)} real statements (with literal variants) --")
    print(f"{'normaliser':<30} {'statements/s':>14} {'checks right':>13}  note")
    base = None
    for name, normalise in candidates.items():
        if normalise is None:
            print(f"{name:<30} {'-':>14} {'-':>13}  not installed")
            continue
        t0 = time.perf_counter()
        failed = 0
        for statement in statements:
            try:
                normalise(statement)
            except Exception:
                failed += 1
        rate = len(statements) / (time.perf_counter() - t0)
        right = 0
        for a, b, same in CHECKS:
            with contextlib.suppress(Exception):
                right += (normalise(a) == normalise(b)) == same
        base = base or rate
        note = f"{base / rate:.0f}x slower" if rate < base else "reference"
        if failed:
            note += f", {failed} statements failed to parse"
        print(f"{name:<30} {rate:>14,.0f} {right:>10}/{len(CHECKS)}  {note}")
    print(f"{'pglast (libpg_query)':<30} {'-':>14} {'-':>13}  GPL-3.0: license does not fit (MIT)")


# --- 2. the synthetic 10-minute bundle --------------------------------------------------


def write_bundle(
    path: Path, statements, handlers, scale: float, literal_share: float, seed: int = 7
) -> dict:
    """Write the synthetic bundle; ``literal_share`` of the statements get inlined literals,
    every statement with an IN list gets a random list length."""
    from deskprof.bundle.stacks import StackTable
    from deskprof.bundle.writer import BundleWriter

    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    endpoints = [e for e in statements if e in handlers and statements[e]]
    n_requests = int(100_000 * scale)
    workers = [4101, 4102, 4103, 4104]
    duration_ns = 600 * 10**9
    t0 = time.time_ns() - duration_ns
    per_worker = n_requests // len(workers)
    slot = duration_ns // per_worker
    req_rows = []
    pid = np.repeat(workers, per_worker)
    k = np.tile(np.arange(per_worker), len(workers))
    start = t0 + k * slot + rng.integers(0, slot // 4, len(k))
    length = rng.integers(slot // 10, slot // 2, len(k))
    which = rng.integers(0, len(endpoints), len(k))
    ep = np.array(endpoints, dtype=object)[which]
    req_rows = pd.DataFrame(
        {
            "request_id": [f"r{i:07d}" for i in range(len(k))],
            "pid": pid,
            "thread_id": 140_000 + pid,
            "native_thread_id": pid,
            "method": [e.split(" ", 1)[0] for e in ep],
            "route": [e.split(" ", 1)[1] for e in ep],
            "handler": [handlers[e][0] for e in ep],
            "status": 200,
            "start_ns": start,
            "end_ns": start + length,
            "duration_ns": length,
            "error": "",
        }
    )
    # queries: ~10 per request from that endpoint's real statements, IN lists of varied
    # length, ``literal_share`` with inlined literals
    per_request = np.maximum(1, rng.poisson(10 * 1_000_000 / 100_000 / 10, len(k)))
    q_req = np.repeat(np.arange(len(k)), per_request)
    n_q = len(q_req)
    q_ep = which[q_req]
    pools = [statements[e] for e in endpoints]
    pick = rng.random(n_q)
    stmt = np.empty(n_q, dtype=object)
    for i, pool in enumerate(pools):
        rows = np.flatnonzero(q_ep == i)
        stmt[rows] = np.array(pool, dtype=object)[(pick[rows] * len(pool)).astype(int)]
    listed = np.flatnonzero([" IN (" in s for s in stmt])
    stmt[listed] = [with_list_length(s, prng) for s in stmt[listed]]
    literal = np.flatnonzero(rng.random(n_q) < literal_share)
    stmt[literal] = [with_literals(s, prng) for s in stmt[literal]]
    q_start = start[q_req] + (rng.random(n_q) * length[q_req] * 0.9).astype(np.int64)
    queries = pd.DataFrame(
        {
            "query_id": [f"q{i:08d}" for i in range(n_q)],
            "request_id": req_rows["request_id"].to_numpy()[q_req],
            "pid": pid[q_req],
            "thread_id": 140_000 + pid[q_req],
            "start_ns": q_start,
            "duration_ns": rng.lognormal(13, 1, n_q).astype(np.int64),
            "statement": stmt,
            "parameters": "[]",
            "rowcount": rng.integers(-1, 50, n_q),
            "executemany": False,
            "call_site": [f"/srv/opendesk/tickets.py:{40 + (j % 30)}" for j in q_ep],
            "call_function": "list_tickets",
            "connection_id": pid[q_req],
            "error": "",
        }
    )
    # samples: 100 Hz per worker for 10 minutes, runs of one stack
    stacks = StackTable()
    base = (
        "<module> (/srv/opendesk/__main__.py:3)",
        "run (/usr/lib/python3.11/asyncio/runners.py:118)",
    )
    idle = stacks.intern((*base, "select (/usr/lib/python3.11/selectors.py:468)"))
    handler_stacks = []
    for e in endpoints:
        for depth in range(40):
            leaf = f"helper_{depth} (/srv/opendesk/tickets.py:{100 + depth})"
            handler_stacks.append(stacks.intern((*base, handlers[e][1], leaf)))
    n_runs = int(250_000 * scale)
    s_pid = rng.choice(workers, n_runs)
    s_ts = t0 + rng.integers(0, duration_ns, n_runs)
    busy = rng.random(n_runs) < 0.7
    s_stack = np.where(
        busy, np.array(handler_stacks)[rng.integers(0, len(handler_stacks), n_runs)], idle
    )
    samples = pd.DataFrame(
        {
            "ts_ns": s_ts,
            "end_ns": s_ts + 10_000_000,
            "n_samples": rng.integers(1, 3, n_runs),
            "pid": s_pid,
            "thread_id": 140_000 + s_pid,
            "thread_name": "MainThread",
            "stack_id": s_stack,
            "state": np.where(busy, "cpu", "wait"),
        }
    ).sort_values("ts_ns")
    allocations = pd.DataFrame(
        {
            "pid": rng.choice(workers, 5000),
            "kind": "high_water_mark",
            "ts_ns": t0 + duration_ns,
            "end_ns": t0 + duration_ns,
            "stack_id": rng.choice(handler_stacks, 5000),
            "allocator": "malloc",
            "size_bytes": rng.integers(100, 10**6, 5000),
            "n_allocations": 1,
        }
    )
    writer = BundleWriter(path)
    writer.manifest.options = {"cpu_rate_hz": 100}
    for name, frame in [("requests", req_rows), ("queries", queries), ("samples", samples),
                        ("stacks", stacks.to_frame()), ("allocations", allocations)]:  # fmt: skip
        writer.write_table(name, frame)
    writer.finish([])
    return dict(writer.manifest["counts"])


def analyse(path: Path) -> dict[str, float]:
    """Open and analyse from cold (fresh Capture, fingerprint cache cleared)."""
    from deskprof.analysis import (
        endpoint_summary,
        latency_histogram,
        open_capture,
        overall_stats,
        query_profile,
    )
    from deskprof.analysis.fingerprint import fingerprint

    fingerprint.cache_clear()
    steps: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = now - t
        t = now

    capture = open_capture(path)
    _ = capture.requests
    lap("open + requests")
    _ = capture.queries
    lap("queries + fingerprints")
    _ = capture.samples
    _ = capture.allocations
    lap("attribution (samples, allocations)")
    overall_stats(capture.queries), query_profile(capture.queries)
    latency_histogram(capture.queries)
    lap("digest")
    endpoint_summary(capture)
    lap("endpoint summary")
    try:
        from deskprof.analysis.findings import detect_all
    except ImportError:
        detect_all = None
    if detect_all is not None:
        try:
            detect_all(capture)
            lap("detectors (findings.detect_all)")
        except Exception as exc:  # another engineer's work in progress: say so, keep timing
            steps["detectors: not timed"] = 0.0
            print(f"detectors failed, not timed: {type(exc).__name__}: {exc}")
            t = time.perf_counter()
    steps["total"] = sum(steps.values())
    return steps


# --- 3. deskprof vs pgBadger on one csvlog file ------------------------------------------


def write_csvlog(path: Path, statements: list[str], n: int, seed: int = 3) -> None:
    """A csvlog file as PostgreSQL 15 writes it with log_min_duration_statement = 0."""
    rng = random.Random(seed)
    t = datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp()
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            t += rng.random() * 0.004
            stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
            text = with_literals(rng.choice(statements), rng).replace('"', '""')
            pid = 20_000 + i % 8
            out.write(
                f'{stamp},"opendesk","opendesk",{pid},"127.0.0.1:5{pid % 1000:04d}",'
                f'6b06120c.{pid:x},{i + 1},"SELECT",2026-11-24 10:00:00 UTC,3/{i},0,LOG,00000,'
                f'"duration: {rng.lognormvariate(-1, 1):.3f} ms  statement: {text}",'
                ',,,,,,,,"","client backend",,0\n'
            )


def compare_pgbadger(tmp: Path, statements: list[str], n: int, rounds: int) -> None:
    from deskprof.analysis import latency_histogram, overall_stats, query_profile
    from deskprof.analysis.fingerprint import fingerprint
    from deskprof.analysis.pglog import read_pglog

    log = tmp / "postgresql.csv"
    write_csvlog(log, statements, n)
    size_mb = log.stat().st_size / 1e6

    def ours() -> int:
        fingerprint.cache_clear()
        queries = read_pglog(log)
        overall_stats(queries), query_profile(queries), latency_histogram(queries)
        return len(queries)

    ours_s = statistics.median(_timed(ours) for _ in range(rounds))
    print(f"\n-- digest of one csvlog file ({n:,} statements, {size_mb:.0f} MB) --")
    print(f"{'tool':<28} {'median s':>9} {'ratio':>7}")
    print(f"{'deskprof read_pglog+digest':<28} {ours_s:>9.2f} {1.0:>7.2f}")
    pgbadger = shutil.which("pgbadger")
    if not pgbadger:
        print(
            f"{'pgbadger':<28} {'-':>9} {'-':>7}  pgbadger not installed (apt-get install pgbadger)"
        )
        return
    cmd = [
        pgbadger,
        "-f",
        "csv",
        "-q",
        "-j",
        "1",
        "-x",
        "json",
        "-o",
        str(tmp / "out.json"),
        str(log),
    ]
    theirs = statistics.median(
        _timed(lambda: subprocess.run(cmd, check=True, capture_output=True)) for _ in range(rounds)
    )
    print(f"{'pgbadger (json report, -j 1)':<28} {theirs:>9.2f} {theirs / ours_s:>7.2f}")
    print(f"pgbadger / deskprof = {theirs / ours_s:.2f} (above 1: deskprof is faster)")


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --- old code vs new, side by side ---------------------------------------------------


def export_revision(rev: str, into: Path) -> Path:
    """The ``profiling/`` source tree of git revision ``rev``, for PYTHONPATH."""
    root = Path(__file__).resolve().parents[1]
    if (into / "profiling").is_dir():
        return into / "profiling"
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "profiling/deskprof"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "profiling"


def analyse_in_fresh_process(bundle: Path, source: Path) -> dict[str, float]:
    """:func:`analyse` in a new interpreter importing deskprof from ``source``: cold, as a
    ``deskprof findings`` run would be (imports included in the steps that trigger them)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    out = subprocess.run(
        [sys.executable, __file__, "--analyse-one", str(bundle)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not result.pop("deskprof").startswith(str(source)):
        raise RuntimeError(f"the fresh process did not import deskprof from {source}")
    return result


def compare_revisions(bundle: Path, rev: str, tmp: Path, rounds: int) -> None:
    old_source = export_revision(rev, tmp / "old")
    new_source = Path(__file__).resolve().parents[1] / "profiling"
    sides: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(rounds):  # interleaved, so load changes hit both sides alike
        sides["old"].append(analyse_in_fresh_process(bundle, old_source))
        sides["new"].append(analyse_in_fresh_process(bundle, new_source))
    print(f"{'step (fresh process each)':<38} {rev[:10]:>10} {'working':>9} {'old/new':>8}")
    for step in sides["new"][0]:
        old = statistics.median(r.get(step, float("nan")) for r in sides["old"])
        new = statistics.median(r[step] for r in sides["new"])
        print(f"{step:<38} {old:>10.2f} {new:>9.2f} {old / new if new else float('nan'):>8.1f}")


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


VARIANTS = {  # name: (share of statements with inlined literals, what it stands for)
    "probe": (None, "probe bundle: values bound, IN lists of 1-30 items"),
    "stress": (0.10, "stress: 10 % of statements with inlined literals"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100k requests")
    parser.add_argument("--log-statements", type=int, default=100_000)
    parser.add_argument(
        "--literal-share",
        type=float,
        default=0.0,
        help="inlined-literal share of the probe variant (default 0: the probe records "
        "statements with placeholders)",
    )
    parser.add_argument(
        "--compare", metavar="REV", help="also time git revision REV's analysis code"
    )
    parser.add_argument("--analyse-one", metavar="BUNDLE", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # run_all passes the same arguments to every bench
    if args.analyse_one:  # the child of analyse_in_fresh_process
        import deskprof

        print(json.dumps({**analyse(Path(args.analyse_one)), "deskprof": deskprof.__file__}))
        return 0
    rounds = max(1, min(args.rounds, 5))
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp_name:
        tmp = Path(tmp_name)
        statements, handlers = reference_traffic(tmp)
        distinct = sorted({s for pool in statements.values() for s in pool})
        prng = random.Random(1)
        corpus = distinct + [with_literals(s, prng) for s in distinct for _ in range(20)]
        compare_fingerprinters(corpus)
        for variant, (share, what) in VARIANTS.items():
            share = args.literal_share if share is None else share
            bundle = tmp / f"bundle-{variant}"
            t = time.perf_counter()
            counts = write_bundle(bundle, statements, handlers, args.scale, share)
            texts = _distinct_statements(bundle)
            print(f"\n-- open + analyse a synthetic 10-minute capture (4 workers, 100 Hz): "
                  f"{what} --")  # fmt: skip
            print("bundle: " + ", ".join(f"{k}={v:,}" for k, v in counts.items())
                  + f", {texts:,} distinct statement texts, inlined-literal share {share:.0%}"
                  + f" (written in {time.perf_counter() - t:.0f} s)")  # fmt: skip
            print(f"before: {_load()}")
            runs = [analyse(bundle) for _ in range(rounds)]
            print(f"{'step (in process)':<38} {'median s':>9}")
            for step in runs[0]:
                print(f"{step:<38} {statistics.median(r[step] for r in runs):>9.2f}")
            total = statistics.median(r["total"] for r in runs)
            verdict = "within" if total <= BUDGET_S else "OVER"
            print(f"total / {BUDGET_S:.0f} s budget = {total / BUDGET_S:.2f} ({verdict} budget, "
                  f"median of {rounds}; {variant})")  # fmt: skip
            if args.compare:
                compare_revisions(bundle, args.compare, tmp, rounds)
            print(f"after: {_load()}")
        compare_pgbadger(tmp, distinct, args.log_statements, rounds)
    return 0


def _distinct_statements(bundle: Path) -> int:
    import pyarrow.parquet as pq

    column = pq.read_table(bundle / "queries.parquet", columns=["statement"]).column(0)
    return len(column.unique())


if __name__ == "__main__":
    raise SystemExit(main())
