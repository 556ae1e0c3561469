"""Pruning: the pure divergence and stall rules on synthetic curves, and AutoLRPruner on real
Optuna studies (`study.ask(); trial.report(...); trial.should_prune()`)."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from autolr.pruning import (
    DIVERGENCE_FACTOR,
    DIVERGENCE_PATIENCE,
    AutoLRPruner,
    DivergenceMonitor,
    find_divergence,
    is_stalled,
    stop_reason,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def decreasing(n: int = 100, start: float = 2.3, scale: float = 40.0) -> list[float]:
    """A smooth training-loss curve: exponential decay from `start`."""
    return [start * math.exp(-i / scale) for i in range(n)]


# --- divergence ------------------------------------------------------------------------

def test_the_default_factor_is_fastais_4x():
    assert DIVERGENCE_FACTOR == 4.0


def peak_lr_spike(width: int) -> list[float]:
    """A run falling from 2.3 to 0.3, a jump to 3.0 for `width` steps (a one-cycle peak),
    then back down to 0.25: the shape of a MNIST-1D run the 4x rule used to stop."""
    falling = list(np.linspace(2.3, 0.3, 300))
    return falling + [3.0] * width + list(np.linspace(0.3, 0.25, 300))


def test_a_spike_that_comes_back_down_is_not_divergence():
    assert find_divergence(peak_lr_spike(width=8)) is None
    # the same spike ends the run when the smoothed loss need cross 4x only once: this
    # test exercises the patience, not the smoothing
    assert find_divergence(peak_lr_spike(width=8), patience=1) is not None


def test_a_loss_that_stays_up_is_divergence_after_the_patience():
    found = find_divergence(peak_lr_spike(width=60))
    assert found is not None
    step, reason = found
    # the raw jump is at step 300; the smoothed loss crosses 4x a few steps later
    assert 300 + DIVERGENCE_PATIENCE <= step <= 300 + DIVERGENCE_PATIENCE + 5
    assert reason.startswith("smoothed loss ") and "for 20 steps" in reason


def test_a_loss_below_zero_diverges_by_its_size_not_by_a_multiple_of_its_best():
    # a negative log-likelihood: 4x a negative best is below it, so nothing but NaN/inf
    # counted, and a run whose loss went from -1 to 1e6 was complete
    step, reason = find_divergence([-1.0] * 50 + [1e6] * 200)
    assert step == 69 and "above 2 (3x its size above where it started, -1)" in reason
    assert find_divergence([-1.0] * 50 + [1.5] * 200) is None  # risen 2.5: under 3x 1
    assert find_divergence([-1.0] * 50 + [2.5] * 200) is not None
    assert find_divergence([-1.0 - i / 100 for i in range(300)]) is None  # still falling
    assert find_divergence([0.0] * 300) is None
    # a loss that crosses zero (a negative cosine similarity at a low learning rate):
    # batch noise of +-0.04 around a mean that creeps from 0.01 to -0.01 is 4x any best
    # near zero, but not 3x the loss's size
    rng = np.random.default_rng(0)
    creeping = (np.linspace(0.01, -0.01, 400) + 0.04 * rng.standard_normal(400)).tolist()
    assert find_divergence(creeping) is None
    assert find_divergence(creeping + [0.5] * 50) is not None  # one that does blow up
    # ...but a positive loss whose rounding dips below zero once keeps the 4x rule: a
    # collapse back to its start is still a blow-up
    converging = [max(1e-4, math.exp(-i / 15)) for i in range(200)] + [1.0] * 100
    converging[150] = -3.7e-8
    assert find_divergence(converging) is not None
    # a positive loss is judged as before: 4x its best
    assert find_divergence([1.0] * 50 + [3.5] * 200) is None
    assert find_divergence([1.0] * 50 + [4.5] * 200) is not None


def test_a_run_that_ends_blown_up_is_divergence_even_before_the_patience():
    # 18 steps in all (3 epochs of 6 batches): too short for 20 in a row
    short = [2.3, 50.0] + [5e3] * 16
    step, reason = find_divergence(short)
    assert step == len(short) - 1 and "still above 4x its best" in reason
    assert "when the run ended, 17 steps on" in reason
    # a long run that blows up in its last steps: the same
    late = decreasing(300) + [30.0] * 10
    step, reason = find_divergence(late)
    assert step == 309 and "when the run ended" in reason
    # ...but one whose spike is over by the end is not
    assert find_divergence(peak_lr_spike(width=8)[:330]) is None
    monitor = DivergenceMonitor()
    assert monitor.at_end() is None  # no steps at all: nothing blew up
    # one bad last batch (a partial batch of a few rows) lifts the average past 4x its
    # best, but is no blow-up: a trained run was recorded diverged for it
    trained = [2.3 * math.exp(-i / 40) + 0.02 for i in range(400)]
    assert find_divergence(trained + [5.0]) is None
    assert find_divergence(trained + [5.0, 5.0]) is None
    assert find_divergence(trained + [5.0] * 3) is not None
    # ...but a run whose last step or two go far above (4x the limit) did blow up: a run
    # of 3 steps in all at too high a learning rate ended at 1e9 and was "complete"
    assert find_divergence(trained + [1e6, 1e9]) is not None
    assert find_divergence([2.3, 2.0, 1e6]) is not None


def test_a_loss_below_zero_that_climbs_back_past_its_start_diverges():
    # a cosine-similarity loss (in [-1, 1]) that learned to -0.95 and then sits at +1, the
    # opposite of its target: "3x its size above its best" is 1.9, above the loss's
    # maximum, so nothing could have fired; now 3 sizes above where it started does
    learned = [-0.95 * min(1.0, i / 100) for i in range(200)]
    step, reason = find_divergence(learned + [1.0] * 300)
    assert 200 < step <= 200 + DIVERGENCE_PATIENCE + 10
    assert "3x its size above where it started" in reason
    assert find_divergence(learned + [-0.9] * 300) is None  # a small setback is not
    # a Gaussian NLL from 1 down to -3, then back up to 5, above its start
    nll = [1.0] * 20 + [1 - 4 * i / 100 for i in range(100)] + [5.0] * 300
    assert find_divergence(nll) is not None


@pytest.mark.parametrize(("bad", "word"), [(math.nan, "nan"), (math.inf, "inf"),
                                           (-math.inf, "-inf")])
@pytest.mark.parametrize("at", [0, 1, 57])
def test_non_finite_loss_is_flagged_at_the_exact_step(bad, word, at):
    curve = decreasing(at) + [bad] + decreasing(20)
    step, reason = find_divergence(curve)
    assert step == at
    assert reason == f"loss became {word} at step {at}"


def test_the_monitor_flags_step_by_step():
    monitor = DivergenceMonitor()
    assert [monitor.update(v) for v in (2.0, 1.5, 1.2)] == [None, None, None]
    assert monitor.update(math.nan) == "loss became nan at step 3"


def test_an_exploding_loss_is_flagged_within_a_few_steps_of_the_jump():
    curve = decreasing(100)
    jump = len(curve)
    curve += [curve[-1] * 2.0**k for k in range(1, 60)]  # doubles every step
    step, reason = find_divergence(curve)
    # the raw loss passes 4x at jump + 1; the smoothed one follows a few steps later, and
    # must stay there DIVERGENCE_PATIENCE steps
    assert jump + DIVERGENCE_PATIENCE <= step <= jump + 8 + DIVERGENCE_PATIENCE
    assert "stayed above 4x its best" in reason and f"to step {step}" in reason
    assert f"for {DIVERGENCE_PATIENCE} steps" in reason


def test_a_sudden_100x_jump_is_flagged_within_a_few_steps():
    curve = decreasing(100)
    jump = len(curve)
    curve += [curve[-1] * 100.0] * 50
    step, _ = find_divergence(curve)
    assert jump <= step <= jump + 5 + DIVERGENCE_PATIENCE


def test_a_blow_up_from_the_first_step_is_flagged_within_a_few_steps():
    curve = [2.3 * 2.0**k for k in range(30)]
    step, _ = find_divergence(curve)
    assert step <= 5 + DIVERGENCE_PATIENCE


def test_a_custom_factor_is_used():
    curve = decreasing(100)
    curve += [curve[-1] * 2.0**k for k in range(1, 60)]
    early, _ = find_divergence(curve, factor=2.0)
    late, _ = find_divergence(curve, factor=16.0)
    assert early < find_divergence(curve)[0] < late


def test_a_smooth_decreasing_curve_is_never_flagged():
    assert find_divergence(decreasing(2000, scale=300.0)) is None
    assert find_divergence([1.0] * 500) is None


def test_a_noisy_decreasing_curve_is_not_flagged(seed):
    rng = np.random.default_rng(seed)
    base = np.array(decreasing(2000, scale=400.0))
    noisy = base * (1 + 0.3 * rng.standard_normal(2000))
    assert find_divergence(noisy.clip(min=0).tolist()) is None


def near_zero_wobble() -> list[float]:
    """Converge from 2.3 to 1e-3, stay there, then wobble up to 4e-3..6e-3 (5x)."""
    curve = [max(2.3 * math.exp(-i / 10), 1e-3) for i in range(500)]
    return curve + [5e-3 + 1e-3 * (-1) ** i for i in range(300)]


def test_a_loss_wobbling_near_zero_is_not_flagged():
    assert find_divergence(near_zero_wobble()) is None


def test_the_floor_is_what_keeps_the_near_zero_wobble():
    # without the floor (0.05 x the first loss) the same wobble reads as a 4x blow-up:
    # this shows the test above exercises the floor rule, not the smoothing alone
    monitor = DivergenceMonitor(floor=0.0)
    reasons = [monitor.update(v) for v in near_zero_wobble()]
    assert any(r is not None for r in reasons)


def test_negative_losses_are_never_mistaken_for_a_blow_up():
    assert find_divergence([-1.0 - 0.01 * i for i in range(200)]) is None


# --- stall ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "patience", "expected"), [
    ([1.0, 0.5, 0.5, 0.5, 0.5], 3, True),   # flat for 3 evaluations after its best
    ([1.0, 0.5, 0.5, 0.5, 0.5], 4, False),  # the 4 recent ones include the drop to 0.5
    ([1.0, 0.5, 0.5, 0.5, 0.5], 5, False),  # not enough evaluations to judge
    ([1.0, 0.5, 0.5, 0.5, 0.4], 3, False),  # the last one improved
    ([0.9, 1.0, 1.0], 2, True),             # exactly patience + 1 evaluations, no better
    ([1.0, 0.9, 0.9], 2, False),
    ([1.0, 0.9], 1, False),
    ([1.0, 1.2, 1.1], 2, True),             # worse is not better
    ([1.0, 0.5, 0.5], 0, False),            # patience < 1: never stalled
    ([], 1, False),
])
def test_is_stalled_minimize(values, patience, expected):
    assert is_stalled(values, patience) is expected


@pytest.mark.parametrize(("values", "patience", "expected"), [
    ([0.5, 0.9, 0.9, 0.9], 2, True),
    ([0.5, 0.6, 0.7, 0.8], 2, False),
    ([0.5, 0.9, 0.8, 0.7], 2, True),
])
def test_is_stalled_maximize(values, patience, expected):
    assert is_stalled(values, patience, direction="maximize") is expected


def test_direction_matters():
    rising = [0.5, 0.6, 0.7, 0.8]
    assert is_stalled(rising, 2, direction="minimize")
    assert not is_stalled(rising, 2, direction="maximize")


@pytest.mark.parametrize(("last", "min_delta", "expected"), [
    (0.9995, 1e-3, True),   # 0.05% better: below the relative 0.1% threshold
    (0.998, 1e-3, False),   # 0.2% better
    (0.9995, 0.0, False),   # any improvement counts with min_delta 0
    (1.0, 0.0, True),       # equal is no improvement
    (0.95, 0.1, True),      # 5% better, but 10% was asked for
])
def test_min_delta_is_relative_to_the_best(last, min_delta, expected):
    assert is_stalled([1.0, last], 1, min_delta=min_delta) is expected


def test_min_delta_with_negative_values():
    assert is_stalled([-1.0, -1.0005], 1, min_delta=1e-3)
    assert not is_stalled([-1.0, -1.002], 1, min_delta=1e-3)


def test_stop_reason():
    assert stop_reason([1.0, math.nan], None, 1e-3, "minimize") == "diverged"
    assert stop_reason([1.0, -math.inf], 2, 1e-3, "maximize") == "diverged"
    assert stop_reason([1.0, 0.9, 0.9, 0.9], 2, 1e-3, "minimize") == (
        "stalled: not 0.001 (relative) better than its best before for 2 evaluations, to "
        "evaluation 4")
    assert stop_reason([1.0, 0.9, 0.9, 0.9], None, 1e-3, "minimize") is None
    assert stop_reason([1.0, 0.9, 0.8, 0.7], 2, 1e-3, "minimize") is None
    assert stop_reason([], 2, 1e-3, "minimize") is None


# --- AutoLRPruner on real studies -----------------------------------------------------------

def report(study: optuna.Study, values: list[float]) -> optuna.Trial:
    trial = study.ask()
    for step, value in enumerate(values):
        trial.report(value, step)
    return trial


def finished(study: optuna.Study, value: float, curve: list[float] | None = None) -> None:
    intermediate = dict(enumerate(curve)) if curve else None
    study.add_trial(optuna.trial.create_trial(value=value, intermediate_values=intermediate))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_report_is_pruned(bad):
    study = optuna.create_study(pruner=AutoLRPruner())
    trial = report(study, [1.0, 0.8, bad])
    assert trial.should_prune()
    assert study.pruner.reason(study, [1.0, 0.8, bad]) == "diverged"


def test_a_nan_is_pruned_before_the_wrapped_pruner_is_asked():
    wrapped = optuna.pruners.NopPruner()
    study = optuna.create_study(pruner=AutoLRPruner(wrapped, patience=10))
    assert report(study, [math.nan]).should_prune()


def test_no_reports_no_pruning():
    study = optuna.create_study(pruner=AutoLRPruner(patience=1))
    finished(study, 0.1)
    assert not study.ask().should_prune()


def test_a_stalled_trial_behind_the_best_is_pruned():
    study = optuna.create_study(pruner=AutoLRPruner(patience=2))
    finished(study, 0.5)
    values = [1.0, 0.9, 0.9, 0.9]
    assert report(study, values).should_prune()
    assert study.pruner.reason(study, values).startswith("stalled: ")


def test_a_flat_trial_that_leads_is_not_pruned():
    study = optuna.create_study(pruner=AutoLRPruner(patience=2))
    finished(study, 0.95)
    values = [1.0, 0.9, 0.9, 0.9]  # stalled, but 0.9 beats the best finished 0.95
    assert not report(study, values).should_prune()
    assert study.pruner.reason(study, values) is None


def test_a_stalled_trial_is_not_pruned_without_a_finished_trial():
    study = optuna.create_study(pruner=AutoLRPruner(patience=2))
    assert not report(study, [1.0, 0.9, 0.9, 0.9]).should_prune()


def test_a_stalled_trial_is_kept_until_patience_runs_out():
    study = optuna.create_study(pruner=AutoLRPruner(patience=3))
    finished(study, 0.5)
    assert not report(study, [1.0, 0.9, 0.9, 0.9]).should_prune()  # flat for 2 < 3
    assert report(study, [1.0, 0.9, 0.9, 0.9, 0.9]).should_prune()  # flat for 3


def test_a_stalled_trial_is_kept_without_patience():
    study = optuna.create_study(pruner=AutoLRPruner())  # patience=None: no stall rule
    finished(study, 0.5)
    assert not report(study, [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]).should_prune()


def test_stall_in_a_maximize_study():
    study = optuna.create_study(direction="maximize", pruner=AutoLRPruner(patience=2))
    finished(study, 0.9)
    assert report(study, [0.5, 0.6, 0.6, 0.6]).should_prune()  # flat and behind 0.9
    assert not report(study, [0.5, 0.6, 0.7, 0.8]).should_prune()  # still improving
    study = optuna.create_study(direction="maximize", pruner=AutoLRPruner(patience=2))
    finished(study, 0.55)
    assert not report(study, [0.5, 0.6, 0.6, 0.6]).should_prune()  # flat but leading


def median_study(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    study = optuna.create_study(pruner=pruner)
    for final in (0.30, 0.35, 0.40):
        finished(study, final, [1.0, 0.6, final])
    return study


@pytest.mark.parametrize("wrap", [True, False])
def test_defers_to_a_wrapped_median_pruner(wrap):
    median = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = median_study(AutoLRPruner(median if wrap else None, patience=5))
    # improving, not diverged or stalled: only the median rule can cut it
    worse = report(study, [1.2, 0.9])  # 0.9 at step 1 is worse than the median 0.6
    assert worse.should_prune() is wrap
    assert study.pruner.reason(study, [1.2, 0.9]) is None  # not one of autolr's own rules
    better = report(study, [0.9, 0.5])
    assert not better.should_prune()


def test_the_default_configs_trial_is_left_to_finish_unless_it_diverges_or_stalls():
    # the report compares the tuned config with it: with its finished value, not an
    # early one the median or halving rule cut it at
    median = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = median_study(AutoLRPruner(median, patience=2))
    default = study.ask()
    default.set_user_attr("baseline", True)
    for step, value in enumerate([1.2, 0.9]):
        default.report(value, step)
    assert not default.should_prune()  # behind the median: any other trial is cut here
    default.report(math.nan, 2)
    assert default.should_prune()
    flat = study.ask()
    flat.set_user_attr("baseline", True)
    for step, value in enumerate([1.0, 0.9, 0.9, 0.9]):
        flat.report(value, step)
    assert flat.should_prune()  # stalled, behind the best


def test_the_wrapped_pruner_alone_would_not_prune_a_nan_at_startup():
    # Median needs startup trials; autolr's rule does not wait for them
    median = optuna.pruners.MedianPruner(n_startup_trials=5)
    study = optuna.create_study(pruner=AutoLRPruner(median))
    assert report(study, [1.0, math.nan]).should_prune()
    plain = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    assert not report(plain, [1.0, math.nan]).should_prune()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"patience": 0}, r"patience must be None or >= 1, but got patience=0"),
    ({"min_delta": -0.1}, r"min_delta must be >= 0, but got min_delta=-0.1"),
])
def test_pruner_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoLRPruner(**kwargs)


def test_it_is_an_optuna_pruner():
    assert isinstance(AutoLRPruner(), optuna.pruners.BasePruner)


def test_a_jump_to_a_steady_tenfold_loss_late_in_a_run_is_divergence():
    """Late in a run the loss has fallen far; a smoothing window as long as the finders'
    (beta 0.98) lags so far behind that a jump to 10x the current loss went unflagged."""
    falling = list(np.linspace(2.3, 0.19, 100))
    found = find_divergence(falling + [1.9] * 40)
    # 13 steps: the 10-step EMA lag; then it must stay there DIVERGENCE_PATIENCE steps
    assert found is not None and 100 <= found[0] <= 115 + DIVERGENCE_PATIENCE


def test_heavy_batch_noise_on_a_falling_curve_is_not_divergence():
    rng = np.random.default_rng(0)
    trend = np.exp(np.linspace(np.log(2.3), np.log(0.02), 2000))
    assert find_divergence(list(trend * rng.lognormal(0.0, 0.7, 2000))) is None
