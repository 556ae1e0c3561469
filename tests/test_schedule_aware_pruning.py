"""Pruning that is fair to decaying schedules: LR profiles, the decay-aware median rule and
the LR-aware stall rule, on synthetic curves in real Optuna studies."""

from __future__ import annotations

import math

import optuna
import pytest

from autolr.backends.optuna import make_pruner
from autolr.lr_profile import EvalProfile
from autolr.pruning import AutoLRPruner, DecayAwareMedianPruner, stop_reason
from autolr.space import TrialConfig

N = 10  # evaluations per trial


def config(schedule: str = "constant", warmup: float = 0.0) -> dict:
    return TrialConfig(0.1, schedule, warmup_fraction=warmup).to_dict()


def finished(study: optuna.Study, schedule: str, curve: list[float]) -> None:
    study.add_trial(optuna.trial.create_trial(
        value=curve[-1], intermediate_values=dict(enumerate(curve)),
        user_attrs={"config": config(schedule)}))


def running(study: optuna.Study, schedule: str, curve: list[float],
            warmup: float = 0.0) -> optuna.Trial:
    trial = study.ask()
    trial.set_user_attr("config", config(schedule, warmup))
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial


def flat(value: float) -> list[float]:
    return [value] * N


# --- profiles ---------------------------------------------------------------------------

def test_constant_has_no_decay_ahead_and_is_always_judged():
    profile = EvalProfile.of(TrialConfig(0.1), N)
    assert profile.ahead == (0.0,) * N and all(profile.judged)
    assert profile.multiplier == (1.0,) * N


def test_one_cycle_is_not_judged_on_its_ramp_and_has_its_decay_ahead_after_the_peak():
    profile = EvalProfile.of(TrialConfig(0.1, "one_cycle"), N)  # peak at 30%
    assert profile.judged[:3] == (False, False, False) and all(profile.judged[3:])
    assert profile.ahead[3] > 0.9 and profile.ahead[-1] == 0.0


def test_a_cycle_s_peak_is_not_judged_while_a_later_cycle_rises_again():
    # 4 triangular cycles over 5 evaluations (40 steps of the profile): evaluation 2 ends
    # on the second cycle's peak, as high as any later lr, but the lr will rise to the
    # next peaks again: judged only on the last cycle's way down
    cyclic = EvalProfile.of(TrialConfig(0.1, "cyclic", schedule_params={"cycles": 4}), 5)
    assert cyclic.multiplier[1] == pytest.approx(1.0)
    assert cyclic.judged == (False, False, False, False, True)
    restarts = EvalProfile.of(TrialConfig(0.1, "cosine_restarts",
                                          schedule_params={"cycles": 3, "cycle_mult": 2}), 6)
    assert restarts.judged[:2] == (False, False) and all(restarts.judged[2:])  # last: 4/7


def test_one_pruner_serving_two_studies_profiles_each_trial_by_its_own_config():
    # trial ids restart at 0 in each storage: a cache keyed by them judged the second
    # study's constant trial with the first's one-cycle profile
    pruner = DecayAwareMedianPruner(N)
    first = optuna.create_study(pruner=pruner)
    running(first, "one_cycle", [1.0])
    assert pruner.profile(first.trials[0]).judged[:3] == (False,) * 3
    second = optuna.create_study(pruner=pruner)
    running(second, "constant", [1.0])
    assert second.trials[0]._trial_id == first.trials[0]._trial_id  # noqa: SLF001
    assert pruner.profile(second.trials[0]).judged[:3] == (True,) * 3


def test_warmup_is_never_judged():
    profile = EvalProfile.of(TrialConfig(0.1, "cosine", warmup_fraction=0.35), N)
    assert profile.judged[:3] == (False,) * 3 and all(profile.judged[4:])


def test_a_cyclic_schedule_is_judged_only_in_its_last_descent():
    profile = EvalProfile.of(TrialConfig(0.1, "cyclic", {"cycles": 2}), N)
    assert not any(profile.judged[:7]) and all(profile.judged[7:])


def test_step_decay_has_its_drops_ahead():
    profile = EvalProfile.of(TrialConfig(0.1, "step"), N)  # x0.1 every third of the run
    assert profile.multiplier[4] == pytest.approx(0.1)
    assert profile.ahead[0] == pytest.approx(1 - profile.multiplier[-1])
    assert profile.ahead[4] == pytest.approx(0.1 - profile.multiplier[-1])


# --- the decay-aware median rule --------------------------------------------------------

def study_with_constant_leaders() -> optuna.Study:
    study = optuna.create_study(pruner=DecayAwareMedianPruner(N, n_startup_trials=3))
    for final in (0.30, 0.32, 0.34, 0.36, 0.38):  # constant trials: flat at their level
        finished(study, "constant", flat(final))
    return study


def test_a_worse_constant_trial_is_pruned_once_a_quarter_is_done():
    study = study_with_constant_leaders()
    assert not running(study, "constant", [0.9]).should_prune()  # 10%: too early
    trial = running(study, "constant", [0.9, 0.9, 0.9])
    assert trial.should_prune()
    assert study.pruner.cuts[trial.number] == ("behind the median of 5 finished trials with "
                                               "as much decay ahead, at evaluation 3")


