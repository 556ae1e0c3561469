"""The LR range test: its curve and suggestions, the run after a sweep, where it is kept,
and the report's "LR finder vs the sweep" section."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np
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


LADDER = tuple(10 ** (-6 + i / 10) for i in range(40))  # 10 points a decade from 1e-6


def test_valley_is_fastais_two_thirds_down_the_longest_decreasing_run() -> None:
    # 20 points flat at 5 (the first 10 are skipped), 10 falling 4.9 -> 4.0, then rising.
    # On the judged points 10..34 the longest decreasing subsequence is one flat point and
    # the 10 falling ones: L = 11, ending at judged index 19, so start = 19 - 11 = 8 and
    # fastai's valley is judged index 8 + int(11 / 3) + int(11 / 6) = 12, point 22. The
    # old valley (the log-middle from the run's first point, back on the flat part at
    # point 0, to its last) was 10^-4.55, on the flat part.
    losses = tuple([5.0] * 20 + [4.9 - 0.1 * i for i in range(10)] + [4.0 + i for i in range(10)])
    test = RangeTest(LADDER, losses, 32, "sgd", 1.0, 0.1, "diverged")
    assert test.valley() == pytest.approx(LADDER[22])


def test_valley_on_a_noisy_flat_start_lands_in_the_descent() -> None:
    # the auditor's curve: a plateau falling 5e-5 a step (a smoothed loss at tiny lrs),
    # a descent from 1e-4 to 1e-1, then a blow-up. fastai's valley is 1.71e-4, at the top
    # of the descent; the old one, 9.8e-5, sat on the plateau (its run began at step 0).
    lrs = 1e-7 * 1e8 ** (np.arange(100) / 99)
    x = np.log10(lrs)
    losses = np.where(x < -4, 2.3 - 0.00005 * np.arange(100),
                      np.where(x < -1, 2.3 - 0.00005 * 37 - 1.8 * (x + 4) / 3,
                               0.5 + 3.0 * (x + 1) ** 2))
    test = RangeTest(tuple(lrs), tuple(losses), 32, "sgd", 1.0, 0.1, "diverged")
    assert test.valley() == pytest.approx(1.71e-4, rel=0.01)
    assert 1e-4 <= test.valley() < 1e-1  # on the descent, not the plateau


def test_min_tenth_and_steepest_skip_the_last_five_points() -> None:
    # a dip to the curve's lowest loss inside the last 5 points (what fastai skips): the
    # minimum is taken on the judged points, before it
    losses = [3.0 - 0.05 * i for i in range(35)] + [1.0, 0.5, 0.2, 5.0, 9.0]
    test = RangeTest(LADDER, tuple(losses), 32, "sgd", 1.0, 0.1, "diverged")
    assert test.min_tenth() == pytest.approx(LADDER[34] / 10)
    assert LADDER[10] <= test.steepest() <= LADDER[34]


def test_a_short_curve_suggests_nothing_and_says_why() -> None:
    # 24 points: fewer than the 10 skipped + 10 judged + 5 skipped a suggestion needs (the
    # old code gave all three for any curve of 2 or more points)
    losses = tuple(3.0 - 0.1 * i for i in range(24))
    test = RangeTest(LADDER[:24], losses, 32, "sgd", 1.0, 0.1, "diverged", cause="factor")
    assert test.suggestions() == {}
    assert test.steepest() is None and test.valley() is None and test.min_tenth() is None
    assert "24 points, too few to judge" in test.why_not("steepest")
    longer = RangeTest(LADDER[:25], tuple(3.0 - 0.1 * i for i in range(25)), 32, "sgd", 1.0,
                       0.1, "diverged")
    assert set(longer.suggestions()) == {"steepest", "valley", "min_tenth"}


def test_a_curve_that_never_falls_gets_no_suggestion_below_the_range_tried() -> None:
    # a converged model: the loss only rises. The old steepest fell back to minimum / 10,
    # a tenth of the first lr: below anything the test tried
    losses = tuple(1.0 + 0.01 * i for i in range(40))
    test = RangeTest(LADDER, losses, 32, "adamw", 1.0, 0.1, "diverged")
    assert test.suggestions() == {}
    assert "did not fall" in test.why_not("steepest")
    assert all(lr >= LADDER[0] for lr in synthetic_curve().suggestions().values())
    with pytest.raises(ValueError, match="unknown suggestion"):
        test.why_not("slide")


def test_an_older_saved_range_test_without_the_stop_cause_still_loads() -> None:
    raw = {"lrs": [1e-3, 1e-2], "losses": [2.0, 9.0], "batch_size": 32, "optimizer": "sgd",
           "epochs": 0.1, "seconds": 0.01, "stopped": "diverged", "weight_decay": 0.0}
    test = RangeTest.from_dict(raw)
    assert test.cause is None and test.stop_lr is None and test.skipped == 0
    assert RangeTest.from_dict({**raw, "a_later_field": 1}) == test


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
    assert test.cause in ("factor", "not_finite") and test.stop_lr >= test.lrs[-1]
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
    # it stopped by the loss's size, not at 4x its best: the report words it so
    assert test.cause == "size" and test.stop_lr == test.lrs[-1]


def test_all_padding_batches_are_skipped_not_taken_for_a_blow_up() -> None:
    # per-position labels, 60% of the rows all padding: at batch 4 one batch in ~8 has
    # no label, its mean loss is NaN, and the old test stopped there as "diverged"
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(300, 8, 6, generator=generator)
    y = X[:, :3, :].argmax(1)
    y[torch.rand(300, generator=generator) < 0.6] = -100
    data = coerce_data((X, y), val_fraction=0.2, seed=0)

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Conv1d(8, 16, 1), torch.nn.ReLU(),
                                   torch.nn.Conv1d(16, 3, 1))

    test = range_test(model, data, torch.nn.CrossEntropyLoss(), optimizer="adamw",
                      batch_size=4, seed=0)
    assert len(test.lrs) > 50 and set(test.suggestions()) == {"steepest", "valley", "min_tenth"}
    assert test.skipped > 0 and test.cause != "not_finite"
    # skipped batches take no learning-rate step but are drawn: the epochs count them
    ratios = [b / a for a, b in zip(test.lrs[:-1], test.lrs[1:], strict=True)]
    assert ratios == pytest.approx([1e8 ** (1 / 99)] * len(ratios))
    assert test.epochs == pytest.approx((len(test.lrs) + test.skipped) / 60, abs=1 / 60)


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


def _record(number: int, lr: float, optimizer: str, value: float,
            weight_decay: float = 0.0) -> autolr.TrialRecord:
    config = autolr.TrialConfig(lr, batch_size=32, optimizer=optimizer,
                                weight_decay=weight_decay)
    return autolr.TrialRecord(number, "complete", config.to_dict(), values=(1.0, value))


def test_the_sweep_near_a_suggestion_is_taken_at_the_tests_optimizer_and_weight_decay() -> None:
    # the AdamW trial and the SGD one with weight decay sit closer to the valley than the
    # SGD trial without it, but their loss at that lr says nothing about the test's SGD
    records = [_record(0, 1.6e-4, "adamw", 0.1), _record(1, 1.56e-4, "sgd", 0.2, 1e-2),
               _record(2, 2.0e-4, "sgd", 0.3), _record(3, 5e-3, "sgd", 0.05)]
    test = RangeTest(LADDER, tuple([5.0] * 20 + [4.9 - 0.1 * i for i in range(10)]
                                   + [4.0 + i for i in range(10)]), 32, "sgd", 1.0, 0.1,
                     "diverged")
    result = TuneResult(records, epochs=2, range_test=test)
    picks = {p.name: p for p in extract(result).finder_picks}
    assert picks["valley"].lr == pytest.approx(LADDER[22])  # 1.58e-4
    assert picks["valley"].nearest.number == 2
