"""What capturing costs the target: ticket-list latency, throughput and CPU, side by side.

ONE reference OpenDesk (``opendesk serve --workers 1``, SQLite small data,
``OPENDESK_FIXES=none``) is started under the in-process probe switched off, and each way
of watching it is applied to that same process in turn, for that arm only:

    nothing        probe switched off (control file)
    probe          probe switched on (control file; every worker sees it within 0.25 s)
    probe+py-spy   probe on, plus ``py-spy record --rate 100 --nonblocking --idle`` on the
                   PID, started before the arm's warm-up and stopped after its last request
    memray-in      probe off, memray.Tracker started inside the server by the probe for the
                   arm (what a capture does under ``deskprof run``), ``--memray-mode``
    memray-in-agg  the same, aggregated mode
    memray         probe off, ``memray attach`` (the memory source's recorder) for the arm,
                   detached after it; only with a method proven on this host

No tool runs outside its own arm, so a tool's idle CPU cannot slow another arm. Every
round applies the arms in a new random order; in each arm the client sends a short
warm-up, ``--requests`` ticket lists one after the other (latency), then a burst of
``--burst`` at ``--concurrency`` (throughput). A round's figures are its p50/p95 of the
sequential latencies, its burst throughput and the server's CPU per request (psutil, the
server process only, warm-up excluded); the tool's own CPU (py-spy's process) is counted
apart. Ratios vs "nothing" are ratios of the medians over rounds, with a 95% bootstrap CI
that resamples whole rounds (``deskprof.experiment.stats.compare``, paired by round).

A second phase prices the probe *installed but switched off* end to end: a plain
``opendesk serve`` and one started under ``launch_environment(enabled=False)``,
alternating in random order, one server at a time, a fresh launch per measurement.

    python benchmarks/capture_overhead.py [--rounds 8] [--off-rounds 8] [--memray-mode full]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
from endpoint_latency import database_copy, login  # same directory: shared helpers

from deskprof.capturing.attach_trial import first_proven
from deskprof.capturing.cpu import CpuRecorder
from deskprof.capturing.cpu_source import process_cpu_seconds
from deskprof.capturing.memory import MODES, MemrayRecorder
from deskprof.capturing.memory_inprocess import InProcessTracking
from deskprof.errors import DeskprofError
from deskprof.experiment.stats import Comparison, compare
from deskprof.probe import control
from deskprof.probe.bootstrap import launch_environment
from deskprof.probe.config import FLUSH_INTERVAL_S, ProbeConfig
from deskprof.probe.reader import read_probe_dir
from deskprof.tools import find_tool
from opendesk.config import DATA_DIR, Settings
from opendesk.demo import ensure_seeded, start_server, stop_server
from opendesk.redis_server import free_port

ARMS = ("nothing", "probe", "probe+py-spy", "memray-in", "memray-in-agg", "memray")
PATH = "/tickets"
PYSPY_RATE = 100
GOAL = 1.03  # probe + py-spy: under 3% p50 cost
SETTLE_S = 2 * FLUSH_INTERVAL_S + 0.1  # every arm waits this long after being applied
MEMRAY_SAFETY_WINDOW_S = 60.0  # if this script dies, memray stops tracking by itself


@dataclass
class Trial:
    """One arm in one round."""

    latencies_ms: list[float]
    throughput: float  # burst requests per second
    server_cpu_ms: float  # per request, warm-up excluded
    tool_cpu_ms: float  # per request: the tool's own process (py-spy), 0 without one
    tool_bytes: int = 0  # what the tool wrote (memray's file, py-spy's trace)

    @property
    def p50(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.latencies_ms, 95))


def own_cpu_seconds(process: psutil.Process) -> float:
    """The server process's own CPU: its embedded Redis child is not the server."""
    times = process.cpu_times()
    return times.user + times.system


def fetch(client: httpx.Client) -> float:
    started = time.perf_counter()
    response = client.get(PATH)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise DeskprofError(f"GET {PATH} answered HTTP {response.status_code}; is the data seeded?")
    return elapsed


