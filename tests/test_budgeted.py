"""Budgeted rungs: every rung trains the whole schedule, compressed; successive halving
judges the rungs' final values, so a late-decaying schedule is not cut for being early."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

import autolr
from autolr import AutoLRError
from autolr.backends.optuna import OptunaReporter, make_pruner
from autolr.budgeted import run_budgeted, rung_epochs, rung_step
from autolr.space import TrialConfig
from autolr.training import COMPLETE, DIVERGED, PRUNED, TrialOutcome

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_rungs_are_a_ninth_a_third_and_all_of_the_epochs() -> None:
    assert rung_epochs(20) == (2, 7, 20)
    assert rung_epochs(30) == (3, 10, 30)
    assert rung_epochs(9) == (1, 3, 9)
    assert rung_epochs(2) == (1, 2)  # never a rung of 0 epochs, never two alike
    assert rung_epochs(1) == (1,)
    assert [rung_step(k) for k in range(3)] == [1, 3, 9]


class FakeRun:
    """`Sweep.run` that records the epochs it was asked for; the final value comes from
    `final(config, epochs)`, and `diverge_at` makes that rung blow up."""

    def __init__(self, final=lambda config, epochs: 0.5, diverge_at: int | None = None):
        self.final, self.diverge_at, self.calls = final, diverge_at, []

    def __call__(self, config, reporter, seed_offset=0, epochs=20):
        self.calls.append(epochs)
        if epochs == self.diverge_at:
            return TrialOutcome(DIVERGED, "loss became nan", [], [], [], 3, 0.25, 0.01)
        value = self.final(config, epochs)
        curve = [value + 0.1 * (epochs - e) for e in range(1, epochs + 1)]
        return TrialOutcome(COMPLETE, None, curve, curve, curve, 10 * epochs, float(epochs),
                            0.1)


class FakeReporter:
    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.reports = stop_at, []

    def report(self, step, metrics):
        self.reports.append((step, metrics["value"]))
        return step == self.stop_at


CONFIG = TrialConfig(lr=0.1, schedule="cosine")


def test_a_promoted_trial_runs_every_rung_and_pays_for_all_of_them() -> None:
    run, reporter = FakeRun(), FakeReporter()
    outcome = run_budgeted(run, CONFIG, reporter, (2, 7, 20))
    assert run.calls == [2, 7, 20]  # each rung from scratch, the whole schedule in it
    assert [step for step, _ in reporter.reports] == [1, 3]  # the last rung is the result
    assert outcome.state == COMPLETE and len(outcome.values) == 20
    assert (outcome.epochs_run, outcome.steps_run) == (29.0, 290)
    assert outcome.seconds == pytest.approx(0.3)
    assert (outcome.rung_epochs, outcome.rung_steps) == (20, 200)


def test_a_trial_behind_at_a_rung_stops_there_with_the_reason() -> None:
    run, reporter = FakeRun(), FakeReporter(stop_at=3)
    outcome = run_budgeted(run, CONFIG, reporter, (2, 7, 20))
    assert run.calls == [2, 7]
    assert outcome.state == PRUNED and "7 epochs" in outcome.reason
    assert "rung 2 of 3" in outcome.reason
    assert (outcome.epochs_run, outcome.rung_epochs, len(outcome.values)) == (9.0, 7, 7)


def test_a_rung_that_diverges_ends_the_trial_and_tells_the_sampler() -> None:
    run, reporter = FakeRun(diverge_at=7), FakeReporter()
    outcome = run_budgeted(run, CONFIG, reporter, (2, 7, 20))
    assert outcome.state == DIVERGED and run.calls == [2, 7]
    assert reporter.reports[-1][0] == 3 and math.isnan(reporter.reports[-1][1])
    assert outcome.epochs_run == 2.25 and outcome.rung_steps == 3


def one_cycle_wins_late(config: TrialConfig, epochs: int) -> float:
    """One-cycle ends best (0.20) at every budget; constant at 0.30 or worse, the further
    its lr from 0.03."""
    if config.schedule == "one_cycle":
        return 0.20 + 0.5 / epochs
    return 0.30 + 0.1 * abs(math.log10(config.lr / 0.03)) + 0.5 / epochs


def test_budgeted_rungs_keep_the_late_decaying_winner() -> None:
    """Six constant trials, then a one-cycle trial: judged at the end of its compressed
    schedule it leads every rung and trains to the end. A per-step median judged mid-run,
    where one-cycle is still at its peak learning rate, would have cut it."""
    pruner = make_pruner("budgeted", n_evals=20)
    study = optuna.create_study(pruner=pruner)
    run = FakeRun(one_cycle_wins_late)
    configs = [TrialConfig(lr=0.03 * (k + 1)) for k in range(6)]  # each worse than the last
    configs.append(TrialConfig(lr=0.05, schedule="one_cycle"))
    outcomes = []
    for config in configs:
        trial = study.ask()
        outcome = run_budgeted(run, config, OptunaReporter(trial, pruner), (2, 7, 20))
        outcomes.append(outcome)
        if outcome.state == COMPLETE:
            study.tell(trial, outcome.values[-1])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert outcomes[-1].state == COMPLETE and outcomes[-1].values[-1] == pytest.approx(0.225)
    # and the constant trials were thinned out: most stopped at a short rung
    assert sum(o.state == PRUNED for o in outcomes[:-1]) >= 3

    # the same one-cycle trial judged step by step by a median rule from mid-run: at
    # step 10 of 20 its loss (peak lr) is above every constant trial's, and it is cut
    median = optuna.create_study(pruner=optuna.pruners.MedianPruner(
        n_startup_trials=3, n_warmup_steps=10))
    constant = [0.9 - 0.06 * s for s in range(10)] + [0.34] * 10
    for _ in range(4):
        trial = median.ask()
        for step, value in enumerate(constant):
            trial.report(value, step)
        median.tell(trial, constant[-1])
    one_cycle = [0.9 - 0.02 * s for s in range(11)] + [0.6 - 0.04 * s for s in range(9)]
    trial = median.ask()
    for step, value in enumerate(one_cycle):
        trial.report(value, step)
        if trial.should_prune():
            break
    assert step == 10 and one_cycle[-1] < constant[-1]  # cut, though it would have won




def test_tune_with_budgeted_rungs_end_to_end(digits, tmp_path, mlp) -> None:
    rungs = rung_epochs(9)
    result = autolr.tune(mlp(), digits, epochs=9, n_trials=14, pruner="budgeted",
                         progress=False, confirm_seeds=0, range_test=False,
                         storage=str(tmp_path / "s.log"), study_name="b")
    states = {r.state for r in result.records}
    assert "complete" in states and "pruned" in states
    for record in result.records:
        assert record.rung_epochs in rungs
        assert len(record.values) == record.rung_epochs or record.state == "diverged"
        if record.state == "complete":  # every rung run, from scratch
            assert record.rung_epochs == 9
            assert record.epochs_run == pytest.approx(sum(rungs), abs=1e-3)
        if record.state == "pruned":
            assert record.rung_epochs < 9 and "budgeted rung" in record.reason
            done = rungs[:rungs.index(record.rung_epochs) + 1]
            assert record.epochs_run == pytest.approx(sum(done), abs=1e-3)
    # stored and read back with the rung of each record
    assert [r.rung_epochs for r in autolr.load(str(tmp_path / "s.log"), "b").records] == [
        r.rung_epochs for r in result.records]
    page = result.report(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Budgeted rungs: each trial trained its whole schedule in 1, " in page


def test_budgeted_with_ray_is_refused_before_training(digits, mlp) -> None:
    with pytest.raises(AutoLRError, match="Optuna backend"):
        autolr.tune(mlp(), digits, pruner="budgeted", backend="ray", n_trials=2, epochs=2,
                    progress=False)
