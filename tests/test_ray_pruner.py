"""autolr's schedule-aware pruners fed records as the Ray backend's driver gets them
(`autolr.backends.ray_pruner.SweepPruning`): the same decisions as in an Optuna study,
without Ray."""

from __future__ import annotations

import math
import random

import optuna
import pytest

from autolr.backends.ray_pruner import SweepPruning, read_cuts
from autolr.checked_halving import CheckedHalvingPruner
from autolr.pruning import DecayAwareMedianPruner
from autolr.result import TrialRecord
from autolr.space import TrialConfig

N = 12
CONSTANT = TrialConfig(0.01, "constant").to_dict()
ONE_CYCLE = TrialConfig(0.1, "one_cycle").to_dict()


def record(number, values, state="running", params=CONSTANT):
    return {"number": number, "params": params, "values": list(values), "state": state}


def curve(start, end, n=N):
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def finished(pruning, count=5):
    for number in range(count):
        pruning.report(record(number, curve(1.0, 0.2 + 0.01 * number), "complete"))


def test_a_trial_behind_the_finished_ones_is_stopped_and_says_why():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min")
    finished(pruning)
    behind = [pruning.report(record(9, [1.5] * k)) for k in range(1, N)]
    assert behind.index(True) == 2  # from a quarter of the run: evaluation 3 of 12
    assert pruning.cuts[9].startswith("behind the median of 5 finished trials")
    assert not any(pruning.report(record(10, curve(0.9, 0.1)[:k])) for k in range(1, N))


def test_a_one_cycle_trial_on_its_ramp_is_not_judged():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min")
    finished(pruning)
    ramp = [pruning.report(record(9, [1.5] * k, params=ONE_CYCLE)) for k in range(1, 4)]
    assert ramp == [False, False, False]


def test_maximize():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "max")
    for number in range(5):
        pruning.report(record(number, curve(0.1, 0.9), "complete"))
    assert pruning.report(record(9, [0.05] * 4))
    assert not pruning.report(record(10, [0.95] * 4))


def test_a_completed_trial_is_never_stopped_and_a_diverged_one_is_no_reference():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min")
    finished(pruning, 4)
    assert not pruning.report(record(4, [9.0] * N, "complete"))  # its last report
    pruning.report(record(5, [*curve(1.0, 0.5)[:5], math.nan], "diverged"))
    trials = {t.number: t for t in pruning.view.get_trials()}
    assert trials[4].state == optuna.trial.TrialState.COMPLETE
    assert trials[5].state == optuna.trial.TrialState.PRUNED


def test_a_stopped_trial_stays_a_reference_for_the_steps_it_reached():
    pruning = SweepPruning(CheckedHalvingPruner(N), "min")
    pruning.report(record(0, [0.7, 0.6]))
    pruning.stopped(0)
    (trial,) = pruning.view.get_trials()
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {0: 0.7, 1: 0.6}
    pruning.stopped(42)  # never reported: nothing to keep


def test_an_earlier_experiments_trials_are_references():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min")
    pruning.seed([TrialRecord(n, "complete", CONSTANT, values=tuple(curve(1.0, 0.2)))
                  for n in range(5)])
    assert pruning.report(record(5, [1.5] * 3))


@pytest.mark.parametrize("make", [lambda: DecayAwareMedianPruner(N),
                                  lambda: CheckedHalvingPruner(N)])
@pytest.mark.parametrize("seed", range(5))
def test_the_same_decisions_as_in_an_optuna_study(make, seed):
    # random curves, one trial at a time, each judged at every evaluation in both ways
    rng = random.Random(seed)
    schedules = ("constant", "cosine", "one_cycle", "step", "linear")
    pruning, study = SweepPruning(make(), "min"), optuna.create_study(pruner=make())
    for number in range(30):
        params = TrialConfig(10 ** rng.uniform(-4, -1), rng.choice(schedules),
                             warmup_fraction=rng.choice((0.0, 0.1))).to_dict()
        end = rng.uniform(0.1, 1.0)
        values = [v * rng.uniform(0.95, 1.05) for v in curve(1.2, end)]
        trial = study.ask()
        trial.set_user_attr("config", params)
        for step, value in enumerate(values):
            trial.report(value, step)
            optuna_stops = step < N - 1 and trial.should_prune()
            ray_stops = step < N - 1 and pruning.report(record(number, values[:step + 1],
                                                               params=params))
            assert optuna_stops == ray_stops, (number, step)
            if optuna_stops:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruning.stopped(number)
                break
        else:
            study.tell(trial, values[-1])
            pruning.report(record(number, values, "complete", params))
    assert pruning.cuts and pruning.cuts == study.pruner.cuts


def test_each_cut_is_logged_as_it_is_made(tmp_path):
    log = tmp_path / "sweep.cuts.jsonl"
    assert read_cuts(log) == {}  # no cut yet
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min", log)
    finished(pruning)
    assert pruning.report(record(9, [1.5] * 3))
    assert read_cuts(log) == {9: pruning.cuts[9]}
    with open(log, "a") as file:  # a driver killed mid-write leaves half a line
        file.write('\n{"number": 10, "rea')
    assert read_cuts(log) == {9: pruning.cuts[9]}
    assert pruning.report(record(11, [1.6] * 3))  # the next cut is still read
    assert read_cuts(log) == {9: pruning.cuts[9], 11: pruning.cuts[11]}


def test_the_default_configs_trial_is_never_cut():
    pruning = SweepPruning(DecayAwareMedianPruner(N), "min")
    finished(pruning)
    default = {**record(9, [1.5] * 6), "is_baseline": True}
    assert not pruning.report(default) and not pruning.cuts
    assert pruning.report({**default, "is_baseline": False})  # any other trial: cut
