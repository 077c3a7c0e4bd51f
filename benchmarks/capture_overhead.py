"""What capturing costs the target: ticket-list latency and throughput, side by side.

Four copies of the reference OpenDesk run at once, each on its own copy of the same
seeded database and its own Redis, each with one way of being watched:

    nothing        plain ``opendesk serve``
    probe          started as ``deskprof run`` does (the in-process probe recording)
    probe+py-spy   the same, plus ``py-spy record --rate 100 --nonblocking --idle``
    memray         ``memray attach`` (all allocations; ``--memray-mode aggregate`` for less)

One client then sends the ticket list (``GET /tickets``) to each, round after round, the
arms in a new random order every round, so machine noise lands on all of them alike:
``--requests`` one after the other (latency), then a burst of the same number at
``--concurrency`` (throughput). Printed per arm: p50 and p95 latency and throughput, each
with its ratio to "nothing" and a 95% bootstrap CI that resamples whole rounds
(scipy.stats.bootstrap), and the server's CPU time per request (psutil, whole run).

    python benchmarks/capture_overhead.py [--rounds 10] [--size small] [--arms ...]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import psutil
from endpoint_latency import database_copy, login  # same directory: shared helpers
from scipy import stats

from deskprof.probe.bootstrap import launch_environment
from deskprof.probe.config import ProbeConfig
from deskprof.processes import stop_gracefully
from deskprof.tools import find_tool
from opendesk.config import DATA_DIR, Settings
from opendesk.demo import ensure_seeded, start_server, stop_server
from opendesk.redis_server import free_port

ARMS = ("nothing", "probe", "probe+py-spy", "memray")
PATH = "/tickets"
PYSPY_RATE = 100


def start_arm(arm: str, database_url: str, work: Path, args: argparse.Namespace, stack: ExitStack):
    """Start one server watched as ``arm``; returns (client, server pid, helper pids)."""
    env = {**os.environ, "OPENDESK_DATABASE_URL": database_url, "OPENDESK_FIXES": "none"}
    env.pop("OPENDESK_REDIS_URL", None)  # each arm gets its own embedded Redis
    if arm.startswith("probe"):
        env = launch_environment(ProbeConfig(out_dir=str(work / f"probe-{arm}")), env)
    port = free_port()
    server = start_server(port, env=env)
    stack.callback(stop_server, server)
    helpers: list[int] = []
    if arm == "probe+py-spy":
        spy = subprocess.Popen(
            [find_tool("py-spy"), "record", "--pid", str(server.pid), "--rate", str(PYSPY_RATE),
             "--nonblocking", "--idle", "--format", "raw", "-o", str(work / "py-spy.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(stop_gracefully, spy, signal.SIGINT)
        helpers.append(spy.pid)
    elif arm == "memray":
        memray = find_tool("memray")
        command = [memray, "attach", "-o", str(work / "memray.bin"), "-f", "--no-compress"]
        if args.memray_mode == "aggregate":
            command.append("--aggregate")
        done = subprocess.run(
            [*command, str(server.pid)], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"memray attach failed: {(done.stderr or done.stdout).strip()}")
    client = login(f"http://127.0.0.1:{port}")
    stack.callback(client.close)
    return client, server.pid, helpers


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def one_round(client, n: int, concurrency: int) -> tuple[list[float], float]:
    """``n`` sequential requests (latencies, ms), then ``n`` at ``concurrency`` (req/s)."""
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(PATH)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {PATH}: HTTP {response.status_code}")
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        codes = list(pool.map(lambda _: client.get(PATH).status_code, range(n)))
        elapsed = time.perf_counter() - started
    if set(codes) != {200}:
        raise SystemExit(f"GET {PATH} under concurrency: {sorted(set(codes))}")
    return latencies, n / elapsed


def ratio_ci(arm: list[np.ndarray], base: list[np.ndarray], statistic) -> tuple[float, ...]:
    """statistic(arm) / statistic(base) over all rounds, with a 95% CI from resampling
    rounds (each round's samples stay together: they shared the same machine state)."""

    def ratio(rounds):
        rounds = np.asarray(rounds, dtype=int)
        a = np.concatenate([arm[i] for i in rounds])
        b = np.concatenate([base[i] for i in rounds])
        return statistic(a) / statistic(b)

    value = ratio(np.arange(len(arm)))
    if len(arm) < 3:
        return value, float("nan"), float("nan")
    result = stats.bootstrap(
        (np.arange(len(arm)),),
        ratio,
        vectorized=False,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(1),
    )
    return value, result.confidence_interval.low, result.confidence_interval.high


def p50(x: np.ndarray) -> float:
    return float(np.percentile(x, 50))


def p95(x: np.ndarray) -> float:
    return float(np.percentile(x, 95))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=f"sqlite:///{DATA_DIR / 'bench-overhead.sqlite3'}",
        help="seeded once at --size, then copied per arm",
    )
    parser.add_argument("--size", default="small", choices=["small", "demo", "large"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=10, help="per arm per round")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma list of {', '.join(ARMS)}")
    parser.add_argument("--memray-mode", choices=["full", "aggregate"], default="full")
    args = parser.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS) or "nothing" not in arms:
        parser.error(f"--arms: choose from {', '.join(ARMS)}, with 'nothing' (the baseline)")
    for arm, tool in (("probe+py-spy", "py-spy"), ("memray", "memray")):
        if arm in arms and find_tool(tool) is None:
            print(f"# {tool} not found: arm {arm!r} left out", file=sys.stderr)
            arms.remove(arm)

    source = Settings.from_env({"OPENDESK_DATABASE_URL": args.database_url})
    ensure_seeded(source, args.size)
    rng = random.Random(11)
    latencies: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    throughput: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    cpu: dict[str, float] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        servers = {}
        for arm in arms:
            url = stack.enter_context(database_copy(source.database_url, arm.replace("+", "_")))
            work = Path(tmp) / arm.replace("+", "_")
            work.mkdir()
            servers[arm] = start_arm(arm, url, work, args, stack)
        print(
            f"# {args.rounds} rounds, {source.database_url.split(':')[0]} {args.size} data, "
            f"GET {PATH}: {args.requests} sequential + {args.requests} at concurrency "
            f"{args.concurrency} per arm per round, arms in random order each round; "
            f"{len(arms)} servers share {os.cpu_count()} CPUs (load average "
            f"{os.getloadavg()[0]:.1f} at start)",
            file=sys.stderr,
        )
        for arm in arms:  # warm-up round, discarded (caches, pools, first lazy imports)
            one_round(servers[arm][0], 3, args.concurrency)
        cpu_before = {
            arm: cpu_seconds([pid, *helpers]) for arm, (_, pid, helpers) in servers.items()
        }
        for round_no in range(1, args.rounds + 1):
            order = list(arms)
            rng.shuffle(order)
            for arm in order:
                lat, tput = one_round(servers[arm][0], args.requests, args.concurrency)
                latencies[arm].append(np.array(lat))
                throughput[arm].append(np.array([tput]))
            print(f"  round {round_no}/{args.rounds}", end="\r", file=sys.stderr)
        print(file=sys.stderr)
        for arm, (_, pid, helpers) in servers.items():
            requests = 2 * args.requests * args.rounds
            cpu[arm] = (cpu_seconds([pid, *helpers]) - cpu_before[arm]) * 1000 / requests

    base = "nothing"
    print(
        f"{'arm':<14} {'p50 ms':>8} {'ratio [95% CI]':>22} {'p95 ms':>8} {'ratio [95% CI]':>22} "
        f"{'req/s':>7} {'ratio [95% CI]':>22} {'CPU ms/req':>10}"
    )
    for arm in arms:
        cells = []
        for samples, statistic in ((latencies, p50), (latencies, p95), (throughput, np.median)):
            pooled = statistic(np.concatenate(samples[arm]))
            if arm == base:
                cells.append(f"{pooled:>8.1f} {'1.000':>22}")
            else:
                ratio, low, high = ratio_ci(samples[arm], samples[base], statistic)
                cells.append(f"{pooled:>8.1f} {f'{ratio:.3f} [{low:.3f}, {high:.3f}]':>22}")
        print(f"{arm:<14} {' '.join(cells)} {cpu[arm]:>10.2f}")
    print(
        f"# py-spy at {PYSPY_RATE} Hz (its own CPU counted in CPU ms/req); memray "
        f"{args.memray_mode} mode via `memray attach`; CPU ms/req = server (+ py-spy) CPU "
        "over the measured rounds / requests sent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
