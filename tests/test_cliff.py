"""The cliff's edge: the learning rates the robust pick keeps away from."""

from __future__ import annotations

import pytest

from autolr.cliff import (
    EDGE_MARGIN,
    divergence_edges,
    edge_of,
    near_edge,
    run_setback,
    setback,
    why_near,
)
from autolr.space import TrialConfig


def params(lr: float, schedule: str = "cosine", batch_size: int = 32,
           optimizer: str = "adamw") -> dict:
    return {"lr": lr, "schedule": schedule, "batch_size": batch_size, "optimizer": optimizer}


def test_the_edge_is_the_lowest_lr_that_diverged_per_optimizer_and_batch_size():
    edges = divergence_edges([params(0.3), params(0.2, schedule="step"),
                              params(0.5, batch_size=64), params(0.05, optimizer="sgd"),
                              {}])  # {}: never sampled
    assert edges == {("adamw", 32): (0.2, "step"), ("adamw", 64): (0.5, "cosine"),
                     ("sgd", 32): (0.05, "cosine")}


@pytest.mark.parametrize(("lr", "near"), [
    (0.2 / EDGE_MARGIN * 1.01, True),  # just inside the margin
    (0.2 / EDGE_MARGIN * 0.99, False),  # just outside
    (0.2, True), (0.4, True),  # at or above a learning rate that diverged
    (0.05, False),
])
def test_a_config_is_near_the_edge_within_the_margin_below_it_or_above(lr, near):
    assert near_edge(params(lr), divergence_edges([params(0.2)])) is near


def test_any_schedule_and_any_larger_batch_share_the_edge_but_not_a_smaller_batch():
    edges = divergence_edges([params(0.2, batch_size=64)])
    assert near_edge(params(0.19, schedule="one_cycle", batch_size=64), edges)  # schedule
    assert near_edge(params(0.19, batch_size=32), edges)  # a smaller batch is no steadier
    assert not near_edge(params(0.19, batch_size=128), edges)  # a larger one may take it
    assert not near_edge(params(0.19, batch_size=64, optimizer="sgd"), edges)
    # warmup and weight decay do not move a config off its neighbour's cliff
    assert near_edge({**params(0.19), "warmup_fraction": 0.1, "weight_decay": 0.01}, edges)
    assert not near_edge(params(0.19), {})


def test_the_edge_is_the_lowest_over_every_larger_batch_and_named_in_words():
    edges = divergence_edges([params(0.5, batch_size=64), params(0.3, "step", 256),
                              params(0.01, batch_size=16)])  # 16 < 32: no say over 32
    assert edge_of(params(0.1, batch_size=32), edges) == (0.3, "step", 256)
    assert edge_of(params(0.1, batch_size=512), edges) is None
    assert why_near(params(0.25, "one_cycle"), edges) == (
        "lr 0.25 is within 1.5x of lr 0.3, which diverged for step, batch 256, adamw")
    assert why_near(params(0.6, "one_cycle"), edges).startswith("lr 0.6 is above lr 0.3, ")


@pytest.mark.parametrize("curve, nearly", [
    # MNIST-1D, one-cycle at lr 0.1, batch 32, grid seed 2 (its config diverged on 1 of 8)
    ([2.279, 1.615, 1.458, 0.996, 0.917, 2.272, 0.658, 0.238], True),
    ([2.264, 1.692, 1.359, 1.030, 0.854, 0.693, 0.736, 0.899, 0.258], False),  # seed 0
    # digits, the oracle's config: noisy at a low loss, but never losing half its progress
    ([1.717, 0.315, 0.180, 0.165, 0.128, 0.172, 0.085, 0.097], False),
    ([2.3, 2.35, 2.4, 1.0, 0.5], False),  # a rise before the loss had fallen is not one
    ([2.0, 1.0, 1.49, 0.5], False),  # jumped back 49% of its fall
    ([2.0, 1.0, 1.51, 0.5], True),  # 51%
    # overfitting: the loss climbs back step by step, never half its fall at once (with
    # an accuracy metric such a run may well be the best)
    ([2.3, 0.4, 0.7, 1.0, 1.3, 1.6, 1.9], False),
    ([2.0, 1.0, float("nan"), 1.8], True),  # a NaN in between is skipped
    ([], False), ([1.0], False),
])
def test_a_setback_is_a_jump_back_over_half_the_way_the_loss_had_come_down(curve, nearly):
    assert (setback(curve) is not None) is nearly


def test_a_jump_after_the_schedule_raised_the_learning_rate_is_not_a_setback():
    # the make-demo sweep's cosine-with-restarts run: its loss jumps once the restart has
    # raised the learning rate again; the same curve under a cosine schedule is a setback
    curve = [0.296, 0.161, 0.195, 0.098, 0.099, 0.097, 0.142, 0.15, 0.276, 0.129, 0.116,
             0.086, 0.072, 0.087, 0.092, 0.086, 0.084, 0.085, 0.085, 0.085]
    restarts = TrialConfig(0.0122, "cosine_restarts", {"cycles": 3})
    assert run_setback(restarts, curve) is None
    assert run_setback(TrialConfig(0.0122, "cosine"), curve) == (
        "its validation loss jumped back from 0.15 to 0.276 (it had come down from 0.296)")
    # MNIST-1D's one-cycle run jumped at its peak, the learning rate barely higher than
    # at the loss's best: a setback
    one_cycle = [2.279, 1.615, 1.458, 0.996, 0.917, 2.272, 0.658, 0.816, 0.721, 0.624,
                 0.534, 0.505, 0.451, 0.384, 0.291, 0.250, 0.237, 0.236, 0.236, 0.238]
    assert run_setback(TrialConfig(0.1, "one_cycle"), one_cycle) is not None
    assert run_setback(TrialConfig(0.1, "one_cycle"), [0.5]) is None


def test_a_run_of_a_schedule_this_process_does_not_know_is_judged_without_its_profile():
    # e.g. a saved result whose custom schedule was registered in another session
    unknown = {**TrialConfig(0.1).to_dict(), "schedule": "not_registered_here"}
    assert run_setback(unknown, [2.0, 1.0, 1.9, 0.5]) is not None
    assert run_setback(unknown, [2.0, 1.0, 0.9, 0.5]) is None
    # a rate that stays at zero never counts as raised
    assert setback([2.0, 1.0, 1.9], lr_factors=[1.0, 0.0, 0.0]) is not None
