"""``deskprof experiment``: baseline vs candidate, interleaved trials, a verdict per endpoint.

Exit codes: 0 all trials ran; 1 partial result (kept, with the reason: Ctrl-C, an arm
that exited); 2 a mistake in the command or a variant that does not start or answer.
"""

from __future__ import annotations

import argparse
import sys

from deskprof.capturing.workload import WorkloadSpec
from deskprof.cli.options import defaults
from deskprof.errors import DeskprofError
from deskprof.experiment import Design, Experiment, Variant, flush_redis
from deskprof.experiment.measure import METRIC_NAMES
from deskprof.experiment.variants import OPENDESK_SERVE
from deskprof.workloads import SCENARIOS

NAME = "experiment"
HELP = "is the candidate faster? baseline vs candidate in interleaved trials, with a verdict"

#: option keyword (``Experiment``, ``Design``, ``WorkloadSpec``) → the flag that sets it
FLAGS = {
    "trial_s": "--trial-seconds",
    "threshold": "--threshold",
    "out": "--out",
    "blocks": "--blocks",
    "warmup_s": "--warmup-seconds",
    "users": "--users",
    "rate": "--rate",
    "allow_remote": "--allow-remote-load",
}
_EXPERIMENT = defaults(Experiment)
_DESIGN = defaults(Design)
_LOAD = defaults(WorkloadSpec)

EPILOG = """\
variants (--baseline / --candidate):
  http(s)://HOST:PORT        an already running service (nothing is started or stopped)
  env:NAME=VALUE[,NAME=...]  launch --launch with this environment on a free loopback
                             port, under the deskprof probe; stopped afterwards
  cmd:'COMMAND'              launch this command ({port} and {python} are filled in)
  --apply/--revert           instead of --candidate: the candidate is the --baseline URL
                             with --apply run; --revert undoes it (run once before the
                             first trial, at every switch back and at the end)

how it runs: blocks of four trials, ABBA or BAAB at random (--seed), a discarded warm-up
after every switch of arm, then --trial-seconds of load per trial. The load is open loop
by default (--rate requests/s whatever the server does), so latency counts from when a
request was due and a slow server cannot hide its queue. Per trial and endpoint: p50/p95
/p99 latency, throughput, errors; queries and DB time per request for launched arms (the
probe); CPU and peak RSS for arms whose PIDs are known.

how to read the verdict: the unit is the trial, not the request. For each endpoint and
metric: the ratio candidate/baseline of the trial medians with a 95% bootstrap CI, paired
by adjacent trials, and a Wilcoxon p-value. "faster" (or "lower") only if the whole CI
is below 1 - threshold; "slower" (or "higher") if it is all above 1 + threshold; else
"no detectable change"; "inconclusive" when the statistics cannot say (too few trials,
zero variance). Warnings flag unstable metrics (CV >= 10%) and too few trials (< 5 per
arm, i.e. --blocks < 3).

examples:
  # two launch specs of the reference service, by OPENDESK_FIXES
  OPENDESK_DATABASE_URL=sqlite:///data/opendesk.sqlite3 deskprof experiment \\
      --baseline env:OPENDESK_FIXES=none --candidate env:OPENDESK_FIXES=eager_loading \\
      --workload ticket_list --rate 5 --blocks 5 --trial-seconds 10

  # an index migration applied and reverted on a running target (PID for CPU/RSS)
  python -m opendesk serve --port 8000 --no-migrate &
  deskprof experiment --baseline http://127.0.0.1:8000 --pid $! \\
      --apply "python -m opendesk migrate indexes apply" \\
      --revert "python -m opendesk migrate indexes revert" --workload agent --rate 4

  # staging before/after a deploy: two running URLs, cold cache before each trial
  deskprof experiment --baseline http://staging-a.internal:8000 \\
      --candidate http://staging-b.internal:8000 --allow-remote-load --rate 2 \\
      --flush-redis redis://staging-redis.internal:6379/0 --endpoint 'GET /reports/*'

results: --out DIR (default data/experiments/<UTC time>) holds result.json (verdicts,
git revision, machine, variants, workload, design), trials.parquet, requests.parquet and
raw/ (load generator, probe and server logs). In Python:
  from deskprof.experiment import load_result; load_result("DIR").verdicts
"""


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    arms = parser.add_argument_group("what is compared")
    arms.add_argument(
        "--baseline", required=True, metavar="VARIANT", help="URL, env:... or cmd:..."
    )
    arms.add_argument("--candidate", metavar="VARIANT", help="URL, env:... or cmd:...")
    arms.add_argument(
        "--launch",
        metavar="COMMAND",
        default=OPENDESK_SERVE,
        help=f"command template for env: variants (default: {OPENDESK_SERVE!r})",
    )
    arms.add_argument("--apply", metavar="COMMAND", help="make the candidate from the baseline")
    arms.add_argument("--revert", metavar="COMMAND", help="undo --apply")
    arms.add_argument(
        "--pid", type=int, action="append", default=[], help="PID of a running target (both arms)"
    )
    for role in ("baseline", "candidate"):
        arms.add_argument(
            f"--{role}-pid",
            type=int,
            action="append",
            default=[],
            metavar="PID",
            help=f"PID of the running {role} (two URLs): CPU and peak RSS",
        )
    arms.add_argument(
        "--no-probe", action="store_true", help="launch variants without the in-process probe"
    )
    load = parser.add_argument_group("workload")
    load.add_argument(
        "--workload",
        default="mixed",
        help=f"built-in scenario ({', '.join(SCENARIOS)}) or a locustfile path (default mixed)",
    )
    load.add_argument(
        "--rate",
        type=float,
        default=_EXPERIMENT["rate"],
        help=f"open loop: requests per second (default {_EXPERIMENT['rate']:g}); 0 = closed loop",
    )
    load.add_argument(
        "--users", type=int, default=_LOAD["users"], help="closed loop (--rate 0): users"
    )
    load.add_argument(
        "--allow-remote-load",
        action="store_true",
        help="send load to a non-loopback host (a staging host you own)",
    )
    design = parser.add_argument_group("design")
    design.add_argument(
        "--trial-seconds",
        type=float,
        default=_EXPERIMENT["trial_s"],
        help=f"per trial (default {_EXPERIMENT['trial_s']:g})",
    )
    design.add_argument(
        "--blocks",
        type=int,
        default=_DESIGN["blocks"],
        help=f"ABBA/BAAB blocks (default {_DESIGN['blocks']})",
    )
    design.add_argument(
        "--warmup-seconds",
        type=float,
        default=_DESIGN["warmup_s"],
        help=f"after each switch (default {_DESIGN['warmup_s']:g})",
    )
    design.add_argument(
        "--seed",
        type=int,
        default=_DESIGN["seed"],
        help=f"block order seed (default {_DESIGN['seed']})",
    )
    design.add_argument(
        "--flush-redis", metavar="URL", help="cold cache: FLUSHDB on this Redis before each trial"
    )
    report = parser.add_argument_group("verdict and output")
    report.add_argument(
        "--endpoint",
        action="append",
        default=[],
        help="only these endpoints in the table (name or pattern, repeatable)",
    )
    report.add_argument(
        "--metric",
        action="append",
        default=[],
        choices=METRIC_NAMES,
        metavar="METRIC",
        help="only these in the printed table (repeatable; all are saved): "
        + ", ".join(METRIC_NAMES),
    )
    report.add_argument(
        "--threshold",
        type=float,
        default=_EXPERIMENT["threshold"],
        help=f"noise threshold as a fraction (default {_EXPERIMENT['threshold']:g} = 2%%)",
    )
    report.add_argument("--out", metavar="DIR", help="result directory (must be new or empty)")
    report.add_argument("--label", default="", help="a name for the result directory")
    report.add_argument(
        "--capture-arms",
        action="store_true",
        help="afterwards, one deskprof capture per arm (needs PIDs: launched or --pid)",
    )


