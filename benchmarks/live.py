"""Live sweeps: the contenders really train, each until the same compute budget.

- autolr: `autolr.tune` with its defaults (sampler, pruner, baseline trial, divergence
  and stall rules, robust pick) over the task's space, given as a fixed
  train/validation pair; run in chunks of trials on a journal storage (a resumed sweep)
  until the budget less the robust pick's cost is spent, then ended as `tune` ends a
  sweep (the leader confirmed on extra seeds).
- autolr-default-space: the same with autolr's default space (AdamW, 11 families, lr
  1e-5..1, warmup 0..0.2, batch 16..256): what a user gets without naming a space.
- autolr-confirm0 / autolr-budgeted / autolr-decay-median: the same with confirm_seeds=0,
  pruner="budgeted" or pruner="decay_median": the options measured against the defaults.
  autolr-default-space, autolr-confirm0 and autolr-decay-median run the decay-aware
  median rule (the default pruner when they were measured) so that their rows stay
  reproducible.
- autolr-jobs2 / autolr-ray2: the defaults with two trials at once, on the Optuna backend
  (n_jobs=2) or on Ray (backend="ray", max_concurrent=2, a local 2-CPU Ray); run only when
  named (`--contenders`). Their trials are scored in trial-number order, which is the
  order they started in, not quite the order they finished.
- optuna-tpe-median / random: a hand-written Optuna objective over the task's space,
  training with the plain loop (`plain_loop.train`), TPE + MedianPruner or random
  search without pruning.
- ray-asha: Ray Tune, random search (BasicVariantGenerator) + ASHAScheduler (grace 1,
  reduction 4, max_t = epochs), one trial at a time, the plain loop as trainable;
  only when `import ray` works.

Every sweep stops at `max_fte` full-training equivalents. Each recommended config (the
complete trial with the lowest final validation loss, after each trial) is retrained on
the grid seeds to get its seed mean (`oracle.evaluate`, cached), so regret is measured
as in replay. Seconds are the trials' own; `wall` is the whole sweep, overhead included.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

import autolr
from autolr import schedules
from autolr.checked_halving import CheckedHalvingPruner
from autolr.robust import DEFAULT_EXTRA_SEEDS
from autolr.space import TrialConfig
from benchmarks import accounting, plain_loop
from benchmarks.accounting import PICK, Event, SweepMetrics
from benchmarks.baselines import config_id
from benchmarks.contenders import EARLY_LADDER
from benchmarks.oracle import GridCache, evaluate, fresh_mean
from benchmarks.tasks import Task

RAY_NODE_IP = "127.0.0.2"
SWEEPS = ("autolr", "autolr-default-space", "autolr-confirm0", "autolr-budgeted",
          "autolr-decay-median", "optuna-tpe-median", "random", "ray-asha", "autolr-jobs2",
          "autolr-ray2", "autolr-early-ladder", "autolr-asha", "autolr-family-defaults")
# not run by default: named in --contenders
ON_REQUEST = ("autolr-jobs2", "autolr-ray2", "autolr-early-ladder", "autolr-asha",
              "autolr-family-defaults")
NEEDS_RAY = ("ray-asha", "autolr-ray2")
DESCRIPTIONS = {
    "autolr": "autolr.tune defaults, the task's space",
    "autolr-default-space": "autolr.tune defaults with pruner='decay_median', autolr's default "
                            "space (AdamW, 11 families)",
    "autolr-confirm0": "autolr.tune defaults with pruner='decay_median', without the robust "
                       "pick (confirm_seeds=0)",
    "autolr-budgeted": "autolr.tune with pruner='budgeted': successive halving over rungs "
                       "that each train the whole schedule compressed (1/9, 1/3, all epochs)",
    "autolr-decay-median": "autolr.tune with pruner='decay_median': the decay-aware median "
                           "rule alone (the default pruner until 2026-12-04)",
    "optuna-tpe-median": "hand-written Optuna objective + plain loop: TPE + MedianPruner",
    "random": "hand-written Optuna objective + plain loop: random search, no pruning",
    "ray-asha": "Ray Tune: random search + ASHA (grace 1, reduction 4), plain loop",
    "autolr-jobs2": "autolr.tune defaults, two trials at once (n_jobs=2)",
    "autolr-ray2": "autolr.tune defaults on Ray, two trials at once (max_concurrent=2)",
    "autolr-early-ladder": "autolr.tune with checked halving also offered a ladder from 1/16 "
                           "of the run (with 20 epochs ASHA's rungs: 1, 4, 16)",
    "autolr-asha": "autolr.tune with Optuna's successive halving as Ray's ASHA runs it "
                   "(grace 1 evaluation, reduction 4), unchecked",
    "autolr-family-defaults": "autolr.tune defaults, each family's own parameters fixed at "
                              "their defaults (the grid's configs, as the other contenders "
                              "search them)",
}
CHUNK = 8  # autolr trials per resumed call
AUTOLR_PRUNERS = {"autolr-budgeted": "budgeted", "autolr-decay-median": "decay_median",
                  "autolr-default-space": "decay_median", "autolr-confirm0": "decay_median",
                  # n_evals -> a pruner
                  "autolr-early-ladder": lambda n: CheckedHalvingPruner(
                      n, rung_fractions=EARLY_LADDER),
                  "autolr-asha": lambda n: optuna.pruners.SuccessiveHalvingPruner(
                      min_resource=1, reduction_factor=4)}
AT_ONCE = 2  # trials at once in autolr-jobs2 and autolr-ray2
DIVERGED_LOSS = 1e6  # what the plain loop reports to Ray for a diverged epoch


@dataclass
class LiveSweep:
    """A live sweep's trials in the order they finished, their configs, its wall time."""

    events: list[Event] = field(default_factory=list)
    configs: dict[str, TrialConfig] = field(default_factory=dict)
    wall: float = 0.0

    def add(self, config: TrialConfig, state: str, epochs: float, seconds: float,
            value: float | None) -> None:
        key = config_id(config)
        self.configs[key] = config
        self.events.append(Event(key, state, epochs, seconds, value))

    @property
    def fte(self) -> float:
        return sum(e.epochs for e in self.events)


