"""The space-filling start: the design covers the space, and the sampler follows it."""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections import Counter

import optuna
import pytest

from autolr.backends.optuna import (
    BASELINE_TRIAL,
    DESIGN_TRIALS,
    STARTUP_TRIALS,
    make_sampler,
    sweep_sampler,
)
from autolr.design import DesignedStartSampler, startup_design
from autolr.space import BASELINE, SearchSpace
from autolr.streams import SharedStreams
from autolr.sweep import Sweep

SPACE = SearchSpace(lr=(1e-4, 1.0), schedules=("constant", "cosine", "step", "one_cycle"),
                    batch_sizes=(16, 32, 64, 128, 256), warmup=(0.0, 0.2),
                    optimizers=("sgd", "adamw"), weight_decay=(1e-6, 1e-2))


def test_the_learning_rates_fill_every_slice_of_the_log_range_once() -> None:
    for n in (3, 9, 20):
        design = startup_design(SPACE, 10_000, n, seed=3)
        slices = sorted(math.floor(math.log10(p["lr"] / 1e-4) / 4 * n) for p in design)
        assert slices == list(range(n))


def test_choices_are_balanced_and_shuffled_independently() -> None:
    design = startup_design(SPACE, 10_000, 9, seed=0)
    for name, choices in (("schedule", SPACE.schedules), ("batch_size", SPACE.batch_sizes),
                          ("optimizer", SPACE.optimizers)):
        counts = Counter(p[name] for p in design)
        assert set(counts) <= set(choices)
        assert max(counts.values()) - min(counts.values()) <= 1
        assert len(counts) == min(len(choices), 9)
    pairs = {(p["schedule"], p["batch_size"]) for p in design}
    assert len(pairs) > 4  # not the same pairing every time


def test_values_lie_on_the_spaces_grids_and_ranges() -> None:
    design = startup_design(SPACE, 10_000, 9, seed=1)
    for point in design:
        steps = point["warmup_fraction"] / 0.025  # the warmup grid: 9 points in [0, 0.2]
        assert abs(steps - round(steps)) < 1e-9 and 0 <= point["warmup_fraction"] <= 0.2
        assert 1e-6 <= point["weight_decay"] <= 1e-2
        assert 1e-4 <= point["lr"] <= 1.0


def test_only_usable_batch_sizes_and_fixed_dimensions_left_out() -> None:
    space = SearchSpace(lr=(1e-3, 1e-1), schedules=("cosine",), batch_sizes=(32, 512),
                        warmup=(0.1, 0.1))
    design = startup_design(space, 100, 4, seed=0)
    assert {p["batch_size"] for p in design} == {32}
    assert all("warmup_fraction" not in p and "weight_decay" not in p for p in design)
    assert startup_design(space, 100, 0, seed=0) == []


def test_the_same_seed_gives_the_same_design_and_another_seed_another() -> None:
    assert startup_design(SPACE, 1000, 9, 5) == startup_design(SPACE, 1000, 9, 5)
    assert startup_design(SPACE, 1000, 9, 5) != startup_design(SPACE, 1000, 9, 6)


def _run(sampler: optuna.samplers.BaseSampler, space: SearchSpace, n: int) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        config = space.sample(trial, 10_000)
        return abs(math.log10(config.lr) + 2) + 0.1 * (config.schedule != "cosine")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n)
    return study


def test_a_sweep_runs_the_design_then_the_default_config_then_tpe() -> None:
    space = dataclasses.replace(SPACE, weight_decay=0.0)  # the default config's
    baseline = space.params_for(BASELINE, 10_000)
    assert baseline is not None
    sampler = make_sampler(space, 10_000, seed=4, baseline=baseline)
    study = _run(sampler, space, STARTUP_TRIALS + 6)
    design = startup_design(space, 10_000, DESIGN_TRIALS, seed=4)
    trials = study.trials
    for trial, point in zip(trials[:DESIGN_TRIALS], design, strict=True):
        for name, value in point.items():
            assert trial.params[name] == pytest.approx(value), name
    # a family's own parameters are still sampled
    assert any("." in name for t in trials[:DESIGN_TRIALS] for name in t.params)
    # the default config, once the start-up trials have covered the space
    default = trials[BASELINE_TRIAL]
    assert default.params["lr"] == pytest.approx(1e-3)
    assert default.params["schedule"] == "constant" and default.params["batch_size"] == 32
    # the other trials are TPE's: none repeats a design point or the default
    later = {round(t.params["lr"], 12) for t in trials[DESIGN_TRIALS:]
             if t.number != BASELINE_TRIAL}
    assert len(later) == len(trials) - DESIGN_TRIALS - 1
    assert not later & {round(p["lr"], 12) for p in [*design, baseline]}


def test_a_sweep_too_small_to_reach_it_runs_the_default_config_last() -> None:
    space = dataclasses.replace(SPACE, weight_decay=0.0)
    sweep = Sweep(space=space, run=lambda *a, **k: None, n_train=10_000, n_evals=2,
                  n_trials=3, direction="minimize", metric="val_loss", epochs=2,
                  baseline=space.params_for(BASELINE, 10_000))
    trials = _run(sweep_sampler(sweep), space, 3).trials
    assert [t.params["lr"] for t in trials[:2]] == pytest.approx(
        [p["lr"] for p in startup_design(space, 10_000, DESIGN_TRIALS, seed=0)[:2]])
    assert sweep.is_baseline(space.config_from_params(trials[2].params, 10_000))
    assert not sweep.is_baseline(space.config_from_params(trials[0].params, 10_000))