def measure(
    client: httpx.Client,
    server: psutil.Process,
    tools: list[psutil.Process],
    pool: ThreadPoolExecutor,
    args: argparse.Namespace,
) -> Trial:
    """Warm-up, ``requests`` sequential, a burst; CPU of server and tools around the last two."""
    for _ in range(args.warmup):
        fetch(client)
    server_before = own_cpu_seconds(server)
    tools_before = [process_cpu_seconds(tool) or 0.0 for tool in tools]
    latencies = [fetch(client) for _ in range(args.requests)]
    started = time.perf_counter()
    list(pool.map(lambda _: fetch(client), range(args.burst)))
    throughput = args.burst / (time.perf_counter() - started)
    sent = args.requests + args.burst
    server_ms = (own_cpu_seconds(server) - server_before) * 1000 / sent
    tools_after = [process_cpu_seconds(tool) or 0.0 for tool in tools]
    tool_s = sum(after - before for after, before in zip(tools_after, tools_before, strict=True))
    return Trial(latencies, throughput, server_ms, tool_s * 1000 / sent)


@contextmanager
def watched(
    arm: str, pid: int, probe_dir: Path, raw: Path, memray_mode: str
) -> Iterator[tuple[list[psutil.Process], list[Path]]]:
    """Apply ``arm`` to the server for the duration of the block, then take it off again.

    Yields the tool processes whose CPU counts for the arm and the files the tool writes
    (sized after the block, then deleted so a long run stays small on disk)."""
    control.set_state(probe_dir, "on" if arm.startswith("probe") else "off")
    spy: CpuRecorder | None = None
    memray: MemrayRecorder | None = None
    inside: InProcessTracking | None = None
    tools: list[psutil.Process] = []
    outputs: list[Path] = []
    try:
        if arm == "probe+py-spy":
            spy = CpuRecorder(pid, raw, PYSPY_RATE, subprocesses=False, idle=True).start()
            assert spy.process is not None
            tools.append(psutil.Process(spy.process.pid))
            outputs += [spy.output, spy.log]
        elif arm == "memray":
            method = first_proven()[0]
            assert method is not None
            memray = MemrayRecorder(
                pid, raw, memray_mode, MEMRAY_SAFETY_WINDOW_S, method.method
            ).start()
            outputs += [memray.output, memray.log]
        elif arm.startswith("memray-in"):
            mode = "aggregate" if arm == "memray-in-agg" else memray_mode
            inside = InProcessTracking(probe_dir, raw, mode, MEMRAY_SAFETY_WINDOW_S)
            inside.start([pid])
            if pid not in inside.tracked:
                why = inside.failed.get(pid, "no answer from the probe")
                raise DeskprofError(f"{arm}: the probe did not start memray: {why}")
            outputs.append(inside.tracked[pid].output)
        time.sleep(SETTLE_S)  # the probe switch reaches the server within one flush tick
        yield tools, outputs
    finally:
        control.set_state(probe_dir, "off")
        if spy is not None:
            spy.stop()
        if memray is not None:
            memray.stop()
        if inside is not None:
            inside.stop()
            for status in raw.glob("memray-*.status.json"):
                status.unlink()
    if inside is not None and any(t.state == "tracking" for t in inside.tracked.values()):
        raise DeskprofError("the server did not stop its in-process memray tracking")
    if memray is not None and (memray.stop_problem or memray.exited):
        # still tracked (or gone): every later arm would be measured under memray
        raise DeskprofError(memray.stop_problem or "the server exited while memray tracked it")


def run_arm(
    arm: str,
    client: httpx.Client,
    server: psutil.Process,
    pool: ThreadPoolExecutor,
    probe_dir: Path,
    raw: Path,
    args: argparse.Namespace,
) -> Trial:
    with watched(arm, server.pid, probe_dir, raw, args.memray_mode) as (tools, outputs):
        trial = measure(client, server, tools, pool, args)
    for output in outputs:
        if output.suffix in (".bin", ".json"):
            if not output.exists() or output.stat().st_size == 0:
                raise DeskprofError(f"{arm}: the tool wrote nothing to {output.name}")
            trial.tool_bytes = output.stat().st_size
        output.unlink(missing_ok=True)
    return trial


