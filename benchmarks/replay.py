"""Replay: sweeps whose trials "train" by reading the oracle grid's cached curves.

A sampled config is snapped to the nearest grid config (`Grid.snap`), and the trial
reports that config's cached per-epoch validation losses one by one, exactly as
`train_trial` reports a live run: the pruner may stop it after any epoch but the last,
a run that diverged mid-epoch reports NaN after its last value and ends "diverged", and
it costs the epochs (and the share of the measured seconds) it ran. Sweep seed s reads the
curves of training seed s mod grid_seeds: the same configs give the same noisy values
within a sweep, as in a live sweep whose trials all train with one seed.

`ReplayTrainer` has the signature of `Sweep.run`, so autolr's own objective runs on it
unchanged; any other sampler/pruner recipe is a `contenders.Recipe`. Deterministic: the
same recipe and seed give the same trials.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from collections.abc import Mapping
from typing import Any

import optuna

from autolr.backends.optuna import ConfirmLeader, make_objective, make_pruner, records_from_study
from autolr.budgeted import rung_epochs
from autolr.cliff import divergence_edges, near_edge, run_setback
from autolr.result import TuneResult
from autolr.robust import HOLDOUT_SEEDS, MIN_SPEND_RATIO
from autolr.space import BASELINE, SearchSpace, TrialConfig
from autolr.sweep import Sweep
from autolr.training import COMPLETE, DIVERGED, PRUNED, TrialOutcome
from benchmarks import accounting, lr_finder
from benchmarks.accounting import PICK, Event, SweepMetrics
from benchmarks.contenders import RECIPES, Recipe
from benchmarks.oracle import GridCache
from benchmarks.tasks import key_of

MAX_TRIALS = 2000  # a safety cap: sweeps stop at their compute budget long before


class ReplayTrainer:
    """`Sweep.run` for replay: (config, reporter) -> TrialOutcome from the cache.

    `whole_epochs`: charge a diverged trial up to the end of its epoch (a plain loop only
    notices at the epoch's validation) instead of the step where autolr's loop stops it.
    """

    def __init__(self, cache: GridCache, seed: int, *, whole_epochs: bool = False) -> None:
        self.cache, self.seed, self.whole_epochs = cache, seed, whole_epochs
        self.events: list[Event] = []
        self.epochs_run = 0.0
        self.seen: dict[str, list[float]] = {}  # key -> final values this sweep observed
        self.confirm_seeds = 0  # the extra seeds autolr's robust pick runs (set by run_sweep)
        self._confirming: list[float] = []  # the values of the trial being confirmed

    def __call__(self, config: TrialConfig, reporter: Any, seed_offset: int = 0,
                 epochs: int | None = None) -> TrialOutcome:
        if seed_offset:
            return self._confirm(config, seed_offset)
        if epochs is not None and epochs != self.cache.task.epochs:
            return self._rung(config, epochs)
        reporter = reporter or _NoReporter()  # a budgeted trial's last rung: not pruned
        key = self.cache.task.grid.snap(config)
        run = self.cache.run(key, self.seed)
        epochs = self.cache.task.epochs
        values: list[float] = []
        outcome = None
        for index, value in enumerate(run.values):
            values.append(value)
            if not math.isfinite(value):
                reporter.report(index, {"value": math.nan})
                outcome = self._outcome(DIVERGED, values, run.epochs, run)
                break
            stop = reporter.report(index, {"value": value, "val_loss": value})
            if stop and index + 1 != epochs:
                outcome = self._outcome(PRUNED, values, index + 1, run)
                break
        if outcome is None and run.state == DIVERGED:  # diverged mid-epoch
            reporter.report(len(values), {"value": math.nan})
            outcome = self._outcome(DIVERGED, values, run.epochs, run)
        if outcome is None:
            outcome = self._outcome(COMPLETE, values, run.epochs, run)
        self.events.append(Event(key, outcome.state, outcome.epochs_run, outcome.seconds,
                                 values[-1] if outcome.state == COMPLETE else None))
        self.epochs_run += outcome.epochs_run
        if outcome.state == COMPLETE:
            self.seen.setdefault(key, []).append(values[-1])
        return outcome

    def _rung(self, config: TrialConfig, epochs: int) -> TrialOutcome:
        """A budgeted rung (autolr.budgeted): the config's whole schedule in `epochs`,
        from the cache; its cost counts, its value never makes a config the incumbent."""
        key = self.cache.task.grid.snap(config)
        run = self.cache.rung_run(key, self.seed, epochs)
        state = DIVERGED if run.state == DIVERGED else COMPLETE
        self.events.append(Event(key, "diverged" if state == DIVERGED else "rung",
                                 run.epochs, run.seconds, None))
        self.epochs_run += run.epochs
        values = [v for v in run.values if math.isfinite(v)]
        return TrialOutcome(state, reason=None if state == COMPLETE else DIVERGED,
                            values=values, val_losses=list(values), epochs_run=run.epochs,
                            seconds=run.seconds)

    def _confirm(self, config: TrialConfig, offset: int) -> TrialOutcome:
        """autolr's robust pick re-training the leader on seed + `offset`: a "rerun"
        event; the last extra seed's carries the seed mean autolr then judges the config
        on (a seed that diverges: no value, the config is out)."""
        key = self.cache.task.grid.snap(config)
        run = self.cache.run(key, self.seed + offset)
        if offset == 1:  # the leader's own run on the sweep's seed
            self._confirming = [self.cache.run(key, self.seed).final(self.cache.chance)]
        final = run.final(self.cache.chance)
        state = COMPLETE if run.state == COMPLETE and math.isfinite(final) else DIVERGED
        self._confirming.append(final)
        done = offset == self.confirm_seeds and state == COMPLETE
        self.events.append(Event(key, "rerun", run.epochs, run.seconds,
                                 statistics.fmean(self._confirming) if done else None))
        if state == DIVERGED:  # the config can no longer be recommended
            self.events.append(Event(key, "rerun", 0.0, 0.0, math.inf))
        self.epochs_run += run.epochs
        return TrialOutcome(state, reason=None if state == COMPLETE else state,
                            values=list(run.values), val_losses=list(run.values),
                            epochs_run=run.epochs, seconds=run.seconds)

    def rerun(self, config: TrialConfig, offset: int) -> float:
        """Train `config` again on another seed (the sweep's seed + `offset`, cycling over
        the grid seeds), unpruned, at full cost; return the mean final loss of the seeds
        this sweep has seen for it, recorded as a "rerun" event (see accounting.Event).
        For recipes that re-check their best configs before recommending one."""
        key = self.cache.task.grid.snap(config)
        run = self.cache.run(key, self.seed + offset)
        self.seen.setdefault(key, []).append(run.final(self.cache.chance))
        estimate = sum(self.seen[key]) / len(self.seen[key])
        self.events.append(Event(key, "rerun", run.epochs, run.seconds, estimate))
        self.epochs_run += run.epochs
        return estimate

    def _outcome(self, state: str, values: list[float], epochs_run: float,
                 run: Any) -> TrialOutcome:
        if state == DIVERGED and self.whole_epochs:
            epochs_run = min(float(math.ceil(epochs_run - 1e-9)) or 1.0, self.cache.task.epochs)
        seconds = run.seconds * epochs_run / run.epochs if run.epochs else run.seconds
        return TrialOutcome(state, reason=None if state == COMPLETE else state,
                            values=list(values), val_losses=list(values),
                            epochs_run=epochs_run, seconds=seconds)


class _NoReporter:
    def report(self, step: int, metrics: Mapping[str, float]) -> bool:
        return False


class _PlainReporter:
    """What a hand-written objective does each epoch: report, ask the pruner."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial

    def report(self, step: int, metrics: Mapping[str, float]) -> bool:
        value = metrics["value"]
        self.trial.report(value, step)
        return not math.isfinite(value) or self.trial.should_prune()


def plain_objective(cache: GridCache, trainer: ReplayTrainer):
    """The hand-written objective over the task's space (see contenders' doc)."""
    task, grid = cache.task, cache.task.grid

    def objective(trial: optuna.Trial) -> float:
        config = TrialConfig(
            lr=trial.suggest_float("lr", min(grid.lrs), max(grid.lrs), log=True),
            schedule=trial.suggest_categorical("schedule", grid.schedules),
            batch_size=trial.suggest_categorical("batch_size", grid.batch_sizes),
            warmup_fraction=trial.suggest_float("warmup", min(grid.warmups), max(grid.warmups))
            if len(grid.warmups) > 1 else grid.warmups[0],
            optimizer=task.optimizer)
        outcome = trainer(config, _PlainReporter(trial))
        if outcome.state == COMPLETE:
            return outcome.values[-1]
        raise optuna.TrialPruned()

    return objective


def run_sweep(recipe: Recipe, cache: GridCache, seed: int, max_fte: float = 40.0,
              settle: bool = False) -> list[Event]:
    """One replayed sweep, until `max_fte` full-training equivalents are spent; with
    `settle`, autolr's end-of-sweep robust pick runs after that (as `tune` does)."""
    task = cache.task
    trainer = ReplayTrainer(cache, seed, whole_epochs=recipe.kind == "plain")
    budget = max_fte * task.epochs

    def stop_at_budget(study: optuna.Study, _trial: Any) -> None:
        if trainer.epochs_run >= budget:
            study.stop()

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    try:
        if recipe.kind == "autolr":
            space = scaled_space(task.space(), recipe.lr_scaling)
            first = None
            if recipe.first_schedule:  # the range test runs first: its cost, a first trial
                first, test_epochs = first_trial(space, cache, seed, recipe.first_schedule)
                trainer.events.append(Event("range test", "range_test", test_epochs, 0.0))
                trainer.epochs_run += test_epochs
            elif recipe.lr_prior:  # the range test runs first: its cost, then the narrowed lr
                space, test_epochs = prior_space(space, cache, recipe.lr_prior)
                trainer.events.append(Event("range test", "range_test", test_epochs, 0.0))
                trainer.epochs_run += test_epochs
            n_train = task.data.n_train
            spec = recipe.pruner
            pruner = make_pruner(spec if isinstance(spec, str)
                                 else spec(task.epochs) or "none", task.epochs)
            sweep = Sweep(space=space, run=trainer, n_train=n_train, n_evals=task.epochs,
                          rungs=rung_epochs(task.epochs) if spec == "budgeted" else None,
                          n_trials=MAX_TRIALS, direction="minimize", metric="val_loss",
                          epochs=task.epochs, seed=seed,
                          baseline=space.params_for(BASELINE, n_train),
                          confirm_seeds=recipe.confirm_seeds,
                          confirm_after=recipe.confirm_after)
            trainer.confirm_seeds = recipe.confirm_seeds
            # the recipe's sampler places the default config's trial, as in run_optuna
            sampler = recipe.sampler(sweep)
            if first is not None:
                design = sampler.design
                design += [{}] * (recipe.finder_place - len(design))
                design.insert(recipe.finder_place, first)
            study = optuna.create_study(sampler=sampler, pruner=pruner)
            objective = make_objective(sweep, pruner)
        else:
            study = optuna.create_study(sampler=recipe.sampler(seed),
                                        pruner=recipe.pruner(task.epochs)
                                        or optuna.pruners.NopPruner())
            objective = plain_objective(cache, trainer)
        callbacks = [stop_at_budget]
        if recipe.kind == "autolr":  # the robust pick, as in tune()
            confirmer = ConfirmLeader(sweep, objective=objective)
            callbacks.insert(0, confirmer)
        study.optimize(objective, n_trials=MAX_TRIALS, callbacks=callbacks, catch=())
        if settle and recipe.kind == "autolr":
            confirmer.settle(study)
            # what tune() would recommend, and the value it would report
            best = TuneResult(records_from_study(study)).best_record
            if best is not None:
                trainer.events.append(Event(cache.task.grid.snap(best.config), PICK, 0.0, 0.0,
                                            best.expected_value))
    finally:
        optuna.logging.set_verbosity(previous)
    return trainer.events


#: decades either side of a range test's suggestion that a prior keeps (a 3-decade range,
#: as `benchmarks.finder` judges the suggestions)
PRIOR_DECADES = 1.5


def _finder_row(cache: GridCache) -> dict[str, Any]:
    """`python -m benchmarks finder`'s range tests at the smallest batch size (results.json
    beside the cache)."""
    path = cache.path.parent / "results.json"
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if cache.task.name not in results.get("finder", {}):
        raise SystemExit(f"{cache.task.name}: no range tests in {path}; run `python -m "
                         "benchmarks finder` with this --cache first.")
    return min(results["finder"][cache.task.name]["rows"], key=lambda r: r["batch_size"])


def prior_space(space: SearchSpace, cache: GridCache, suggestion: str
                ) -> tuple[SearchSpace, float]:
    """`space` with its lr range narrowed to PRIOR_DECADES either side of the range test's
    `suggestion` at the smallest batch size (the median of `python -m benchmarks finder`'s
    tests, read from results.json beside the cache), and the epochs one test costs."""
    row = _finder_row(cache)
    centre, (low, high) = row[suggestion], space.lr
    if centre is None:  # no test could judge it: the whole range
        return space, row["epochs"]
    narrowed = (max(low, centre / 10**PRIOR_DECADES), min(high, centre * 10**PRIOR_DECADES))
    return dataclasses.replace(space, lr=narrowed), row["epochs"]


def first_trial(space: SearchSpace, cache: GridCache, seed: int, schedule: str
                ) -> tuple[dict[str, Any] | None, float]:
    """The params of a trial at fastai's valley from a range test run now (seeded by the
    sweep's seed, at the smallest batch size), with `schedule` and no warmup (None: the
    test judged nothing), and the test's epochs. The trial snaps to the grid."""
    batch_size = min(space.batch_sizes)
    test = lr_finder.range_test(cache.task, batch_size=batch_size, seed=seed)
    lr = test.valley()
    if lr is None:
        return None, test.epochs
    low, high = space.lr
    config = TrialConfig(lr=min(max(lr, low), high), schedule=schedule, batch_size=batch_size,
                         warmup_fraction=min(space.warmup), optimizer=cache.task.optimizer)
    return space.params_for(config, cache.task.data.n_train), test.epochs


def scaled_space(space: SearchSpace, lr_scaling: str) -> SearchSpace:
    """`space` with its lr searched relative to the batch size (reference: the smallest
    batch), the searched range widened below so that every batch size still reaches the
    grid's lowest lr (what falls outside the grid snaps to its edge)."""
    if lr_scaling == "none":
        return space
    small, large = min(space.batch_sizes), max(space.batch_sizes)
    scaled = dataclasses.replace(space, lr_scaling=lr_scaling, lr_reference_batch=small)
    low, high = space.lr
    return dataclasses.replace(scaled, lr=(low / scaled.lr_factor(large), high))


def _with_final_pick(metrics: SweepMetrics, recipe: Recipe, cache: GridCache, seed: int,
                     max_fte: float) -> SweepMetrics:
    """autolr's robust pick runs when a sweep ends, so the regret at a budget B is that of
    a sweep that searched until B minus the pick's cost (`accounting.pick_reserve`), then
    picked: one sweep per budget. Below MIN_SPEND_RATIO times that cost tune() skips the
    pick: the anytime regret stands. FTE to 5% is then the first budget whose sweep got
    there."""
    means, oracle = cache.means(), cache.oracle()[1]
    epochs, regret = cache.task.epochs, dict(metrics.regret)
    gap, final = metrics.reported_gap, (metrics.final_regret, metrics.final_fte)
    cost = accounting.pick_reserve(recipe.confirm_seeds)
    # a sweep stopped before the first budget that runs the pick got there as it searched
    first_fte, first_seconds = ((metrics.fte_to_within, metrics.seconds_to_within)
                                if metrics.fte_to_within < pick_from(recipe)
                                else (math.inf, math.inf))
    for budget in sorted(regret):
        if budget > max_fte or budget < pick_from(recipe):
            continue  # tune() skips the pick on so small a budget: the anytime regret stands
        events = run_sweep(recipe, cache, seed, budget - cost, settle=True)
        end = accounting.trajectory(events, epochs, lambda key: means[key] / oracle - 1.0)[-1]
        regret[budget] = end.regret
        if end.regret <= accounting.TOLERANCE and first_fte == math.inf:
            first_fte, first_seconds = budget, end.seconds
        if budget == max(b for b in regret if b <= max_fte) and end.incumbent is not None:
            gap = means[end.incumbent] / end.estimate - 1.0
            final = (end.regret, end.fte)
    return dataclasses.replace(metrics, regret=regret, fte_to_within=first_fte,
                               seconds_to_within=first_seconds, reported_gap=gap,
                               final_regret=final[0], final_fte=final[1],
                               fte_to_10=min((b for b, r in regret.items() if r <= 0.10),
                                             default=math.inf))


def pick_from(recipe: Recipe) -> float:
    """The smallest budget (FTE) at which tune() runs the robust pick: below it the
    extra runs buy more as search."""
    return (MIN_SPEND_RATIO + 1) * recipe.confirm_seeds + HOLDOUT_SEEDS


def winners(cache: GridCache, k: int = 4) -> set[str]:
    """The oracle's top-k configs by seed mean (issue 8: does a sweep keep them?)."""
    means = cache.means()
    return set(sorted(means, key=means.get)[:k])


def replay(cache: GridCache, recipes: list[str], seeds: range, max_fte: float = 40.0,
           log: Any = print) -> dict[str, list[SweepMetrics]]:
    """Every recipe on every seed: the scored sweeps, by recipe name."""
    top = winners(cache)
    oracle = cache.oracle()[1]
    means = cache.means()
    results: dict[str, list[SweepMetrics]] = {}
    for name in recipes:
        recipe = RECIPES[name]
        scored = []
        for seed in seeds:
            events = run_sweep(recipe, cache, seed, max_fte)
            metrics = accounting.score(events, cache.task.epochs,
                                       lambda key: means[key] / oracle - 1.0,
                                       winners=top, max_budget=max_fte, true_of=means.get)
            if recipe.kind == "autolr" and recipe.confirm_seeds:
                metrics = _with_final_pick(metrics, recipe, cache, seed, max_fte)
            scored.append(metrics)
        results[name] = scored
        log(f"  {cache.task.name} {name}: median FTE to 5% "
            f"{accounting.median([s.fte_to_within for s in scored]):.1f}")
    return results


def noise_floor(cache: GridCache) -> list[float]:
    """Per grid seed, the regret of exhaustive single-seed grid search: train every grid
    config once on that seed, recommend the lowest final loss. What picking by one seed's
    value costs even with unlimited compute (seed noise; issue 8's "robust pick")."""
    means, oracle = cache.means(), cache.oracle()[1]
    floor = []
    for seed in range(cache.task.grid_seeds):
        key = min(cache.runs, key=lambda k: cache.runs[k][seed].final(cache.chance))
        floor.append(means[key] / oracle - 1.0)
    return floor


def pick_floor(cache: GridCache) -> tuple[str, float]:
    """(key, regret) of the config an exhaustive sweep would recommend if its robust pick
    judged every grid config on the mean of the grid seeds replay reads, keeping autolr's
    margin below the learning rates that diverged, or nearly did (`cliff.setback`, which
    the pick counts as a divergence on its extra seeds), on those seeds (`autolr.cliff`):
    what a perfect search and pick can reach in replay, where the seeds beyond those (the
    oracle's confirmation seeds) are never read."""
    seeds = range(cache.task.grid_seeds)
    params = {key_of(config): config.to_dict() for config in cache.task.configs()}
    on_grid = [key for key in cache.runs if key in params]
    edges = divergence_edges(params[key] for key in on_grid if any(
        run.state == DIVERGED or run_setback(params[key], run.values)
        for seed, run in cache.runs[key].items() if seed in seeds))
    mean = {key: statistics.fmean(cache.runs[key][s].final(cache.chance) for s in seeds)
            for key in on_grid}
    ranked = sorted(on_grid, key=mean.__getitem__)
    key = next((k for k in ranked if not near_edge(params[k], edges)), ranked[0])
    return key, cache.regret(key)