def test_without_a_default_config_the_design_starts_at_trial_zero() -> None:
    sampler = make_sampler(SPACE, 10_000, seed=2, baseline=None)
    study = _run(sampler, SPACE, 3)
    design = startup_design(SPACE, 10_000, DESIGN_TRIALS, seed=2)
    assert [t.params["lr"] for t in study.trials] == pytest.approx(
        [p["lr"] for p in design[:3]])


def test_design_trials_0_is_tpe_as_it_comes() -> None:
    sampler = make_sampler(SPACE, 10_000, seed=2, baseline=None, design_trials=0)
    assert isinstance(sampler, SharedStreams)  # TPE, a stream a trial beside other processes
    assert isinstance(sampler.alone, optuna.samplers.TPESampler)
    assert pickle.loads(pickle.dumps(sampler)).seed == sampler.seed  # Ray's searcher saves it


def test_a_design_value_the_space_no_longer_allows_is_sampled_instead() -> None:
    # e.g. a resumed study whose space changed: the design must not force a bad value
    design = [{"lr": 5.0, "schedule": "linear"}]
    space = SearchSpace(lr=(1e-3, 1e-1), schedules=("constant", "cosine"))
    sampler = DesignedStartSampler(optuna.samplers.RandomSampler(seed=0), design)
    study = _run(sampler, space, 1)
    assert 1e-3 <= study.trials[0].params["lr"] <= 1e-1
    assert study.trials[0].params["schedule"] in ("constant", "cosine")


def test_workers_share_the_design_by_trial_number() -> None:
    # each worker process builds its own sampler (its own TPE seed); the design is the
    # sweep's, so trial k gets design point k whichever worker runs it
    one = make_sampler(SPACE, 10_000, seed=1, baseline=None, n_jobs=2, worker=1)
    two = make_sampler(SPACE, 10_000, seed=1, baseline=None, n_jobs=2, worker=2)
    assert one.design == two.design
    # two workers taking turns on one study: trial k gets design point k from either,
    # a family's own parameters too (e.g. inverse_sqrt's timescale)
    def taking_turns(workers) -> list[dict]:
        study = optuna.create_study(sampler=workers[0])
        for k in range(DESIGN_TRIALS):
            study.sampler = workers[k % 2]
            trial = study.ask()
            SPACE.sample(trial, 10_000)
            study.tell(trial, 1.0)
        return [t.params for t in study.trials]

    params = taking_turns((one, two))
    assert [p["lr"] for p in params] == pytest.approx([p["lr"] for p in one.design])
    assert params == taking_turns((two, one))
    assert any(set(p) - set(one.design[0]) for p in params)  # family parameters were drawn


def test_trials_off_the_plan_take_no_design_point() -> None:
    # a re-run of an interrupted trial (queued on resume) runs that trial's point, even
    # one interrupted before it had drawn it; the robust pick's runs take none either
    sampler = make_sampler(SPACE, 10_000, seed=2, baseline=None)
    study = optuna.create_study(sampler=sampler)
    lrs = []

    def run(trial: optuna.trial.Trial) -> None:
        lrs.append(SPACE.sample(trial, 10_000).lr)
        study.tell(trial, 1.0)

    run(study.ask())  # trial 0
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # 1: interrupted at once
    study.enqueue_trial({}, user_attrs={"retry_of": 1})
    run(study.ask())  # 2: the re-run of 1
    run(study.ask())  # 3
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"confirms": 0}))
    run(study.ask())  # 5
    assert lrs == pytest.approx([p["lr"] for p in sampler.design[:4]])


def _next_lrs(n_jobs: int, running: bool) -> list[float]:
    """TPE's next learning rate after 15 finished trials, with or without one running,
    for ten sampler seeds."""
    done = _run(optuna.samplers.RandomSampler(seed=3), SPACE, STARTUP_TRIALS + 5).trials
    lrs = []
    for seed in range(10):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
        study.add_trials(done)
        if running:  # another worker took the best point so far and has not finished
            study.enqueue_trial(study.best_params)
            SPACE.sample(study.ask(), 10_000)
        study.sampler = make_sampler(SPACE, 10_000, seed=seed, baseline=None,
                                     n_jobs=n_jobs, design_trials=0)
        lrs.append(SPACE.sample(study.ask(), 10_000).lr)
    return lrs


def test_a_running_trial_steers_tpe_when_trials_run_at_once() -> None:
    # the constant liar: a trial another worker runs counts as bad, so the next one goes
    # elsewhere; one trial at a time, there is no other worker's trial to count
    assert _next_lrs(2, running=True) != _next_lrs(2, running=False)
    assert _next_lrs(1, running=True) == _next_lrs(1, running=False)


def test_every_prefix_of_the_design_is_spread_out() -> None:
    # a sweep stopped after a few trials has still tried far-apart learning rates and
    # different families
    for seed in range(20):
        design = startup_design(SPACE, 10_000, 9, seed)
        logs = [math.log10(p["lr"]) for p in design]
        first_two = abs(logs[0] - logs[1])
        assert first_two > 4 / 9, (seed, logs[:2])  # more than one slice apart
        for k in (2, 3, 4):
            assert len({p["schedule"] for p in design[:k]}) == k
        gaps = sorted(logs[:3])
        assert min(b - a for a, b in zip(gaps, gaps[1:], strict=False)) > 4 / 18, (seed, gaps)