def build_variants(args: argparse.Namespace) -> tuple[Variant, Variant]:
    baseline = Variant.parse(args.baseline, launch=args.launch)
    if args.apply or args.revert:
        if args.candidate:
            raise DeskprofError("give either --candidate or --apply/--revert, not both")
        if not (args.apply and args.revert):
            raise DeskprofError("--apply and --revert go together (the change must be undone)")
        if baseline.kind != "url":
            raise DeskprofError("--apply/--revert need --baseline to be the running target's URL")
        candidate = Variant.change(baseline.url, args.apply, args.revert, name=args.apply)
    elif args.candidate:
        candidate = Variant.parse(args.candidate, launch=args.launch)
    else:
        raise DeskprofError("no candidate: give --candidate VARIANT or --apply/--revert")
    for variant, own in ((baseline, args.baseline_pid), (candidate, args.candidate_pid)):
        pids = [*args.pid, *own]
        if pids and variant.kind == "launch":
            raise DeskprofError("--pid is for running targets; launched variants are watched")
        variant.pids = pids
        variant.probe = not args.no_probe
    return baseline, candidate


def run(args: argparse.Namespace) -> int:
    baseline, candidate = build_variants(args)
    workload = args.workload
    if args.rate <= 0:
        workload = WorkloadSpec(scenario=args.workload, users=args.users)
    experiment = Experiment(
        baseline,
        candidate,
        workload=workload,
        rate=args.rate,
        trial_s=args.trial_seconds,
        design=Design(
            blocks=args.blocks,
            warmup_s=args.warmup_seconds,
            seed=args.seed,
            reset=flush_redis(args.flush_redis) if args.flush_redis else None,
            state="cold cache (Redis flushed)" if args.flush_redis else "warm",
        ),
        endpoints=args.endpoint or None,
        threshold=args.threshold,
        out=args.out,
        label=args.label,
        capture_arms=args.capture_arms,
        allow_remote_load=args.allow_remote_load,
    )
    result = experiment.run()
    print(result.table(args.metric or None))
    if not result.complete:
        print(f"deskprof: partial result: {'; '.join(result.partial_reasons)}", file=sys.stderr)
        return 1
    return 0
