"""The robust pick: leaders re-trained on extra seeds, judged on the mean, nothing lost."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import statistics
from typing import Any

import optuna
import pytest
import torch
from processes import dead_pid

import autolr
import autolr.pick
from autolr import TuneResult
from autolr.backends.optuna import ConfirmLeader, make_objective, make_pruner, records_from_study
from autolr.result import TrialRecord, pick_candidates
from autolr.robust import (
    EDGE_MARGIN,
    STEP_BACK_ROOM,
    after,
    leader_to_confirm,
    run_seeds,
    step_back,
)
from autolr.space import SearchSpace, TrialConfig
from autolr.storage import recover
from autolr.sweep import Sweep
from autolr.training import COMPLETE, DIVERGED, TrialOutcome

torch.set_num_threads(1)


def record(number: int, value: float, state: str = "complete",
           seeds: tuple[float, ...] = (), lr: float = 0.01, **config) -> TrialRecord:
    return TrialRecord(number, state, TrialConfig(lr, **config).to_dict(), values=(1.0, value),
                       seed_values=seeds)


# --- pure rules ----------------------------------------------------------------------------

def test_the_unconfirmed_leader_is_confirmed_once_enough_trials_completed():
    records = [record(0, 0.5), record(1, 0.3), record(2, 0.4), record(3, 9.0, "pruned")]
    assert leader_to_confirm(records, "minimize", 4) is None  # 3 complete so far
    assert leader_to_confirm(records, "minimize", 3).number == 1
    assert leader_to_confirm(records, "maximize", 3).number == 0


def test_a_confirmed_leader_is_not_confirmed_again_and_its_mean_is_what_counts():
    # trial 1 was lucky (0.3) but its mean is 0.45: trial 2 (0.4, one seed) now leads
    records = [record(0, 0.5), record(1, 0.3, seeds=(0.3, 0.5, 0.55)), record(2, 0.4)]
    assert records[1].final_value == pytest.approx(0.45)
    assert leader_to_confirm(records, "minimize", 1).number == 2
    records[2] = record(2, 0.4, seeds=(0.4, 0.42, 0.38))
    assert leader_to_confirm(records, "minimize", 1) is None


def test_once_the_pick_ran_only_a_config_it_re_trained_is_recommended():
    # the rounds ran out with trial 3 (one seed, 0.09) in the lead: it is most likely a
    # lucky draw, so the best config on several seeds is recommended, and its mean told
    records = [record(0, 0.2), record(1, 0.1, seeds=(0.1, 0.12, 0.11)), record(3, 0.09),
               record(2, 0.08, seeds=(0.08, 0.16, 0.15))]
    result = TuneResult(records)
    assert result.best_record.number == 1 and result.best_value == pytest.approx(0.11)
    # without any re-trained config (a tiny sweep, or confirm_seeds=0): the best value
    assert TuneResult([record(0, 0.2), record(3, 0.09)]).best_record.number == 3
    # a re-trained config that diverged on an extra seed does not count
    diverged = record(1, 0.1, "diverged", seeds=(0.1,))
    assert TuneResult([record(0, 0.2), diverged, record(3, 0.09)]).best_record.number == 3


def test_the_pick_keeps_a_margin_below_a_learning_rate_that_diverged():
    # trial 3 diverged at lr 0.2: trial 1 (lr 0.18, best value) sits on the cliff's edge,
    # so trial 2 (lr 0.1) is the leader to re-train, and the recommendation
    records = [record(0, 0.5, lr=0.01), record(1, 0.2, lr=0.18), record(2, 0.3, lr=0.1),
               record(3, math.nan, "diverged", lr=0.2)]
    assert pick_candidates(records) == [records[0], records[2]]
    assert leader_to_confirm(records, "minimize", 1).number == 2
    assert TuneResult(records).best_record.number == 2
    assert ("passed over: trial 1 (val_loss 0.2) sits on the edge of divergence: lr 0.18 is "
            "within 1.5x of lr 0.2, which diverged for constant, batch 32, adamw"
            in TuneResult(records).summary())
    # a confirmed config near the edge is passed over for one further from it
    records[1] = record(1, 0.2, seeds=(0.2, 0.21, 0.22), lr=0.18)
    records[2] = record(2, 0.3, seeds=(0.3, 0.31, 0.32), lr=0.1)
    assert TuneResult(records).best_record.number == 2
    # when every config is near the edge, the best of them still is
    only_near = [record(1, 0.2, lr=0.18), record(3, math.nan, "diverged", lr=0.2)]
    assert leader_to_confirm(only_near, "minimize", 1).number == 1
    assert TuneResult(only_near).best_record.number == 1
    assert "passed over" not in TuneResult(only_near).summary()


def test_the_margin_holds_across_schedules_and_from_larger_batches():
    # a one-cycle run at batch 32 diverged at lr 0.2: a cosine config at batch 16 and lr
    # 0.15 is passed over; at batch 64 (a larger batch may take the rate) it is not
    diverged = record(3, math.nan, "diverged", lr=0.2, schedule="one_cycle")
    smaller = [record(0, 0.5, lr=0.01), record(1, 0.2, lr=0.15, schedule="cosine",
                                                batch_size=16), diverged]
    assert TuneResult(smaller).best_record.number == 0
    assert "which diverged for one_cycle, batch 32, adamw" in TuneResult(smaller).summary()
    larger = [smaller[0], record(1, 0.2, lr=0.15, schedule="cosine", batch_size=64),
              diverged]
    assert TuneResult(larger).best_record.number == 1


def test_the_pick_passes_over_a_run_that_nearly_diverged_for_a_steady_one():
    # trial 1 has the best value, but its validation loss jumped back from 0.9 to 2.2
    # (it had come down from 2.3) before it recovered: it is not re-trained, nor
    # recommended, while trial 2 ran steadily
    shaken = TrialRecord(1, "complete", TrialConfig(0.08).to_dict(), values=(2.3, 0.9, 2.2, 0.2),
                         val_losses=(2.3, 0.9, 2.2, 0.2))
    steady = TrialRecord(2, "complete", TrialConfig(0.05).to_dict(), values=(2.3, 0.9, 0.6, 0.3),
                         val_losses=(2.3, 0.9, 0.6, 0.3))
    records = [record(0, 0.5), shaken, steady]
    assert pick_candidates(records) == [records[0], steady]
    assert leader_to_confirm(records, "minimize", 1) is steady
    result = TuneResult(records)
    assert result.best_record is steady
    assert result.passed_over() == (
        "passed over: trial 1 (val_loss 0.2) nearly diverged: its validation loss jumped "
        "back from 0.9 to 2.2 (it had come down from 2.3)")
    # when every run had a setback, the best of them still is
    assert TuneResult([shaken]).best_record is shaken
    assert TuneResult([shaken]).passed_over() is None


def test_a_record_keeps_its_spread():
    confirmed = record(1, 0.3, seeds=(0.3, 0.36, 0.33))
    assert confirmed.seed_std == pytest.approx(statistics.stdev((0.3, 0.36, 0.33)))
    assert record(2, 0.4).seed_std is None


def fake_run(finals: dict[int, float]):
    """run(config, reporter, seed_offset) ending at finals[offset] (nan: diverged)."""
    calls = []

    def run(config, reporter, seed_offset=0):
        calls.append(seed_offset)
        final = finals[seed_offset]
        state = DIVERGED if math.isnan(final) else COMPLETE
        return TrialOutcome(state, values=[1.0, final], epochs_run=2.0, seconds=0.5,
                            steps_run=20)

    run.calls = calls
    return run


def confirm(run, config: TrialConfig, first_value: float, extra_seeds: int):
    """What the pick does with a leader that ended at `first_value` (RobustPick)."""
    return after(first_value, run_seeds(run, config, range(1, extra_seeds + 1)))


def test_confirm_runs_the_extra_seeds_and_counts_their_cost():
    run = fake_run({1: 0.5, 2: 0.4})
    checked = confirm(run, TrialConfig(0.01), 0.3, 2)
    assert run.calls == [1, 2]
    assert checked.values == (0.3, 0.5, 0.4) and checked.mean == pytest.approx(0.4)
    assert (checked.epochs_run, checked.seconds, checked.steps_run) == (4.0, 1.0, 40)
    assert checked.diverged_on is None


def test_confirm_stops_at_the_first_seed_that_diverges():
    run = fake_run({1: math.nan, 2: 0.4})
    checked = confirm(run, TrialConfig(0.01), 0.3, 2)
    assert run.calls == [1] and checked.diverged_on == 1 and checked.values == (0.3,)


def test_a_seed_that_nearly_diverges_stops_the_confirmation_like_a_divergence():
    def run(config, reporter, seed_offset=0):
        curve = [2.3, 0.9, 2.2, 0.25] if seed_offset == 1 else [2.3, 0.9, 0.5, 0.3]
        return TrialOutcome(COMPLETE, values=curve, val_losses=curve, epochs_run=4.0)

    checked = confirm(run, TrialConfig(0.08), 0.3, 2)
    assert checked.diverged_on == 1 and checked.values == (0.3,)
    assert checked.failure("extra") == (
        "nearly diverged on extra seed 1: its validation loss jumped back from 0.9 to 2.2 "
        "(it had come down from 2.3)")
    steady = confirm(lambda c, r, seed_offset=0: run(c, r, seed_offset + 1), TrialConfig(0.08),
                     0.3, 2)
    assert steady.diverged_on is None and steady.setback is None
    assert confirm(fake_run({1: math.nan}), TrialConfig(0.01), 0.3, 1).failure("extra") == (
        "diverged on extra seed 1")


def test_a_best_run_on_the_edge_or_with_a_setback_is_stepped_back():
    # lr 0.2 diverged; trial 1 (lr 0.15, within 1.5x of it) is best by far: its config is
    # to be trained again just clear of the edge, 0.2 / (1.5 * 1.1)
    records = [record(0, math.nan, "diverged", lr=0.2), record(1, 0.1, lr=0.15),
               record(2, 0.5, lr=0.02)]
    best, lr = step_back(records, "minimize")
    assert best.number == 1
    assert lr == pytest.approx(0.2 / (EDGE_MARGIN * STEP_BACK_ROOM)) and lr * EDGE_MARGIN < 0.2
    # the best run is safe: nothing to do; so when it is best by the other direction
    assert step_back([*records[:1], record(1, 0.6, lr=0.15), records[2]], "minimize") is None
    assert step_back(records, "maximize") is None
    # nothing safe to beat (every run is near the edge): the pick takes the best as it is
    assert step_back(records[:2], "minimize") is None
    assert step_back([records[1], records[2]], "minimize") is None  # nothing diverged
    # the best run nearly diverged (its loss jumped back up), a steady one is behind: its
    # config is to be trained again below its own rate
    jumped = TrialRecord(3, "complete", TrialConfig(0.08).to_dict(), values=(2.3, 0.9, 2.2, 0.1),
                         val_losses=(2.3, 0.9, 2.2, 0.1))
    best, lr = step_back([jumped, records[2]], "minimize")
    assert best.number == 3 and lr == pytest.approx(0.08 / (EDGE_MARGIN * STEP_BACK_ROOM))


# --- in an Optuna study ------------------------------------------------------------------

def sweep_with(run, n_trials: int, confirm_seeds: int = 2, confirm_after: int = 3) -> Sweep:
    space = SearchSpace(lr=(1e-3, 1e-1), schedules=("constant",), batch_sizes=(32,),
                        warmup=(0.0, 0.0))
    return Sweep(space=space, run=run, n_train=1000, n_evals=2, n_trials=n_trials,
                 direction="minimize", metric="val_loss", epochs=2,
                 confirm_seeds=confirm_seeds, confirm_after=confirm_after)


def scripted_run(first_values: list[float], extra: list[float]):
    """Trial k ends at first_values[k]; the extra seeds end at `extra`, in call order."""
    count, extras = iter(first_values), iter(extra)
    offsets = []

    def run(config, reporter, seed_offset=0):
        offsets.append(seed_offset)
        final = next(count) if seed_offset == 0 else next(extras)
        state = DIVERGED if math.isnan(final) else COMPLETE
        return TrialOutcome(state, values=[1.0, final], epochs_run=2.0, seconds=0.1)

    run.offsets = offsets
    return run


def optimize(sweep: Sweep) -> optuna.Study:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    pruner = make_pruner("none", sweep.n_evals)
    confirmer = ConfirmLeader(sweep, min_spend_ratio=0)
    study.optimize(make_objective(sweep, pruner), n_trials=sweep.n_trials,
                   callbacks=[confirmer])
    confirmer.settle(study)
    return study


def test_a_lucky_leader_is_confirmed_and_drops_behind():
    # trial 2 is lucky (0.10), its mean is 0.5: trial 1 (0.30) is re-checked and wins;
    # then it is trained on one held-out seed (0.38), the value the user is told
    run = scripted_run([0.5, 0.3, 0.1], [0.7, 0.7, 0.35, 0.35, 0.38])
    sweep = sweep_with(run, n_trials=3)
    records = records_from_study(optimize(sweep))
    assert [r.number for r in records] == [0, 1, 2]  # confirmations are not trials
    by_number = {r.number: r for r in records}
    assert by_number[2].seed_values == (0.1, 0.7, 0.7) and not by_number[2].holdout_values
    assert by_number[1].seed_values == (0.3, 0.35, 0.35)
    assert by_number[1].holdout_values == (0.38,)
    assert run.offsets == [0, 0, 0, 1, 2, 1, 2, 3]  # the held-out seed chose nothing
    assert not by_number[0].seed_values  # never led after trial 1: never re-trained
    result = TuneResult(records)
    assert result.best_record.number == 1  # 0.333 beats 0.5
    assert by_number[1].final_value == pytest.approx(statistics.fmean((0.3, 0.35, 0.35)))
    assert result.best_value == pytest.approx(0.38)
    assert result.best_std == pytest.approx(statistics.stdev((0.3, 0.35, 0.35, 0.38)))
    assert by_number[1].extra_epochs == 6.0
    assert "0.38 on 1 held-out seed (0.3333 ± 0.029 over the 3 seeds that chose it)" in (
        result.summary())


def test_a_pick_that_diverges_on_its_held_out_seed_is_replaced_by_the_next_one():
    nan = math.nan
    # 2 leads, falls behind 1 (0.3 -> mean 0.317); 1 diverges on its held-out seed, so
    # 2 (mean 0.4) is the pick and is held out in turn
    run = scripted_run([0.5, 0.3, 0.1], [0.5, 0.6, 0.3, 0.35, nan, 0.45])
    records = {r.number: r for r in records_from_study(optimize(sweep_with(run, 3)))}
    assert records[1].state == "diverged" and "held-out seed 3" in records[1].reason
    result = TuneResult(list(records.values()))
    assert result.best_record.number == 2 and result.best_value == pytest.approx(0.45)
    assert run.offsets[-2:] == [3, 3]


def test_the_next_pick_after_a_held_out_divergence_is_confirmed_before_it_is_told():
    nan = math.nan
    # 2 leads and holds on its extra seeds, then diverges on its held-out seed; 1 had never
    # been re-trained: it is confirmed on 2 extra seeds, then held out, not told on 1 seed
    run = scripted_run([0.5, 0.3, 0.1], [0.1, 0.1, nan, 0.31, 0.32, 0.33])
    records = {r.number: r for r in records_from_study(optimize(sweep_with(run, 3)))}
    assert records[2].state == "diverged" and "held-out seed 3" in records[2].reason
    assert run.offsets == [0, 0, 0, 1, 2, 3, 1, 2, 3]
    assert records[1].seed_values == (0.3, 0.31, 0.32)
    result = TuneResult(list(records.values()))
    assert result.best_record.number == 1 and result.best_value == pytest.approx(0.33)


def test_a_leader_that_diverges_on_an_extra_seed_is_never_recommended():
    nan = math.nan
    sweep = sweep_with(scripted_run([0.5, 0.3, 0.1], [nan, nan, nan]), n_trials=3)
    records = {r.number: r for r in records_from_study(optimize(sweep))}
    assert records[2].state == "diverged" and "extra seed 1" in records[2].reason
    assert records[1].state == "diverged" and records[0].state == "diverged"
    assert TuneResult(list(records.values())).best_record is None


def test_near_copies_of_a_config_that_diverged_on_an_extra_seed_are_passed_over():
    # TPE sampled four near-copies of a config on the cliff's edge (lr 0.06-0.08): each
    # finished at 0.1 on the sweep's seed and diverges on any other. Once the first copy
    # diverges on an extra seed, the others are not re-trained one after the other (nor,
    # when the rounds run out, recommended on one lucky seed): the config at lr 0.02 is.
    def run(config, reporter, seed_offset=0):
        run.offsets.append((config.lr, seed_offset))
        final = (0.3 + 0.01 * seed_offset if config.lr < 0.05
                 else math.nan if seed_offset else 0.1)
        state = DIVERGED if math.isnan(final) else COMPLETE
        return TrialOutcome(state, values=[1.0, final], epochs_run=2.0, seconds=0.1)

    run.offsets = []
    sweep = sweep_with(run, n_trials=5, confirm_after=None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for lr in (0.06, 0.065, 0.07, 0.08, 0.02):
        study.enqueue_trial({"lr": lr, "schedule": "constant", "warmup_fraction": 0.0,
                             "batch_size": 32})
    confirmer = ConfirmLeader(sweep, min_spend_ratio=0)
    study.optimize(make_objective(sweep, make_pruner("none", 2)), n_trials=5)
    confirmer.settle(study)
    result = TuneResult(records_from_study(study))
    assert result.best_config["lr"] == pytest.approx(0.02)
    assert result.best_value == pytest.approx(0.33)  # its held-out seed
    assert [offset for lr, offset in run.offsets if lr > 0.05 and offset] == [1]


def test_a_leader_that_nearly_diverges_on_an_extra_seed_is_marked_and_passed_over():
    # trial 1 (lr 0.08) finishes at 0.1, but on its first extra seed the loss jumps back
    # up to where it started: it counts as diverged there, the config is out, and trial 0
    # (lr 0.02, steady) is recommended
    def run(config, reporter, seed_offset=0):
        high = config.lr > 0.05
        curve = ([2.3, 0.9, 2.2, 0.25] if high and seed_offset
                 else [2.3, 0.9, 0.5, 0.1 if high else 0.3 + 0.01 * seed_offset])
        return TrialOutcome(COMPLETE, values=curve, val_losses=curve, epochs_run=4.0)

    sweep = sweep_with(run, n_trials=2, confirm_after=None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for lr in (0.02, 0.08):
        study.enqueue_trial({"lr": lr, "schedule": "constant", "warmup_fraction": 0.0,
                             "batch_size": 32})
    confirmer = ConfirmLeader(sweep, min_spend_ratio=0)
    study.optimize(make_objective(sweep, make_pruner("none", 4)), n_trials=2)
    confirmer.settle(study)
    records = {r.number: r for r in records_from_study(study)}
    assert records[1].state == "diverged"
    assert records[1].reason.startswith("nearly diverged on extra seed 1: its validation loss "
                                        "jumped back from 0.9 to 2.2")
    result = TuneResult(list(records.values()))
    assert result.best_config["lr"] == pytest.approx(0.02)
    assert result.best_value == pytest.approx(0.33)  # its held-out seed


def test_confirm_seeds_0_turns_it_off():
    sweep = sweep_with(scripted_run([0.5, 0.3, 0.1], []), n_trials=3, confirm_seeds=0)
    study = optimize(sweep)
    assert len(study.trials) == 3
    assert all(not r.seed_values for r in records_from_study(study))


# --- end to end ----------------------------------------------------------------------------



def test_tune_reports_the_seed_mean_of_the_best_and_keeps_it_through_resume(digits, tmp_path, mlp):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    kwargs = dict(epochs=2, progress=False, storage=storage, study_name="robust",
                  space={"lr": (1e-3, 3e-1), "schedules": ["constant", "cosine"]})
    result = autolr.tune(mlp(), digits, n_trials=10, **kwargs)
    assert len(result.records) == 10
    best = result.best_record
    assert len(best.seed_values) == 3 and len(best.holdout_values) == 1
    assert best.extra_epochs == 6.0  # 2 extra seeds and 1 held out, 2 epochs each
    assert result.best_value == pytest.approx(best.holdout_values[0])
    assert result.best_std == pytest.approx(statistics.stdev(best.seed_values
                                                             + best.holdout_values))
    assert "on 1 held-out seed" in result.summary()
    assert "over the 3 seeds that chose it" in result.summary()
    assert len(set(best.seed_values)) == 3  # three different seeds, not one run thrice

    resumed = autolr.tune(mlp(), digits, n_trials=12, **kwargs)
    assert len(resumed.records) == 12
    earlier = {r.number: r for r in resumed.records}
    assert earlier[best.number].seed_values == best.seed_values
    # the same pick: held out once, not again on resume
    assert resumed.best_record.number == best.number
    assert resumed.best_record.holdout_values == best.holdout_values
    assert TuneResult.load(resumed.save(tmp_path / "r.json")).best_value == resumed.best_value


def test_a_tiny_sweep_skips_the_robust_pick(digits, mlp):
    result = autolr.tune(mlp(), digits, n_trials=3, epochs=1, progress=False)
    assert not any(r.seed_values for r in result.records)  # 3 epochs < 4 x 2 extra runs


def test_an_error_in_the_picks_runs_ends_the_pick_not_the_sweep(digits, mlp, monkeypatch,
                                                                 caplog):
    # a model out of memory on the pick's first run lost every finished trial (helper-40)
    def out_of_memory(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("CUDA out of memory (simulated)")
    monkeypatch.setattr(autolr.pick, "run_seeds", out_of_memory)
    with caplog.at_level(logging.WARNING, logger="autolr"):
        result = autolr.tune(mlp(), digits, n_trials=8, epochs=1, progress=False,
                             range_test=False)
    assert len(result.records) == 8 and result.best_record is not None
    assert "the robust pick stopped: one of its runs raised RuntimeError" in caplog.text
    assert "or an error in its runs, logged" in result.summary()
    # a stop is still a stop
    monkeypatch.setattr(autolr.pick, "run_seeds", lambda *a, **k: (_ for _ in ()).throw(
        autolr.errors.SweepStopped("a worker died")))
    with pytest.raises(autolr.errors.SweepStopped):
        autolr.tune(mlp(), digits, n_trials=8, epochs=1, progress=False, range_test=False)


def test_the_report_shows_the_spread(digits, tmp_path, mlp):
    result = autolr.tune(mlp(), digits, n_trials=9, epochs=1, progress=False, pruner="none")
    html = result.report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "on 1 held-out seed" in html and "over the 3 seeds that chose it" in html
    assert "robust pick" in html


def edge_run():
    """lr 0.2 diverges; from lr 0.13 up a run is on the cliff's edge: 0.1 on the sweep's
    seed, diverged on any other. Below it, 0.15 (lr 0.05-0.13), 0.5 further down."""
    def run(config, reporter, seed_offset=0):
        run.calls.append((round(config.lr, 4), seed_offset))
        final = (math.nan if config.lr >= 0.2 or (config.lr >= 0.13 and seed_offset)
                 else 0.1 if config.lr >= 0.13 else 0.15 + 0.01 * seed_offset
                 if config.lr >= 0.05 else 0.5)
        if reporter is not None and reporter.report(0, {"value": 1.0, "val_loss": 1.0}):
            return TrialOutcome("pruned", values=[1.0], epochs_run=1.0)
        state = DIVERGED if math.isnan(final) else COMPLETE
        return TrialOutcome(state, values=[1.0, final], epochs_run=2.0, seconds=0.1)

    run.calls = []
    return run


def edge_sweep(run) -> tuple[optuna.Study, Sweep, Any]:
    """A study that ran lr 0.2 (diverged), 0.15 (0.1, on the edge) and 0.02 (0.5)."""
    sweep = sweep_with(run, n_trials=3, confirm_after=None)
    sweep = dataclasses.replace(sweep, space=dataclasses.replace(sweep.space, lr=(1e-3, 1.0)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for lr in (0.2, 0.15, 0.02):
        study.enqueue_trial({"lr": lr, "schedule": "constant", "warmup_fraction": 0.0,
                             "batch_size": 32})
    objective = make_objective(sweep, make_pruner("none", 2))
    study.optimize(objective, n_trials=3)
    return study, sweep, objective


def test_the_pick_trains_a_best_run_on_the_edge_again_just_clear_of_it(tmp_path):
    # The leader at lr 0.15 is passed over for the edge; the pick trains its config once
    # more at 0.2 / 1.65 = 0.121, unpruned (the study's pruner would cut it), and
    # recommends that, instead of falling back to the far worse lr 0.02.
    run = edge_run()
    study, sweep, objective = edge_sweep(run)
    study.pruner = optuna.pruners.ThresholdPruner(upper=0.5)  # would prune at 1.0
    pruner = study.pruner
    ConfirmLeader(sweep, min_spend_ratio=0, objective=objective).settle(study)
    assert study.pruner is pruner  # given back after the step back
    records = {r.number: r for r in records_from_study(study)}
    stepped = 0.2 / (EDGE_MARGIN * STEP_BACK_ROOM)
    assert records[3].params["lr"] == pytest.approx(stepped) and records[3].state == COMPLETE
    assert study.trials[3].user_attrs["steps_back"] == 1
    result = TuneResult(list(records.values()))
    assert result.best_config["lr"] == pytest.approx(stepped)
    assert result.best_value == pytest.approx(0.18)  # its held-out seed
    assert not records[1].seed_values  # the run on the edge is never re-trained
    assert records[3].steps_back_from == 1
    # trained on the sweep's seed, confirmed on 2 more, then held out on one more
    assert [offset for lr, offset in run.calls if lr == round(stepped, 4)] == [0, 1, 2, 3]
    assert ("passed over: trial 1 (val_loss 0.1) sits on the edge of divergence: lr 0.15 is "
            "within 1.5x of lr 0.2, which diverged for constant, batch 32, adamw; trial 3 "
            "trained its config again at lr 0.121 (a step back)") in result.summary()
    loaded = TuneResult.load(result.save(tmp_path / "result.json"))
    assert loaded.best_record.steps_back_from == 1 and loaded.summary() == result.summary()
    # once is enough: settling again (a resumed sweep) does not step back again
    ConfirmLeader(sweep, min_spend_ratio=0, objective=objective).settle(study)
    assert len(study.trials) == len(records_from_study(study)) + 2  # + its extra, held-out


def test_a_step_back_cut_short_by_a_kill_is_taken_again_not_re_run_as_a_trial():
    # the process died while training the twin: on resume, `recover` does not queue it
    # as a plain trial of the sweep (pruned like any); the pick steps back anew, unpruned
    run = edge_run()
    study, sweep, objective = edge_sweep(run)
    stepped = 0.2 / (EDGE_MARGIN * STEP_BACK_ROOM)
    params = sweep.space.params_for(TrialConfig(stepped, batch_size=32), sweep.n_train)
    study.enqueue_trial(params, user_attrs={"steps_back": 1})
    killed = study.ask()
    killed.set_user_attr("config", sweep.space.sample(killed, sweep.n_train).to_dict())
    study.tell(killed, state=optuna.trial.TrialState.FAIL)  # as recover closes a dead one
    assert recover(study) == 0
    ConfirmLeader(sweep, min_spend_ratio=0, objective=objective).settle(study)
    twins = [r for r in records_from_study(study) if r.steps_back_from == 1]
    assert len(twins) == 1 and twins[0].number == killed.number + 1
    assert twins[0].state == COMPLETE and twins[0].params["lr"] == pytest.approx(stepped)
    assert TuneResult(records_from_study(study)).best_record.number == twins[0].number
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))


@pytest.mark.parametrize("alive", [False, True])
def test_a_step_back_queued_but_never_started_is_taken_again_only_if_its_process_died(
        monkeypatch, alive):
    # killed between queueing the twin and starting it (microseconds apart): on resume the
    # waiting twin is closed, not popped as a plain (pruned) trial of the sweep, and the
    # pick steps back anew; a process still alive is about to start it: left alone
    run = edge_run()
    study, sweep, objective = edge_sweep(run)
    never = ConfirmLeader(sweep, min_spend_ratio=0, objective=objective)
    monkeypatch.setattr(study, "optimize", lambda *a, **k: None)  # dies before it runs
    pid = os.getpid() if alive else dead_pid()
    monkeypatch.setattr(autolr.storage.os, "getpid", lambda: pid)
    never.step_back(study)
    monkeypatch.undo()
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs["steps_back"] == 1
    assert waiting[0].user_attrs["owner"]["pid"] == pid
    assert recover(study) == 0
    if alive:
        assert study.get_trials(states=(optuna.trial.TrialState.WAITING,)) == waiting
        return
    assert not study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    ConfirmLeader(sweep, min_spend_ratio=0, objective=objective).settle(study)
    twins = [r for r in records_from_study(study) if r.steps_back_from == 1]
    assert len(twins) == 1 and twins[0].state == COMPLETE
    assert TuneResult(records_from_study(study)).best_record.number == twins[0].number
