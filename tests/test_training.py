"""The one training loop: schedule applied per step, evaluations, divergence, pruning."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch.optim.optimizer import register_optimizer_step_pre_hook

from autolr.data import coerce_data, steps_per_epoch
from autolr.metrics import METRICS
from autolr.space import TrialConfig
from autolr.training import COMPLETE, DIVERGED, PRUNED, train_trial

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return coerce_data((X / 16.0, y), seed=0)


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def run(config, data, epochs=3, **kwargs):
    kwargs.setdefault("loss_fn", torch.nn.CrossEntropyLoss())
    kwargs.setdefault("metric", METRICS["val_loss"])
    return train_trial(config, mlp, data, epochs=epochs, **kwargs)


class StopAt:
    """A reporter that asks to stop at a given evaluation and records what it saw."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at, self.steps, self.values, self.last_reason = stop_at, [], [], "told to"
        self.unjudged = []

    def report(self, step, metrics):
        self.steps.append(step)
        self.values.append(metrics["value"])
        self.unjudged.append(metrics.get("unjudged"))
        return step == self.stop_at


def test_a_full_run_evaluates_every_epoch_and_runs_every_step(digits):
    config = TrialConfig(lr=1e-2, batch_size=64)
    outcome = run(config, digits, epochs=3)
    per_epoch = steps_per_epoch(digits.n_train, 64)
    assert outcome.state == COMPLETE
    assert outcome.steps_run == 3 * per_epoch and outcome.epochs_run == 3
    assert len(outcome.values) == len(outcome.train_losses) == len(outcome.val_losses) == 3
    assert outcome.values == outcome.val_losses  # the default objective is the val loss
    assert outcome.values[-1] < outcome.values[0] < math.log(10) + 0.5  # it learns


def test_same_seed_same_curve_other_seed_other_curve(digits):
    config = TrialConfig(lr=1e-2, batch_size=32)
    first, again = run(config, digits, seed=3), run(config, digits, seed=3)
    other = run(config, digits, seed=4)
    assert first.values == again.values
    assert first.values != other.values


def test_learning_rate_follows_the_schedule_at_every_step(digits):
    config = TrialConfig(lr=0.05, schedule="one_cycle", warmup_fraction=0.1, batch_size=128,
                         optimizer="sgd")
    seen = []
    hook = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
    try:
        outcome = run(config, digits, epochs=2)
    finally:
        hook.remove()
    total = steps_per_epoch(digits.n_train, 128) * 2
    assert outcome.steps_run == total
    assert seen == pytest.approx([0.05 * m for m in config.multipliers(total)], rel=1e-12)


def test_evals_per_epoch_reports_evenly_within_epochs(digits):
    reporter = StopAt()
    outcome = run(TrialConfig(lr=1e-2, batch_size=64), digits, epochs=2, evals_per_epoch=3,
                  reporter=reporter)
    assert len(outcome.values) == 6
    assert reporter.steps == list(range(6))


def test_an_evaluation_ending_in_warmup_is_marked_for_the_pruners_to_leave_alone(digits):
    # 3 evaluations an epoch at batch 256 (6 steps an epoch): evaluations after steps 2, 4
    # and 6, then 8, 10, 12; warmup 0.4 of 12 steps = 5: the first two end in it
    reporter = StopAt()
    run(TrialConfig(lr=1e-2, batch_size=256, warmup_fraction=0.4), digits, epochs=2,
        evals_per_epoch=3, reporter=reporter)
    assert steps_per_epoch(digits.n_train, 256) == 6
    assert reporter.unjudged == [True, True, False, False, False, False]


@pytest.mark.parametrize(("schedule", "params", "unjudged"), [
    # 12 steps, evaluations after steps 2, 4, ..., 12 (the last lr used: step 1, 3, ...)
    # one-cycle peaks at step 4.2 of 12: its lr still rises after steps 1 and 3
    ("one_cycle", {"pct_start": 0.35}, [True, True, False, False, False, False]),
    # two triangular cycles peak at steps 3 and 9: the first peak (step 3) and the
    # way down from it are followed by a rise; only after the last peak is it judged
    ("cyclic", {"cycles": 2}, [True, True, True, True, False, False]),
])
def test_an_evaluation_where_the_lr_will_still_rise_is_marked_on_the_run_s_own_steps(
        digits, schedule, params, unjudged):
    # the pruners' schedule model runs on 8 steps an evaluation; this run has 2, where a
    # ramp or a cycle's peak falls between its grid points
    reporter = StopAt()
    run(TrialConfig(lr=1e-2, schedule=schedule, batch_size=256, schedule_params=params),
        digits, epochs=2, evals_per_epoch=3, reporter=reporter)
    assert reporter.unjudged == unjudged