def run(name: str, task: Task, seed: int, max_fte: float) -> LiveSweep:
    started = time.perf_counter()
    sweep = {"autolr": _autolr, "autolr-default-space": _autolr, "autolr-confirm0": _autolr,
             "autolr-budgeted": _autolr, "autolr-decay-median": _autolr,
             "autolr-jobs2": _autolr, "autolr-ray2": _autolr, "autolr-early-ladder": _autolr,
             "autolr-asha": _autolr, "autolr-family-defaults": _autolr,
             "optuna-tpe-median": _optuna, "random": _optuna, "ray-asha": _ray}[name](
        name, task, seed, max_fte * task.epochs)
    sweep.wall = time.perf_counter() - started
    return sweep


def score(sweep: LiveSweep, cache: GridCache, max_fte: float) -> SweepMetrics:
    task, oracle = cache.task, cache.oracle()[1]
    return accounting.score(
        sweep.events, task.epochs,
        lambda key: evaluate(task, cache, sweep.configs[key]) / oracle - 1.0,
        max_budget=max_fte * 1.25,  # the robust pick may end a little past the budget
        true_of=lambda key: fresh_mean(task, cache, sweep.configs[key]))


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        return False
    return True


# -- autolr ---------------------------------------------------------------------------------

def _autolr(name: str, task: Task, seed: int, budget: float) -> LiveSweep:
    folder = tempfile.mkdtemp(prefix="autolr-bench-")
    space = "default" if name == "autolr-default-space" else task.space()
    if name == "autolr-family-defaults":  # each family's own parameters as the grid has them
        space = dataclasses.replace(space, schedule_params={
            family: schedules.get(family).defaults() for family in space.schedules
            if schedules.get(family).params})
    logging.getLogger("autolr").setLevel(logging.ERROR)
    try:
        kwargs = dict(space=space, epochs=task.epochs, seed=seed, progress=False,
                      storage=os.path.join(folder, "sweep.log"), study_name="bench",
                      pruner=_pruner(name, task.epochs),
                      range_test=False)
        if name == "autolr-jobs2":
            kwargs.update(n_jobs=AT_ONCE)
        elif name == "autolr-ray2":
            _local_ray(AT_ONCE)
            kwargs.update(backend="ray", max_concurrent=AT_ONCE,
                          storage=os.path.join(folder, "ray"))  # the experiments' folder
        # search in chunks until the budget less the robust pick's cost is spent, then
        # let tune() end the sweep as it does: confirm the leader on extra seeds
        extra = 0 if name == "autolr-confirm0" else DEFAULT_EXTRA_SEEDS
        reserve = accounting.pick_reserve(extra) * task.epochs
        n_trials, result, spent = 0, None, 0.0
        while result is None or spent < budget - reserve:
            n_trials += CHUNK
            result = autolr.tune(task.model_fn, task.raw_data(), n_trials=n_trials,
                                 confirm_seeds=0, **kwargs)
            spent, before = sum(r.epochs_run for r in result.records), spent
            if spent <= before:  # a chunk that trained nothing would loop for ever
                raise RuntimeError(f"{name} on {task.name}, seed {seed}: {CHUNK} more trials "
                                   f"trained nothing; first failure: {_first_failure(result)}")
        result = autolr.tune(task.model_fn, task.raw_data(), n_trials=n_trials,
                             confirm_seeds=extra, **kwargs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sweep = LiveSweep()
    # in trial-number order: the order they finished one at a time, started two at once
    for record in result.records:
        complete = record.state == "complete" or record.seed_values
        sweep.add(TrialConfig.from_dict(record.params), "complete" if complete
                  else record.state, record.epochs_run, record.seconds,
                  record.values[-1] if complete else None)
    for record in result.records:  # then the robust pick's extra seeds, as "rerun"s
        if record.seed_values:
            sweep.add(TrialConfig.from_dict(record.params), "rerun", record.extra_epochs,
                      record.extra_seconds,
                      record.final_value if record.state == "complete" else math.inf)
    best = result.best_record  # what the user is handed, and told
    if best is not None:
        sweep.add(TrialConfig.from_dict(best.params), PICK, 0.0, 0.0, best.expected_value)
    return sweep


def _pruner(name: str, n_evals: int) -> Any:
    spec = AUTOLR_PRUNERS.get(name, "auto")
    return spec(n_evals) if callable(spec) else spec


def _first_failure(result: autolr.TuneResult) -> str:
    failed = [r for r in result.records if r.state == "failed"]
    return (failed[0].reason or "no reason given") if failed else "none failed"


# -- a hand-written Optuna objective -------------------------------------------------------

def _params(task: Task, suggest: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    grid = task.grid
    return {"lr": suggest["loguniform"]("lr", min(grid.lrs), max(grid.lrs)),
            "schedule": suggest["choice"]("schedule", grid.schedules),
            "batch_size": suggest["choice"]("batch_size", grid.batch_sizes),
            "warmup": suggest["uniform"]("warmup", min(grid.warmups), max(grid.warmups))
            if len(grid.warmups) > 1 else grid.warmups[0]}


def _config(task: Task, params: dict[str, Any]) -> TrialConfig:
    return TrialConfig(lr=params["lr"], schedule=params["schedule"],
                       batch_size=params["batch_size"], warmup_fraction=params["warmup"],
                       optimizer=task.optimizer)


def _optuna(name: str, task: Task, seed: int, budget: float) -> LiveSweep:
    sweep = LiveSweep()
    sampler = (optuna.samplers.TPESampler(seed=seed) if name == "optuna-tpe-median"
               else optuna.samplers.RandomSampler(seed=seed))
    pruner = (optuna.pruners.MedianPruner() if name == "optuna-tpe-median"
              else optuna.pruners.NopPruner())

    def objective(trial: optuna.Trial) -> float:
        params = _params(task, {
            "loguniform": lambda n, lo, hi: trial.suggest_float(n, lo, hi, log=True),
            "uniform": trial.suggest_float, "choice": trial.suggest_categorical})

        def on_epoch(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            return trial.should_prune()

        result = plain_loop.train(task, params, seed, on_epoch)
        state = {"stopped": "pruned"}.get(result.state, result.state)
        value = result.values[-1] if state == "complete" else None
        sweep.add(_config(task, params), state, result.epochs, result.seconds, value)
        if value is None:
            raise optuna.TrialPruned()
        return value

    def stop_at_budget(study: optuna.Study, _trial: Any) -> None:
        if sweep.fte >= budget:
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=10_000, callbacks=[stop_at_budget])
    return sweep


# -- Ray Tune ------------------------------------------------------------------------------

def _ray_trainable(config: dict, task: Task, seed: int) -> None:
    from ray import tune

    torch.set_num_threads(1)

    def on_epoch(epoch: int, value: float) -> bool:
        tune.report({"loss": value})
        return False

    result = plain_loop.train(task, config, seed, on_epoch)
    if result.state == "diverged":
        tune.report({"loss": DIVERGED_LOSS})


def _ray(name: str, task: Task, seed: int, budget: float) -> LiveSweep:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    _local_ray(1)
    space = _params(task, {"loguniform": lambda n, lo, hi: tune.loguniform(lo, hi),
                           "uniform": lambda n, lo, hi: tune.uniform(lo, hi),
                           "choice": lambda n, options: tune.choice(list(options))})
    folder = tempfile.mkdtemp(prefix="autolr-bench-ray-")
    try:
        tuner = tune.Tuner(
            tune.with_parameters(_ray_trainable, task=task, seed=seed),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="loss", mode="min", num_samples=10_000, max_concurrent_trials=1,
                reuse_actors=True,
                search_alg=BasicVariantGenerator(random_state=seed),
                scheduler=ASHAScheduler(max_t=task.epochs, grace_period=1,
                                        reduction_factor=4)),
            run_config=tune.RunConfig(storage_path=folder, verbose=0,
                                      stop=_budget_stopper(budget)))
        grid = tuner.fit()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    errors = [r.error for r in grid if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} Ray trial(s) failed; the first: {errors[0]}")
    sweep = LiveSweep()
    results = sorted((r for r in grid if r.metrics and "loss" in r.metrics),
                     key=lambda r: r.metrics["trial_id"])
    for result in results:
        losses = list(result.metrics_dataframe["loss"])
        state = ("diverged" if losses[-1] >= DIVERGED_LOSS else
                 "complete" if len(losses) == task.epochs else "pruned")
        sweep.add(_config(task, result.config), state, len(losses),
                  float(result.metrics.get("time_total_s", 0.0)),
                  losses[-1] if state == "complete" else None)
    return sweep


def _local_ray(cpus: int) -> None:
    """Our own local Ray with at least `cpus` CPUs, never a cluster running here already;
    its workers import `benchmarks` from this checkout."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    root = str(Path(__file__).resolve().parent.parent)
    if root not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p)
    if ray.is_initialized() and ray.cluster_resources().get("CPU", 0) < cpus:
        ray.shutdown()  # ours, started for a contender that ran one trial at a time
    if not ray.is_initialized():
        # on loopback: left to itself Ray advertises the machine's outward address
        ray.init(address="local", _node_ip_address=RAY_NODE_IP, num_cpus=cpus,
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def _budget_stopper(budget: float) -> Any:
    """A Tune Stopper ending the whole run once `budget` epochs were reported, across
    trials (made here: importing ray.tune at module level costs seconds)."""
    from ray import tune

    class BudgetStopper(tune.Stopper):
        def __init__(self) -> None:
            self.epochs = 0

        def __call__(self, trial_id: str, result: dict) -> bool:
            self.epochs += 1
            return False

        def stop_all(self) -> bool:
            return self.epochs >= budget

    return BudgetStopper()