def test_a_one_cycle_trial_at_its_peak_is_not_cut_by_constant_trials():
    study = study_with_constant_leaders()
    # mid-run, one-cycle is far behind the constant trials (it anneals later and wins)
    trial = running(study, "one_cycle", [0.9, 0.8, 0.7, 0.7, 0.65, 0.6])
    assert not trial.should_prune()


def test_optunas_median_pruner_would_have_cut_it():
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3)
    study = study_with_constant_leaders()
    study.pruner = pruner
    assert running(study, "one_cycle", [0.9, 0.8, 0.7, 0.7, 0.65, 0.6]).should_prune()


def test_a_one_cycle_trial_is_judged_against_other_one_cycle_trials():
    study = study_with_constant_leaders()
    for final in (0.20, 0.22, 0.24):  # one-cycle trials: high mid-run, low at the end
        finished(study, "one_cycle", [0.9, 0.7, 0.5, 0.5, 0.5, 0.5, 0.4, 0.3, 0.25, final])
    assert running(study, "one_cycle", [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]).should_prune()
    assert not running(study, "one_cycle", [0.9, 0.7, 0.5, 0.5, 0.45, 0.45]).should_prune()


def test_a_trial_in_warmup_is_never_pruned_for_its_value():
    study = study_with_constant_leaders()
    assert not running(study, "constant", [5.0] * 4, warmup=0.45).should_prune()
    assert running(study, "constant", [5.0] * 6, warmup=0.45).should_prune()


def test_nothing_is_pruned_before_the_start_up_trials_completed():
    study = optuna.create_study(pruner=DecayAwareMedianPruner(N, n_startup_trials=5))
    for final in (0.3, 0.3):
        finished(study, "constant", flat(final))
    assert not running(study, "constant", flat(0.9)[:6]).should_prune()


def test_a_trial_without_a_stored_config_is_left_alone():
    study = study_with_constant_leaders()
    trial = study.ask()
    for step in range(6):
        trial.report(0.9, step)
    assert not trial.should_prune()


def test_maximize():
    study = optuna.create_study(direction="maximize",
                                pruner=DecayAwareMedianPruner(N, n_startup_trials=3))
    for final in (0.9, 0.91, 0.92):
        finished(study, "constant", flat(final))
    assert running(study, "constant", [0.5] * 4).should_prune()
    assert not running(study, "constant", [0.95] * 4).should_prune()


def test_decay_median_is_the_decay_aware_rule_inside_autolrs_pruner():
    pruner = make_pruner("decay_median", N)
    assert isinstance(pruner, AutoLRPruner) and pruner.n_evals == N
    assert type(pruner.wrapped) is DecayAwareMedianPruner


# --- the LR-aware stall rule ------------------------------------------------------------

STALLED = [1.0, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]  # flat for 4 evaluations


def test_flat_at_a_high_learning_rate_is_a_stall():
    profile = EvalProfile.of(TrialConfig(0.1), N)
    assert stop_reason(STALLED, 3, 1e-3, "minimize", profile) == (
        "stalled: not 0.001 (relative) better than its best before for 3 evaluations, to "
        "evaluation 7, at 1x its base learning rate with little decay ahead")


def test_flat_once_the_schedule_has_annealed_is_not_a_stall():
    profile = EvalProfile.of(TrialConfig(0.1, "step"), N)  # 1% of the lr from 66% on
    assert profile.multiplier[6] < 0.05
    assert stop_reason(STALLED, 3, 1e-3, "minimize", profile) is None
    assert stop_reason(STALLED, 3, 1e-3, "minimize") == (  # without the profile
        "stalled: not 0.001 (relative) better than its best before for 3 evaluations, to "
        "evaluation 7")


def test_flat_with_most_of_the_decay_still_to_come_is_not_a_stall_yet():
    # a plateau mid-cosine is what its decay brings down; once the decay is mostly spent
    # at a high learning rate (an exponential near its 30% floor), flat is a stall again
    cosine = EvalProfile.of(TrialConfig(0.1, "cosine"), N)
    assert cosine.multiplier[6] > 0.05 and cosine.ahead[6] > 0.5 * cosine.multiplier[6]
    assert stop_reason(STALLED, 3, 1e-3, "minimize", cosine) is None
    floored = EvalProfile.of(TrialConfig(0.1, "exponential",
                                         schedule_params={"final_fraction": 0.3}), 7)
    assert floored.multiplier[6] == pytest.approx(0.3, abs=0.02)
    assert stop_reason(STALLED, 3, 1e-3, "minimize", floored).endswith(
        "at 0.31x its base learning rate with little decay ahead")


def test_flat_during_warmup_is_not_a_stall():
    profile = EvalProfile.of(TrialConfig(0.1, warmup_fraction=0.55), N)
    assert stop_reason(STALLED, 3, 1e-3, "minimize", profile) is None


def test_a_nan_is_divergence_whatever_the_schedule():
    profile = EvalProfile.of(TrialConfig(0.1, "one_cycle", warmup_fraction=0.5), N)
    assert stop_reason([1.0, math.nan], 3, 1e-3, "minimize", profile) == "diverged"


def test_the_pruner_applies_the_lr_aware_stall_rule():
    study = optuna.create_study(pruner=AutoLRPruner(patience=3, n_evals=N))
    finished(study, "constant", flat(0.1))
    assert running(study, "constant", STALLED).should_prune()
    assert not running(study, "step", STALLED).should_prune()
