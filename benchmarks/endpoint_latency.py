"""Baseline vs all fixes: per-endpoint latency of the reference OpenDesk, side by side.

Two servers run at once on two copies of the same seeded database (the baseline copy
without the indexes migration, the fixed copy with it), each with its own Redis. One
client sends each endpoint's request to both in random order, round after round, so
machine noise lands on both arms alike. Printed: medians, the ratio fixed/baseline of the
medians with a paired bootstrap 95% CI and the verdict (deskprof.experiment.stats, the
same statistics as ``deskprof experiment``).

    python benchmarks/endpoint_latency.py [--database-url URL] [--size demo] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from deskprof.experiment.stats import compare
from opendesk.config import DATA_DIR, Settings
from opendesk.demo import ensure_seeded, start_server, stop_server
from opendesk.redis_server import free_port
from opendesk.seed import DEMO_PASSWORD
from opendesk.tickets import encode_cursor

DEEP_PAGE = 400


@contextmanager
def database_copy(url: str, label: str):
    """A throwaway copy of the seeded database: a file copy or a PostgreSQL template."""
    if url.startswith("sqlite:///"):
        source = Path(url.removeprefix("sqlite:///"))
        with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as tmp:
            target = Path(tmp) / source.name
            shutil.copy(source, target)
            yield f"sqlite:///{target}"
        return
    parsed = make_url(Settings.from_env({"OPENDESK_DATABASE_URL": url}).database_url)
    name = f"{parsed.database}_bench_{label}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f'CREATE DATABASE {name} TEMPLATE "{parsed.database}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=300)
    token = client.post(
        "/auth/login", json={"email": "agent1@opendesk.test", "password": DEMO_PASSWORD}
    ).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def deep_page_requests(baseline: httpx.Client) -> tuple[str, str]:
    """The same deep page: by OFFSET on the baseline, by cursor on the fixed server."""
    previous = baseline.get(f"/tickets?page={DEEP_PAGE - 1}").json()["items"][-1]
    cursor = encode_cursor(previous["created_at"], previous["id"])
    return f"/tickets?page={DEEP_PAGE}", f"/tickets?cursor={cursor}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("OPENDESK_DATABASE_URL")
        or f"sqlite:///{DATA_DIR / 'opendesk.sqlite3'}",
    )
    parser.add_argument("--size", default="demo", choices=["small", "demo", "large"])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    source = Settings.from_env({"OPENDESK_DATABASE_URL": args.database_url})
    ensure_seeded(source, args.size)
    rng = random.Random(7)
    with ExitStack() as stack:
        servers = {}
        for arm, fixes in (("baseline", "none"), ("fixed", "all")):
            url = stack.enter_context(database_copy(source.database_url, arm))
            env = {**os.environ, "OPENDESK_DATABASE_URL": url, "OPENDESK_FIXES": fixes}
            env.pop("OPENDESK_REDIS_URL", None)  # each arm gets its own embedded Redis
            port = free_port()
            proc = start_server(port, env=env)
            stack.callback(stop_server, proc)
            servers[arm] = login(f"http://127.0.0.1:{port}")
            stack.callback(servers[arm].close)
        deep_base, deep_fixed = deep_page_requests(servers["baseline"])
        ticket_id = servers["baseline"].get("/tickets").json()["items"][3]["id"]
        endpoints = {
            "ticket list": ("/tickets", "/tickets"),
            "ticket list, filtered": ("/tickets?status=open&priority=high",) * 2,
            f"ticket list, page {DEEP_PAGE}": (deep_base, deep_fixed),
            "ticket detail": (f"/tickets/{ticket_id}",) * 2,
            "agent dashboard": ("/dashboard",) * 2,
            "report: sla-compliance": ("/reports/sla-compliance",) * 2,
            "report: agent-performance": ("/reports/agent-performance",) * 2,
            "CSV export (urgent)": ("/tickets/export.csv?priority=urgent",) * 2,
        }
        samples: dict[str, dict[str, list[float]]] = {
            name: {"baseline": [], "fixed": []} for name in endpoints
        }
        print(
            f"# {args.rounds} rounds, {source.database_url.split(':')[0]} {args.size} data, "
            "one client, arms interleaved in random order",
            file=sys.stderr,
        )
        for round_no in range(args.rounds + 1):  # round 0 warms caches and pools, discarded
            for name, (path_base, path_fixed) in endpoints.items():
                order = [("baseline", path_base), ("fixed", path_fixed)]
                rng.shuffle(order)
                for arm, path in order:
                    started = time.perf_counter()
                    response = servers[arm].get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"{arm} {path}: HTTP {response.status_code}")
                    if round_no:
                        samples[name][arm].append(elapsed)
            print(f"  round {round_no}/{args.rounds}", end="\r", file=sys.stderr)
        print(file=sys.stderr)

    print(
        f"{'endpoint':<28} {'baseline p50':>13} {'fixed p50':>11} {'ratio':>7}  "
        f"{'95% CI':<16}  verdict"
    )
    for name, arms in samples.items():
        # rounds pair the arms: the same machine moment served both requests of a round
        result = compare(arms["baseline"], arms["fixed"], paired=True)
        ci = f"[{result.ci_low:.3f}, {result.ci_high:.3f}]"
        print(
            f"{name:<28} {statistics.median(arms['baseline']):>10.1f} ms "
            f"{statistics.median(arms['fixed']):>8.1f} ms {result.ratio:>7.3f}  {ci:<16}  "
            f"{result.verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
