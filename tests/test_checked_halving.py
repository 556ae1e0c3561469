"""Successive halving that halves only on rungs the sweep's best finished trials would have
passed: synthetic curves in real Optuna studies, and a real sweep."""

from __future__ import annotations

import optuna
import pytest
import torch

import autolr
from autolr.backends.optuna import make_pruner
from autolr.checked_halving import CheckedHalvingPruner
from autolr.errors import AutoLRError
from autolr.reporting.data import pruning_rule
from autolr.space import TrialConfig

N = 18  # evaluations: the candidate first rungs are evaluations 2, 4 and 6 (steps 1, 3, 5)
FINALS = [0.20 + 0.02 * i for i in range(8)]


def config(schedule: str = "constant") -> dict:
    return TrialConfig(0.1, schedule).to_dict()


def finished(study: optuna.Study, curve: list[float], schedule: str = "constant") -> None:
    study.add_trial(optuna.trial.create_trial(
        value=curve[-1], intermediate_values=dict(enumerate(curve)),
        user_attrs={"config": config(schedule)}))


def running(study: optuna.Study, curve: list[float], schedule: str = "constant") -> optuna.Trial:
    trial = study.ask()
    trial.set_user_attr("config", config(schedule))
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial


def curve(early: float, final: float, early_until: int = N // 2) -> list[float]:
    """At `early` for the first `early_until` evaluations, then at `final`."""
    return [early] * early_until + [final] * (N - early_until)


def study_where(rank_early_as_final: bool, count: int = 8) -> optuna.Study:
    study = optuna.create_study(pruner=CheckedHalvingPruner(N))
    for i, final in enumerate(FINALS[:count]):
        early = 0.4 + 0.04 * (i if rank_early_as_final else count - 1 - i)
        finished(study, curve(early, final))
    return study


# --- which rungs the sweep has verified -------------------------------------------------

def test_rungs_start_at_a_ninth_of_the_run_where_early_values_rank_as_final_ones():
    study = study_where(rank_early_as_final=True)
    assert study.pruner.rung_steps(study) == [1, 7]  # evaluations 2 and 8


def test_the_first_rung_moves_later_when_only_later_values_rank_as_final_ones():
    study = optuna.create_study(pruner=CheckedHalvingPruner(N))
    for i, final in enumerate(FINALS):  # wrong order until evaluation 3, right from 4 on
        wrong, right = 0.4 + 0.04 * (7 - i), 0.3 + 0.02 * i
        finished(study, [wrong] * 3 + [right] * 6 + [final] * (N - 9))
    assert study.pruner.rung_steps(study) == [3, 15]  # evaluations 4 and 16


def test_a_rung_where_the_best_trials_were_not_judged_passes_unless_required():
    # two one-cycle winners are on their ramp at the early rungs, never judged there: the
    # default takes such a rung as passed (the rule would not have cut them); the strict
    # check (a benchmark option, not adopted) wants every rung judged
    for strict, rungs in ((False, [1, 7]), (True, [])):  # at 1/3: 1 trial to compare
        study = optuna.create_study(pruner=CheckedHalvingPruner(N, require_judged=strict))
        for i, final in enumerate(FINALS):
            early = 0.4 + 0.04 * i
            finished(study, curve(early, final), schedule="one_cycle" if i < 2 else "constant")
        assert study.pruner.rung_steps(study) == rungs, strict


def test_no_rung_where_early_values_rank_trials_the_other_way():
    study = study_where(rank_early_as_final=False)
    assert study.pruner.rung_steps(study) == []


# --- pruning decisions ------------------------------------------------------------------

def test_a_trial_behind_the_best_quarter_at_a_verified_rung_is_cut():
    study = study_where(rank_early_as_final=True)
    cut = running(study, [0.9, 0.9])
    assert cut.should_prune()
    assert study.pruner.cuts[cut.number] == ("outside the best 1/4 at the rung at "
                                             "evaluation 2 (checked halving)")
    assert not running(study, [0.41, 0.41]).should_prune()  # second best of nine
    # between rungs (and before a quarter of the run, where the median rule starts) no cut
    assert not running(study, [0.9]).should_prune()


def test_nothing_is_cut_early_where_the_sweep_showed_early_values_mislead():
    study = study_where(rank_early_as_final=False)
    assert not running(study, [0.9, 0.9]).should_prune()


def test_nothing_is_cut_early_before_enough_trials_completed():
    study = study_where(rank_early_as_final=True, count=4)  # the median rule's start-up: 5
    assert not running(study, [0.9, 0.9]).should_prune()


def test_a_one_cycle_trial_on_its_ramp_is_not_cut_at_a_rung():
    study = study_where(rank_early_as_final=True)
    assert not running(study, [0.9, 0.9], schedule="one_cycle").should_prune()


def test_the_median_rule_still_judges_later_steps():
    study = study_where(rank_early_as_final=False)
    # a quarter of the run and more: behind the median of the completed trials
    assert running(study, [0.9] * 6).should_prune()


def test_maximize():
    study = optuna.create_study(direction="maximize", pruner=CheckedHalvingPruner(N))
    for i, final in enumerate(FINALS):
        finished(study, curve(-(0.4 + 0.04 * i), -final))
    assert running(study, [-0.9, -0.9]).should_prune()
    assert not running(study, [-0.3, -0.3]).should_prune()  # the best at the rung


def test_a_ladder_is_dropped_once_it_would_cut_a_best_finished_trial():
    study = study_where(rank_early_as_final=True)
    assert study.pruner.rung_steps(study) == [1, 7]
    running(study, [0.30, 0.30])  # ahead of every finished trial at evaluation 2
    # the second-best finished trial (0.44 there) is no longer in the best quarter
    assert study.pruner.rung_steps(study) == [3, 15]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="reduction_factor"):
        CheckedHalvingPruner(N, reduction_factor=1)
    with pytest.raises(ValueError, match="n_checked"):
        CheckedHalvingPruner(N, n_checked=0)
    for fractions in ((), (0.0, 1 / 9), (1 / 9, 1.0)):
        with pytest.raises(ValueError, match="rung_fractions"):
            CheckedHalvingPruner(N, rung_fractions=fractions)


