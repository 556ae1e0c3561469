"""The LR range test: its curve and suggestions, the run after a sweep, where it is kept,
and the report's "LR finder vs the sweep" section."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

import autolr
from autolr import AutoLRError, TuneResult
from autolr.data import coerce_data
from autolr.range_test import RangeTest, range_test
from autolr.reporting import write_report
from autolr.reporting.data import TrialPoint, extract
from autolr.reporting.sample import synthetic_result
from autolr.reporting.stats import SafeBand, finder_picks

torch.set_num_threads(1)




def synthetic_curve() -> RangeTest:
    lrs = tuple(10 ** (-6 + 7 * i / 99) for i in range(100))
    # flat, a steep drop centred at 1e-2, a minimum near 1e-1, then a blow-up
    losses = tuple(2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 2) * 4))
                   + (max(0.0, math.log10(lr) + 1) ** 2) * 3 for lr in lrs)
    return RangeTest(lrs, losses, 32, "sgd", 1.0, 0.1, "end")


def test_suggestions_on_a_synthetic_curve() -> None:
    test = synthetic_curve()
    assert test.steepest() == pytest.approx(1e-2, rel=0.2)
    assert 1e-5 < test.valley() < 1e-1
    lowest = test.lrs[min(range(100), key=test.losses.__getitem__)]
    assert test.min_tenth() == pytest.approx(lowest / 10)
    assert set(test.suggestions()) == {"steepest", "valley", "min_tenth"}


def test_steepest_is_taken_before_the_lowest_loss_not_down_a_later_spike() -> None:
    base = synthetic_curve()
    # a spike to 5x after the minimum (near 1e-1), falling back steeply before the end
    spiked = list(base.losses)
    lowest = min(range(100), key=spiked.__getitem__)
    for i, height in zip(range(lowest + 3, lowest + 9), (3, 6, 9, 6, 2, 0.5), strict=True):
        spiked[i] += height
    test = dataclasses.replace(base, losses=tuple(spiked))
    assert test.steepest() == pytest.approx(1e-2, rel=0.2)


def test_a_test_that_blew_up_at_once_suggests_nothing() -> None:
    assert RangeTest((), (), 32, "sgd", 0.0, 0.0, "diverged").suggestions() == {}


def test_round_trips_through_a_dict() -> None:
    test = synthetic_curve()
    assert RangeTest.from_dict(test.to_dict()) == test


def test_a_real_range_test_ramps_geometrically_and_stops_at_the_blow_up(digits, mlp) -> None:
    data = coerce_data(digits, val_fraction=0.2, seed=0)
    test = range_test(mlp, data, torch.nn.functional.cross_entropy, optimizer="sgd",
                      batch_size=64, start=1e-4, end=1e3, steps=80)
    ratios = [b / a for a, b in zip(test.lrs[:-1], test.lrs[1:], strict=True)]
    assert ratios == pytest.approx([1e7 ** (1 / 79)] * len(ratios))
    assert test.lrs[0] == pytest.approx(1e-4)
    # SGD at lr 1e3 cannot train: the test stops before the end, at 4x its best loss or
    # a non-finite one
    assert test.stopped == "diverged" and len(test.lrs) < 80
    assert test.epochs == pytest.approx(len(test.lrs) / math.ceil(data.n_train / 64))
    assert min(test.losses) < test.losses[0]  # it did train at the good learning rates
    assert all(1e-4 <= lr <= 1e3 for lr in test.suggestions().values())


def test_a_loss_below_zero_ramps_until_it_blows_up_not_at_its_first_step(digits, mlp):
    # a negative log-likelihood, say: 4x a negative best is below it, so every step
    # counted as a blow-up and the test ended at its first one
    def shifted(outputs, targets):
        return torch.nn.functional.cross_entropy(outputs, targets) - 10.0

    data = coerce_data(digits, val_fraction=0.2, seed=0)
    test = range_test(mlp, data, shifted, optimizer="sgd", batch_size=64, start=1e-4,
                      end=1e3, steps=80)
    assert 20 < len(test.lrs) < 80 and test.stopped == "diverged"
    assert min(test.losses) < test.losses[0]


def test_bad_ramp_is_refused(mlp) -> None:
    data = coerce_data(load_digits(return_X_y=True), val_fraction=0.2, seed=0)
    with pytest.raises(ValueError, match="start < end"):
        range_test(mlp, data, torch.nn.functional.cross_entropy, optimizer="sgd",
                   batch_size=32, start=1.0, end=0.1)


def test_tune_runs_one_at_the_best_config_and_keeps_it(digits, tmp_path: Path, mlp) -> None:
    storage = str(tmp_path / "sweep.log")
    result = autolr.tune(mlp(), digits, n_trials=4, epochs=2, progress=False,
                         storage=storage, study_name="s", confirm_seeds=0)
    best, test = result.best_config, result.range_test
    assert test is not None
    assert (test.batch_size, test.optimizer, test.weight_decay) == (
        best["batch_size"], best["optimizer"], best["weight_decay"])
    assert test.lrs[0] <= best["lr"] / 100 and len(test.lrs) >= 2
    # kept beside the trials (reports from storage show it) and in the saved JSON
    assert autolr.load(storage, "s").range_test == test
    saved = result.save(tmp_path / "result.json")
    assert TuneResult.load(saved).range_test == test


def test_range_test_can_be_turned_off_and_is_validated(digits, mlp) -> None:
    result = autolr.tune(mlp(), digits, n_trials=2, epochs=1, progress=False,
                         confirm_seeds=0, range_test=False)
    assert result.range_test is None
    with pytest.raises(AutoLRError, match="range_test must be True or False"):
        autolr.tune(mlp(), digits, n_trials=2, epochs=1, progress=False, range_test="yes")


def test_a_failing_range_test_never_costs_the_sweep(digits, monkeypatch, caplog, mlp) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("autolr._tune.run_range_test", broken)
    caplog.set_level(logging.WARNING, logger="autolr")  # other tests may have raised it
    result = autolr.tune(mlp(), digits, n_trials=2, epochs=1, progress=False, confirm_seeds=0)
    assert result.best_record is not None and result.range_test is None
    assert "range test after the sweep failed (RuntimeError: out of memory)" in caplog.text


def point(number: int, lr: float, batch: int, value: float) -> TrialPoint:
    return TrialPoint(number, "complete", lr, "constant", batch, 0.0, value, 2.0, 10, 0.1,
                      False, None)


def test_finder_picks_compare_with_the_tuned_lr_the_band_and_nearby_trials() -> None:
    band = SafeBand(0.1, 0.1, 0.11, low=0.01, high=0.05, decades=0.7, numbers=(1, 2),
                    misses_inside=0)
    complete = [point(1, 0.02, 32, 0.1), point(2, 0.011, 64, 0.105),
                point(3, 1e-4, 32, 0.5)]
    picks = {p.name: p for p in finder_picks(
        {"steepest": 0.012, "valley": 3e-4, "min_tenth": 0.2}, 0.02, 32, band, complete)}
    assert picks["steepest"].ratio == pytest.approx(0.6)
    assert picks["steepest"].in_band and not picks["valley"].in_band
    # the nearest trial at the test's batch size, within a quarter decade: trial 1 (the
    # batch-64 trial at 0.011 is closer in lr but another batch size)
    assert picks["steepest"].nearest.number == 1
    assert picks["valley"].nearest is None  # 1e-4 is half a decade from 3e-4
    assert picks["min_tenth"].nearest is None and picks["min_tenth"].ratio == pytest.approx(10)
    assert all(p.in_band is None for p in finder_picks({"valley": 3e-4}, 0.02, 32, None,
                                                       complete))


def test_report_shows_the_finder_section(tmp_path: Path) -> None:
    result = synthetic_result()
    data = extract(result)
    assert data.tuned_lr == result.best_config["lr"]
    assert [p.name for p in data.finder_picks] == ["steepest", "valley", "min_tenth"]
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="finder">'):]
    section = section[:section.index("</section>")]
    assert 'data-figure="range_test"' in section
    assert "minimum / 10" in section and "× the tuned lr" in section
    assert f"{result.range_test.batch_size}" in section


def test_report_without_a_range_test_says_why(tmp_path: Path) -> None:
    result = synthetic_result()
    result.range_test = None
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No LR range test with this result" in page
    assert 'data-figure="range_test"' not in page