def per_request_total(args: argparse.Namespace) -> int:
    return args.warmup + args.requests + args.burst


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[httpx.Client, psutil.Process]]:
    """One ``opendesk serve --workers 1`` (uvicorn serves in that process), logged in."""
    port = free_port()
    process = start_server(port, env=env)
    try:
        client = login(f"http://127.0.0.1:{port}")
        try:
            yield client, psutil.Process(process.pid)
        finally:
            client.close()
    finally:
        stop_server(process)


def server_env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "OPENDESK_DATABASE_URL": database_url, "OPENDESK_FIXES": "none"}
    env.pop("OPENDESK_REDIS_URL", None)  # its own embedded Redis, stopped with it
    return env


def overhead_phase(
    database_url: str, work: Path, args: argparse.Namespace, arms: list[str], rng: random.Random
) -> tuple[dict[str, list[Trial]], int]:
    """Phase 1: one server under the probe (off), the arms applied in turn, ``rounds`` times.
    Also returns how many requests the probe recorded (it must equal those of its arms)."""
    probe_dir, raw = work / "probe", work / "raw"
    raw.mkdir()
    config = ProbeConfig(out_dir=str(probe_dir), enabled=False)
    control.set_state(probe_dir, "off")
    trials: dict[str, list[Trial]] = {arm: [] for arm in arms}
    with (
        serving(launch_environment(config, server_env(database_url))) as (client, server),
        ThreadPoolExecutor(args.concurrency) as pool,
    ):
        for round_no in range(1, args.rounds + 1):
            order = list(arms)
            rng.shuffle(order)
            for arm in order:
                trials[arm].append(run_arm(arm, client, server, pool, probe_dir, raw, args))
            print(f"  round {round_no}/{args.rounds}", end="\r", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        time.sleep(3 * FLUSH_INTERVAL_S)  # the last records reach the file
        recorded = len(read_probe_dir(probe_dir)["requests"])
    return trials, recorded


def switched_off_phase(
    database_url: str, work: Path, args: argparse.Namespace, rng: random.Random
) -> dict[str, list[Trial]]:
    """Phase 2: plain ``opendesk serve`` vs one started under the probe switched off, a
    fresh launch per measurement, alternating in random order, one server at a time."""
    trials: dict[str, list[Trial]] = {"plain": [], "installed, off": []}
    config = ProbeConfig(out_dir=str(work / "probe-off"), enabled=False)
    with ThreadPoolExecutor(args.concurrency) as pool:
        for round_no in range(1, args.off_rounds + 1):
            order = list(trials)
            rng.shuffle(order)
            for arm in order:
                env = server_env(database_url)
                if arm != "plain":
                    env = launch_environment(config, env)
                with serving(env) as (client, server):
                    trials[arm].append(measure(client, server, [], pool, args))
            print(f"  launch pair {round_no}/{args.off_rounds}", end="\r", file=sys.stderr)
        print(file=sys.stderr)
    return trials


# --- the table ------------------------------------------------------------------------------

METRICS = {  # name: (per-trial value, higher is better)
    "p50": (lambda t: t.p50, False),
    "p95": (lambda t: t.p95, False),
    "req/s": (lambda t: t.throughput, True),
    "cpu": (lambda t: t.server_cpu_ms, False),
}


def comparisons(trials: dict[str, list[Trial]], base: str) -> dict[str, dict[str, Comparison]]:
    """Every arm vs ``base`` on every metric, paired by round."""
    out: dict[str, dict[str, Comparison]] = {}
    for arm, arm_trials in trials.items():
        out[arm] = {}
        for name, (value, higher) in METRICS.items():
            baseline = [value(t) for t in trials[base]]
            candidate = [value(t) for t in arm_trials]
            kind = "amount" if higher else "time"
            out[arm][name] = compare(
                baseline, candidate, paired=True, higher_is_better=higher, kind=kind
            )
    return out


def ratio_cell(result: Comparison, is_base: bool) -> str:
    if is_base:
        return f"{'1':>22}"
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return f"{f'{result.ratio:.3f} [n/a]':>22}"
    return f"{f'{result.ratio:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}]':>22}"


def print_table(trials: dict[str, list[Trial]], base: str, label: str) -> dict:
    results = comparisons(trials, base)
    print(
        f"{label:<15} {'p50 ms':>7} {'ratio [95% CI]':>22} {'p95 ms':>7} {'ratio [95% CI]':>22} "
        f"{'req/s':>6} {'ratio [95% CI]':>22} {'srv CPU':>7} {'ratio [95% CI]':>22} "
        f"{'tool CPU':>8}"
    )
    for arm, by_metric in results.items():
        cells = [f"{arm:<15}"]
        for name, width, digits in (("p50", 7, 1), ("p95", 7, 1), ("req/s", 6, 1), ("cpu", 7, 2)):
            result = by_metric[name]
            cells.append(f"{result.candidate:>{width}.{digits}f} {ratio_cell(result, arm == base)}")
        tool = statistics.median(t.tool_cpu_ms for t in trials[arm])
        cells.append(f"{tool:>8.2f}")
        print(" ".join(cells))
    return results


def reading(by_metric: dict[str, Comparison], tool_cpu_ms: float) -> str:
    """The one-line answer to the goal (probe + py-spy under 3% p50 cost), then the CPU
    figures, which machine noise disturbs far less than latency."""
    result, cpu = by_metric["p50"], by_metric["cpu"]
    low, high = result.ci_low, result.ci_high
    if not (math.isfinite(low) and math.isfinite(high)):
        verdict = "not resolvable at this noise (no CI: too few rounds or no variance)"
    elif high < GOAL:
        verdict = "met"
    elif low > GOAL:
        verdict = "not met"
    else:
        verdict = "not resolvable at this noise (the CI straddles 1.03)"
    return (
        f"reading: probe + py-spy p50 ratio {result.ratio:.3f} [{low:.3f}, {high:.3f}]: "
        f"goal <{GOAL} {verdict}; server CPU/request ratio {cpu.ratio:.3f} "
        f"[{cpu.ci_low:.3f}, {cpu.ci_high:.3f}], plus py-spy's own {tool_cpu_ms:.1f} ms/request"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=f"sqlite:///{DATA_DIR / 'bench-overhead.sqlite3'}",
        help="seeded once at --size, then copied once for the run",
    )
    parser.add_argument("--size", default="small", choices=["small", "demo", "large"])
    parser.add_argument("--rounds", type=int, default=8, help="phase 1 rounds (all arms each)")
    parser.add_argument("--off-rounds", type=int, default=8, help="phase 2 launch pairs; 0: skip")
    parser.add_argument("--requests", type=int, default=12, help="sequential, per arm per round")
    parser.add_argument("--burst", type=int, default=12, help="requests in the throughput burst")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=3, help="requests before measuring")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma list of {', '.join(ARMS)}")
    parser.add_argument("--memray-mode", choices=MODES, default="full")
    parser.add_argument("--seed", type=int, default=11, help="of the random arm orders")
    args = parser.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS) or "nothing" not in arms:
        parser.error(f"--arms: choose from {', '.join(ARMS)}, with 'nothing' (the baseline)")
    if min(args.rounds, args.requests, args.burst, args.concurrency) < 1 or args.off_rounds < 0:
        parser.error("--rounds, --requests, --burst and --concurrency must be at least 1")
    if "probe+py-spy" in arms and find_tool("py-spy") is None:
        print("# py-spy not found: arm 'probe+py-spy' left out", file=sys.stderr)
        arms.remove("probe+py-spy")
    if "memray" in arms:
        proven, trials = first_proven()
        if proven is None:
            tried = "; ".join(f"{t.method}: {t.detail}" for t in trials) or "no gdb or lldb"
            print(f"# memray attach fails on this host ({tried}): arm 'memray' left out")
            arms.remove("memray")
    try:
        return run(args, arms)
    except DeskprofError as exc:
        print(f"capture_overhead: {exc}", file=sys.stderr)
        return exc.exit_code