def test_optunas_reporter_never_asks_the_pruner_about_a_warmup_evaluation():
    import optuna

    from autolr.backends.optuna import OptunaReporter
    from autolr.pruning import AutoLRPruner

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    study = optuna.create_study(pruner=AutoLRPruner(Always()))
    reporter = OptunaReporter(study.ask(), study.pruner)
    assert reporter.report(0, {"value": 1.0, "unjudged": True}) is False
    assert reporter.report(1, {"value": 1.0, "unjudged": False}) is True


def test_reporter_stop_prunes_with_its_reason_but_a_finished_run_completes(digits):
    config = TrialConfig(lr=1e-2, batch_size=64)
    pruned = run(config, digits, epochs=4, reporter=StopAt(stop_at=1))
    assert pruned.state == PRUNED and pruned.reason == "told to"
    assert pruned.epochs_run == 2 and len(pruned.values) == 2
    finished = run(config, digits, epochs=4, reporter=StopAt(stop_at=3))
    assert finished.state == COMPLETE and len(finished.values) == 4


def test_a_huge_learning_rate_diverges_within_a_few_steps_of_blowing_up(digits):
    outcome = run(TrialConfig(lr=50.0, batch_size=32, optimizer="sgd"), digits, epochs=5)
    per_epoch = steps_per_epoch(digits.n_train, 32)
    assert outcome.state == DIVERGED
    assert outcome.steps_run < per_epoch  # stopped in the first epoch, not at its end
    assert "loss" in outcome.reason


def test_a_run_too_short_for_the_patience_that_ends_blown_up_is_divergence(digits):
    # batch 256: 18 steps in 3 epochs, fewer than the 20 in a row the rule waits for
    reporter = StopAt()
    outcome = run(TrialConfig(lr=80.0, batch_size=256, optimizer="adamw"), digits,
                  reporter=reporter)
    assert outcome.state == DIVERGED and "when the run ended" in outcome.reason
    assert outcome.steps_run == 3 * steps_per_epoch(digits.n_train, 256)
    # the sampler is told NaN, never the blown-up final value (Ray would keep that one)
    assert len(reporter.values) == 3 and math.isnan(reporter.values[-1])
    assert all(math.isfinite(v) for v in reporter.values[:-1])


class BreaksAt(torch.nn.Module):
    """Outputs `value` from training step `at` on; fine before."""

    def __init__(self, at: int, value: float):
        super().__init__()
        self.net, self.at, self.value, self.calls = mlp(), at, value, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls > self.at:
                return out * 0 + self.value
        return out


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_output_stops_the_trial_on_that_very_step(digits, value):
    outcome = train_trial(TrialConfig(lr=1e-3, batch_size=64), lambda: BreaksAt(7, value),
                          digits, epochs=3, loss_fn=torch.nn.CrossEntropyLoss(),
                          metric=METRICS["val_loss"])
    assert outcome.state == DIVERGED
    assert outcome.steps_run == 8  # steps 0..6 fine, step 7 blew up and was the last one
    assert "nan" in outcome.reason or "inf" in outcome.reason


def test_a_minus_infinite_loss_is_divergence_not_a_great_result(digits):
    def loss(outputs, targets):
        value = torch.nn.functional.cross_entropy(outputs, targets)
        return value - math.inf if loss.calls == 5 else value
    loss.calls = 0

    def counting(outputs, targets):
        if torch.is_grad_enabled():
            loss.calls += 1
        return loss(outputs, targets)

    reporter = StopAt()
    outcome = train_trial(TrialConfig(lr=1e-3, batch_size=64), mlp, digits, epochs=3,
                          loss_fn=counting, metric=METRICS["val_loss"], reporter=reporter)
    assert outcome.state == DIVERGED and outcome.steps_run == 5
    assert "-inf" in outcome.reason
    assert math.isnan(reporter.values[-1])  # the sampler is told this point blew up


def test_keep_model_returns_the_trained_module(digits):
    outcome = run(TrialConfig(lr=1e-2, batch_size=64), digits, epochs=1, keep_model=True)
    assert isinstance(outcome.model, torch.nn.Module)
    assert run(TrialConfig(lr=1e-2), digits, epochs=1).model is None
