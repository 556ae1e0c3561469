"""The cliff's edge: the learning rates the robust pick keeps away from."""

from __future__ import annotations

import pytest

from autolr.cliff import EDGE_MARGIN, divergence_edges, near_edge


def params(lr: float, schedule: str = "cosine", batch_size: int = 32,
           optimizer: str = "adamw") -> dict:
    return {"lr": lr, "schedule": schedule, "batch_size": batch_size, "optimizer": optimizer}


def test_the_edge_is_the_lowest_lr_that_diverged_per_schedule_batch_and_optimizer():
    edges = divergence_edges([params(0.3), params(0.2), params(0.5, batch_size=64),
                              params(0.05, optimizer="sgd"), {}])  # {}: never sampled
    assert edges == {("cosine", 32, "adamw"): 0.2, ("cosine", 64, "adamw"): 0.5,
                     ("cosine", 32, "sgd"): 0.05}


@pytest.mark.parametrize(("lr", "near"), [
    (0.2 / EDGE_MARGIN * 1.01, True),  # just inside the margin
    (0.2 / EDGE_MARGIN * 0.99, False),  # just outside
    (0.2, True), (0.4, True),  # at or above a learning rate that diverged
    (0.05, False),
])
def test_a_config_is_near_the_edge_within_the_margin_below_it_or_above(lr, near):
    assert near_edge(params(lr), divergence_edges([params(0.2)])) is near


def test_another_schedule_batch_size_or_optimizer_has_its_own_edge():
    edges = divergence_edges([params(0.2)])
    assert not near_edge(params(0.19, schedule="one_cycle"), edges)
    assert not near_edge(params(0.19, batch_size=256), edges)
    assert not near_edge(params(0.19, optimizer="sgd"), edges)
    # warmup and weight decay do not move a config off its neighbour's cliff
    assert near_edge({**params(0.19), "warmup_fraction": 0.1, "weight_decay": 0.01}, edges)
    assert not near_edge(params(0.19), {})