def run(args: argparse.Namespace, arms: list[str]) -> int:
    source = Settings.from_env({"OPENDESK_DATABASE_URL": args.database_url})
    ensure_seeded(source, args.size)
    rng = random.Random(args.seed)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    print(
        f"# phase 1: one `opendesk serve --workers 1` ({source.database_url.split(':')[0]} "
        f"{args.size} data, fixes none) under the probe switched off; {args.rounds} rounds, "
        f"arms {', '.join(arms)} applied one at a time in random order; per arm: "
        f"{args.warmup} warm-up, {args.requests} sequential GET {PATH}, {args.burst} at "
        f"concurrency {args.concurrency}; {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} at start",
        file=sys.stderr,
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        database_copy(source.database_url, "overhead") as database_url,
    ):
        work = Path(tmp)
        trials, recorded = overhead_phase(database_url, work, args, arms, rng)
        off_trials = switched_off_phase(database_url, work, args, rng) if args.off_rounds else {}

    results = print_table(trials, "nothing", "arm")
    print(
        "# medians over rounds of each round's p50/p95 (ms, sequential), burst req/s and "
        "server CPU ms/request (psutil, server process only, warm-up excluded); ratio vs "
        "nothing with a 95% expanded-bootstrap CI resampling whole rounds "
        "(deskprof.experiment.stats); tool CPU = ms/request of the tool's own process "
        f"(py-spy at {PYSPY_RATE} Hz; memray runs inside the server, so its cost is in srv CPU)"
    )
    probe_arms = sum(len(trials[arm]) for arm in arms if arm.startswith("probe"))
    expected = probe_arms * per_request_total(args)
    check = "as expected" if recorded == expected else "MISMATCH: the switch did not follow"
    print(f"# probe recorded {recorded} requests, {expected} sent in its arms: {check}")
    for arm in ("memray-in", "memray-in-agg", "memray"):
        if arm in trials:
            written = statistics.median(t.tool_bytes for t in trials[arm]) / 1e6
            mode = "aggregate" if arm == "memray-in-agg" else args.memray_mode
            print(f"# {arm} ({mode} mode) wrote a median {written:.1f} MB per arm")
    for arm in ("memray-in-agg", "memray-in"):
        if arm in results:
            p50 = results[arm]["p50"]
            goal = "met" if p50.ci_high <= 1.5 else "not met" if p50.ci_low > 1.5 else "unresolved"
            print(
                f"reading: {arm} p50 ratio {p50.ratio:.3f} [{p50.ci_low:.3f}, "
                f"{p50.ci_high:.3f}]: target <=1.5x {goal}"
            )
    if "probe+py-spy" in results:
        spy_cpu = statistics.median(t.tool_cpu_ms for t in trials["probe+py-spy"])
        print(reading(results["probe+py-spy"], spy_cpu))
    if off_trials:
        print()
        off = print_table(off_trials, "plain", "server")
        result, cpu = off["installed, off"]["p50"], off["installed, off"]["cpu"]
        print(
            f"# phase 2, measured end to end (not deskprof.probe.cost): {args.off_rounds} "
            "launch pairs, plain `opendesk serve` vs started under the probe switched off, "
            "alternating in random order, one server at a time, fresh launch each; "
            f"installed-but-off p50 ratio {result.ratio:.3f} [{result.ci_low:.3f}, "
            f"{result.ci_high:.3f}]: {result.verdict}; server CPU/request ratio "
            f"{cpu.ratio:.3f} [{cpu.ci_low:.3f}, {cpu.ci_high:.3f}]: {cpu.verdict} (verdicts "
            "at a 2% threshold)"
        )
    print(
        f"# {(time.monotonic() - started) / 60:.1f} min; load average {load_before:.1f} at "
        f"start, {os.getloadavg()[0]:.1f} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
