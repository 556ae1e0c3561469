"""A best learning rate at an end of the range searched is said to be there."""

from __future__ import annotations

import logging

import pytest

import autolr
from autolr.range_edge import range_edge

SPACE = {"lr": [1e-4, 1e-1], "lr_scaling": "none", "lr_reference_batch": 256}


def params(lr: float, batch: int = 32, optimizer: str = "adamw") -> dict:
    return {"lr": lr, "batch_size": batch, "optimizer": optimizer}


@pytest.mark.parametrize(("lr", "end"), [
    (0.09, "top"), (0.057, "top"),        # a quarter decade below 0.1 is 0.0562
    (0.05, None), (1e-3, None), (1.8e-4, None),
    (1.7e-4, "bottom"), (1e-4, "bottom"),
])
def test_within_a_quarter_decade_of_an_end(lr, end) -> None:
    said = range_edge(params(lr), [], SPACE)
    assert (said is None) if end is None else (f"of the {end} of the range searched" in said)


def test_the_warning_names_a_wider_range_to_search() -> None:
    assert "lr=(0.0001, 1) (in a .toml space, lr = [0.0001, 1])" in range_edge(
        params(0.09), [], SPACE)
    assert "lr=(1e-05, 0.1)" in range_edge(params(1e-4), [], SPACE)


def test_a_divergence_at_or_above_the_best_bounds_it_from_above() -> None:
    assert range_edge(params(0.09), [params(0.1)], SPACE) is None
    assert range_edge(params(0.09), [params(0.09, batch=256)], SPACE) is None
    # below it, or with another optimizer, it bounds nothing above the best
    assert range_edge(params(0.09), [params(0.08)], SPACE) is not None
    assert range_edge(params(0.09), [params(0.1, optimizer="sgd")], SPACE) is not None


def test_a_scaled_range_is_of_the_searched_value_and_a_narrow_one_is_never_an_edge() -> None:
    scaled = {**SPACE, "lr_scaling": "linear"}
    # lr 0.05 at batch 512 is 0.025 at the reference 256: inside
    assert range_edge(params(0.05, batch=512), [], scaled) is None
    said = range_edge(params(0.09, batch=64), [], scaled)  # 0.36 searched: beyond the top
    assert "at the reference batch 256, 0.36" in said
    assert range_edge(params(1e-3), [], {**SPACE, "lr": [1e-3, 2e-3]}) is None
    assert range_edge(params(1e-3), [], None) is None  # an older sweep: not known


def test_a_sweep_whose_range_stops_short_says_so_and_keeps_it(digits, mlp, tmp_path, caplog):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    # AdamW's best on digits is near 1e-2: this range stops a decade short
    space = autolr.SearchSpace(lr=(1e-5, 1e-3), schedules=("constant",), batch_sizes=(32,))
    with caplog.at_level(logging.WARNING, logger="autolr"):
        result = autolr.tune(mlp, digits, n_trials=6, epochs=2, space=space, storage=storage,
                             progress=False, range_test=False)
    assert result.best_config["lr"] > 10 ** -3.25 and not result.learned_nothing
    assert "of the top of the range searched (0.001)" in result.range_edge
    assert result.range_edge in caplog.text and result.range_edge in result.summary()
    assert autolr.load(storage).range_edge == result.range_edge
    saved = autolr.TuneResult.load(result.save(tmp_path / "r.json"))
    assert saved.range_edge == result.range_edge
    assert "lies within a quarter decade of the top" in saved.report(
        tmp_path / "r.html").read_text("utf-8")
