"""The order trials run in: randomised interleaved blocks, warm-ups, state resets.

Machines drift (thermal state, other tenants, a cache filling up). Running all baseline
trials and then all candidate trials would put that drift into the difference. Instead
each *block* runs both arms twice, as ABBA or BAAB (chosen at random per block, seeded),
so a linear drift inside a block cancels and each block holds two adjacent pairs (AB and
BA) that the statistics compare. After every switch from one arm to the other a warm-up
runs first and is thrown away (connection pools, JIT-less but cache-full Python, OS page
cache). Before each measured trial the declared state is reset (``reset`` hook), e.g.
Redis flushed for a cold-cache experiment, or nothing for a warm one.

The plan is a DataFrame so a notebook can show it and a test can check it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from deskprof.errors import OptionError

BASELINE = "baseline"
CANDIDATE = "candidate"
ARMS = (BASELINE, CANDIDATE)
PLAN_COLUMNS = ["trial", "block", "position", "arm", "pair", "warmup"]
ORDERS = {
    "ABBA": (BASELINE, CANDIDATE, CANDIDATE, BASELINE),
    "BAAB": (CANDIDATE, BASELINE, BASELINE, CANDIDATE),
}


@dataclass
class Design:
    """How many blocks, how long to warm up after a switch, what to reset before a trial.

    ``reset`` is called before every measured trial with the arm's live handle (it has
    ``url``, ``pids`` and ``name``); ``state`` names what the reset establishes ("warm",
    "cold cache") and is written into the result. ``blocked=False`` gives a completely
    randomised order instead (unpaired statistics: Mann-Whitney).
    """

    blocks: int = 5
    warmup_s: float = 3.0
    seed: int = 0
    reset: Callable[[Any], None] | None = None
    state: str = "warm"
    blocked: bool = True

    def validate(self) -> None:
        if self.blocks < 1:
            raise OptionError(
                "{blocks} must be at least 1 (5 or more for a trustworthy verdict)", "blocks"
            )
        if self.warmup_s < 0:
            raise OptionError("{warmup_s} must not be negative", "warmup_s")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "ABBA/BAAB blocks" if self.blocked else "randomised",
            "blocks": self.blocks,
            "trials_per_arm": 2 * self.blocks,
            "warmup_s": self.warmup_s,
            "seed": self.seed,
            "state": self.state,
            "reset": getattr(self.reset, "__name__", repr(self.reset)) if self.reset else None,
        }

    def trials(self) -> int:
        """Measured trials in the plan (warm-ups not counted)."""
        return 4 * self.blocks

    def plan(self) -> pd.DataFrame:
        """One row per measured trial: ``trial`` (run order), ``block``, ``position`` in
        the block, ``arm``, ``pair`` (adjacent baseline/candidate trials compared by the
        paired statistics; -1 when not blocked) and ``warmup`` (an arm switch precedes
        this trial, so a discarded warm-up runs first)."""
        self.validate()
        rng = random.Random(self.seed)
        rows: list[dict[str, Any]] = []
        if self.blocked:
            for block in range(self.blocks):
                order = ORDERS[rng.choice(sorted(ORDERS))]
                for position, arm in enumerate(order):
                    pair = 2 * block + position // 2
                    rows.append({"block": block, "position": position, "arm": arm, "pair": pair})
        else:
            arms = list(ARMS) * (2 * self.blocks)
            rng.shuffle(arms)
            rows = [
                {"block": -1, "position": i, "arm": arm, "pair": -1} for i, arm in enumerate(arms)
            ]
        plan = pd.DataFrame(rows)
        plan.insert(0, "trial", range(len(plan)))
        previous = plan["arm"].shift()
        plan["warmup"] = (plan["arm"] != previous) & (self.warmup_s > 0)
        return plan[PLAN_COLUMNS]