def test_an_earlier_ladder_offered_is_taken_first_where_early_values_rank_as_final_ones():
    pruner = CheckedHalvingPruner(N, rung_fractions=(1 / 4, 1 / 18))  # any order
    study = optuna.create_study(pruner=pruner)
    for i, final in enumerate(FINALS):
        finished(study, curve(0.4 + 0.04 * i, final))
    assert pruner.rung_steps(study) == [0, 3, 15]  # evaluations 1, 4, 16: ASHA's


def test_ladders_climb_by_the_reduction_factor_and_stop_before_the_end():
    pruner = CheckedHalvingPruner(N)
    assert pruner.ladder(1 / 9) == [1, 7] and pruner.ladder(1 / 3) == [5]
    assert CheckedHalvingPruner(40, reduction_factor=3).ladder(1 / 9) == [3, 11, 35]


@pytest.mark.parametrize("name", ["auto", "checked_halving"])
def test_checked_halving_is_the_default_pruner(name):
    pruner = make_pruner(name, N)
    assert isinstance(pruner.wrapped, CheckedHalvingPruner) and pruner.n_evals == N
    with pytest.raises(AutoLRError, match="checked_halving"):
        make_pruner("checked", N)


# --- in a real sweep --------------------------------------------------------------------

def test_a_real_sweep_halves_once_its_trials_show_early_values_rank_as_final_ones(
        digits, mlp) -> None:
    torch.manual_seed(0)  # the model's initial weights: the sweep then runs the same each time
    result = autolr.tune(mlp(), digits, pruner="checked_halving", n_trials=40, epochs=9,
                         confirm_seeds=0, range_test=False, progress=False, seed=0)
    records = result.records
    assert len(records) == 40 and sum(r.state == "complete" for r in records) >= 8
    # before a quarter of the run only halving cuts (the median rule starts there, a
    # stall needs 3 flat evaluations): a cut there is a verified rung's
    early_cuts = [r for r in records if r.state == "pruned" and len(r.values) < 9 / 4]
    assert early_cuts and all("(checked halving)" in r.reason for r in early_cuts)
    later = [r for r in records if r.state == "pruned" and "median" in (r.reason or "")]
    assert all(len(r.values) >= 9 / 4 for r in later)
    # the report's compute-saved split reads these reasons: each names its rule
    cut = [r for r in records if r.state == "pruned"]
    assert {pruning_rule(r.reason) for r in cut} <= {"halving", "the median rule", "stalls"}
    assert {"halving", "the median rule"} <= {pruning_rule(r.reason) for r in cut}
    best = min(r.values[-1] for r in records if r.state == "complete")
    assert result.best_value == pytest.approx(best)
