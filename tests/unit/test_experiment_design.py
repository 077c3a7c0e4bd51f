"""The trial plan: balanced ABBA/BAAB blocks, seeded, warm-ups after every switch."""

from __future__ import annotations

import pytest

from deskprof.errors import DeskprofError
from deskprof.experiment.design import BASELINE, CANDIDATE, PLAN_COLUMNS, Design


def test_blocks_are_abba_or_baab_and_balanced():
    plan = Design(blocks=6, seed=3).plan()
    assert list(plan.columns) == PLAN_COLUMNS
    assert len(plan) == 24 == Design(blocks=6).trials()
    assert list(plan["trial"]) == list(range(24))
    orders = set()
    for _, block in plan.groupby("block"):
        order = "".join("A" if arm == BASELINE else "B" for arm in block["arm"])
        assert order in {"ABBA", "BAAB"}
        orders.add(order)
        assert list(block["position"]) == [0, 1, 2, 3]
    assert orders == {"ABBA", "BAAB"}  # both orders occur with this seed
    assert (plan["arm"] == BASELINE).sum() == (plan["arm"] == CANDIDATE).sum() == 12


def test_pairs_are_adjacent_trials_of_both_arms():
    plan = Design(blocks=4, seed=1).plan()
    for _, pair in plan.groupby("pair"):
        assert sorted(pair["arm"]) == [BASELINE, CANDIDATE]
        assert pair["trial"].max() - pair["trial"].min() == 1
        assert pair["block"].nunique() == 1


def test_same_seed_same_plan_other_seed_other_order():
    assert Design(blocks=8, seed=5).plan().equals(Design(blocks=8, seed=5).plan())
    orders = {tuple(Design(blocks=8, seed=s).plan()["arm"]) for s in range(6)}
    assert len(orders) > 1


def test_warmup_runs_after_every_switch_and_before_the_first_trial():
    plan = Design(blocks=5, seed=2, warmup_s=2).plan()
    switched = plan["arm"] != plan["arm"].shift()
    assert plan["warmup"].tolist() == switched.tolist()
    assert plan["warmup"].iloc[0]
    # within a block the middle trials repeat an arm: no warm-up between them
    assert not plan.loc[plan["position"] == 2, "warmup"].any()


def test_no_warmup_when_its_duration_is_zero():
    assert not Design(blocks=3, warmup_s=0).plan()["warmup"].any()


def test_randomised_design_is_unpaired_and_balanced():
    plan = Design(blocks=3, blocked=False, seed=4).plan()
    assert (plan["pair"] == -1).all() and (plan["block"] == -1).all()
    assert (plan["arm"] == BASELINE).sum() == (plan["arm"] == CANDIDATE).sum() == 6


def test_describe_names_the_reset_hook_and_state():
    def flush_cache(_arm):
        pass

    described = Design(blocks=2, reset=flush_cache, state="cold cache").describe()
    assert described["reset"] == "flush_cache"
    assert described["state"] == "cold cache"
    assert described["trials_per_arm"] == 4


@pytest.mark.parametrize("kwargs", [{"blocks": 0}, {"warmup_s": -1}])
def test_bad_designs_are_one_line_errors(kwargs):
    with pytest.raises(DeskprofError):
        Design(**kwargs).plan()
