"""The numbers behind the report's sections: safe band, divergence boundary, per-family
spread, batch-size scaling, smoothed trends, parameter importance and the LR finder's
suggestions against the tuned learning rate.

Pure functions over trial points and records; `data.extract` calls them.
"""

from __future__ import annotations

import math
import random
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from autolr import schedules
from autolr.errors import AutoLRError
from autolr.result import TrialRecord
from autolr.space import TrialConfig

if TYPE_CHECKING:
    from autolr.reporting.data import TrialPoint

#: The scaling rules a fitted slope of log(best lr) vs log(batch size) is compared with.
RULES = {"linear": 1.0, "square-root": 0.5, "flat": 0.0}
FALLING_BELOW = -0.25  # a fitted slope below this is called "falling", not "flat"
MIN_IMPORTANCE_TRIALS = 5  # fANOVA on fewer complete trials says more about noise than params
# fANOVA's time grows faster than the trials (9 s CPU at 300, 27 s at 750): a big sweep's
# importance is taken on a seeded sample of this many
MAX_IMPORTANCE_TRIALS = 300
_TREND_POINTS = 40


def _sign(direction: str) -> float:
    """+1 when lower is better: sort keys `sign * value` put the best first."""
    return 1.0 if direction == "minimize" else -1.0


@dataclass(frozen=True)
class SafeBand:
    """Learning rates of complete trials within `tolerance` of the best final metric."""

    tolerance: float  # relative to best's distance from a perfect score: 0.1 = 10% worse
    best_value: float
    threshold: float  # the worst metric still inside the tolerance
    low: float  # lowest learning rate inside the tolerance
    high: float  # highest learning rate inside the tolerance
    decades: float  # log10(high / low): the band's width
    numbers: tuple[int, ...]  # trials inside the tolerance
    misses_inside: int  # complete trials with lr in [low, high] that missed the tolerance


#: the worst score a metric can take, where it has one: a tolerance wider than the best's
#: distance from it (accuracy 0.1, no better than chance on 10 classes) names a threshold
#: no run can fall below (it said -0.35), which is every run
WORST_SCORES = {"accuracy": 0.0}


def safe_band(complete: Sequence[TrialPoint], direction: str, tolerance: float,
              reference: TrialPoint | None = None, perfect: float = 0.0,
              worst: float | None = None) -> SafeBand | None:
    """The band of good learning rates: within `tolerance` of the recommended config's
    value (`reference`: the best trial, whose value the robust pick measured on held-out
    seeds, so a one-seed trial may have a luckier one), else of the best value, measured
    as a share of its distance from `perfect` (a loss's 0, accuracy's 1); None without a
    complete trial."""
    if not complete:
        return None
    sign = _sign(direction)
    best = (reference.value if reference is not None and reference.value is not None
            else min((p.value for p in complete), key=lambda v: sign * v))
    threshold = best + sign * tolerance * abs(best - perfect)
    if worst is not None:  # no further than the metric goes (`WORST_SCORES`)
        threshold = min(threshold, worst) if sign > 0 else max(threshold, worst)
    inside = [p for p in complete if sign * p.value <= sign * threshold]
    low, high = min(p.lr for p in inside), max(p.lr for p in inside)
    misses = sum(low <= p.lr <= high for p in complete) - len(inside)
    return SafeBand(tolerance, best, threshold, low, high, math.log10(high / low),
                    tuple(sorted(p.number for p in inside)), misses)


@dataclass(frozen=True)
class Blowup:
    """A diverged trial: its base lr, and the scheduled lr at the step it blew up."""

    number: int
    lr: float
    batch_size: int
    schedule: str
    step: int  # the last optimizer step it ran, counted from 0 as the loop's reasons do
    lr_at_blowup: float | None  # None when the schedule cannot be rebuilt, or on_another_seed
    reason: str | None
    # the robust pick marked it: its own run finished, a run on an extra or held-out seed
    # diverged or nearly did (`reason` says which), so no step of its own run blew up
    on_another_seed: bool = False

    @property
    def where(self) -> str:
        """What went wrong where, for a pick-marked one: "nearly diverged on extra seed 2"."""
        return (self.reason or "diverged on another seed").split(":")[0]


@dataclass(frozen=True)
class BatchBoundary:
    batch_size: int
    n_trials: int
    n_diverged: int
    lowest_diverged_lr: float | None
    highest_complete_lr: float | None


@dataclass(frozen=True)
class DivergenceBoundary:
    """Where training blows up: the lowest learning rate that diverged, overall and per
    batch size, beside the highest one that trained to the end."""

    lowest_lr: float | None
    highest_complete_lr: float | None
    n_complete_above: int  # complete trials at or above lowest_lr: the edge is not sharp
    per_batch: tuple[BatchBoundary, ...]
    blowups: tuple[Blowup, ...]


def sampled(record: TrialRecord) -> bool:
    """Did the trial sample a config? (A failed trial may have none.)"""
    return "lr" in record.params


def _batch(record: TrialRecord) -> int:
    return int(record.params.get("batch_size", 32))  # 32: TrialConfig's default


def steps_per_epoch_by_batch(records: Sequence[TrialRecord]) -> dict[int, int]:
    """Optimizer steps per epoch for each batch size, from trials that ran whole epochs."""
    found: dict[int, int] = {}
    for r in records:
        if sampled(r) and r.state == "complete" and r.epochs_run >= 1:
            found.setdefault(_batch(r), round(r.steps_run / r.epochs_run))
    return found


def _blowup(record: TrialRecord, per_epoch: dict[int, int], epochs: int | None,
            known: bool = True) -> Blowup:
    params = record.params
    batch = _batch(record)
    if record.seed_values:  # re-trained by the pick: its own run finished
        return Blowup(record.number, float(params["lr"]), batch,
                      str(params.get("schedule")), record.steps_run, None, record.reason,
                      on_another_seed=True)
    steps = per_epoch.get(batch)
    if steps is None and record.epochs_run > 0:
        steps = round(record.steps_run / record.epochs_run)  # epochs_run is rounded: approximate
    lr_at = None
    # budgeted rungs: the blow-up was in a run of rung_epochs (its schedule compressed)
    ran = record.rung_steps if record.rung_steps is not None else record.steps_run
    length = record.rung_epochs or epochs
    step = _blowup_step(record.reason, ran)
    try:
        config = TrialConfig.from_dict(params)
        if known and steps and length and ran >= 1:
            total = max(steps * length, ran)
            # the same function the training loop used, at the step it blew up
            lr_at = config.lr * schedules.multiplier(
                config.schedule, step, total,
                warmup_steps=config.warmup_steps(total), **config.schedule_params)
    except (AutoLRError, TypeError):
        pass
    return Blowup(record.number, float(params["lr"]), batch, str(params.get("schedule")),
                  step, lr_at, record.reason)


_STAYED_ABOVE = re.compile(r"for (\d+) steps, to step (\d+)")  # the reasons of pruning.py
_ABOVE_AT_END = re.compile(r"when the run ended, (\d+) steps on")


def _blowup_step(reason: str | None, ran: int) -> int:
    """The step the loss blew up at: the first of the steps it then stayed above the
    limit, not the step the rule fired (20 steps on, where a warmup or a one-cycle ramp
    has the learning rate several times higher); the last step for a NaN or inf."""
    if (stayed := _STAYED_ABOVE.search(reason or "")) is not None:
        return max(0, int(stayed[2]) - int(stayed[1]) + 1)
    if (at_end := _ABOVE_AT_END.search(reason or "")) is not None:
        return max(0, ran - int(at_end[1]))
    return max(0, ran - 1)


def divergence_boundary(records: Sequence[TrialRecord], per_epoch: dict[int, int],
                        epochs: int | None, unknown: frozenset[str] = frozenset()
                        ) -> DivergenceBoundary:
    """`unknown`: schedules whose function this session does not have (another one under
    the name, `result.schedule_mismatch`): no scheduled lr at their blow-ups."""
    rows = [r for r in records if sampled(r)]
    blowups = tuple(_blowup(r, per_epoch, epochs, r.params.get("schedule") not in unknown)
                    for r in rows if r.state == "diverged")
    complete_lrs = [float(r.params["lr"]) for r in rows if r.state == "complete"]
    lowest = min((b.lr for b in blowups), default=None)
    per_batch = []
    for batch in sorted({_batch(r) for r in rows}):
        mine = [r for r in rows if _batch(r) == batch]
        diverged = [b.lr for b in blowups if b.batch_size == batch]
        per_batch.append(BatchBoundary(
            batch, len(mine), len(diverged), min(diverged, default=None),
            max((float(r.params["lr"]) for r in mine if r.state == "complete"), default=None)))
    above = sum(lr >= lowest for lr in complete_lrs) if lowest is not None else 0
    return DivergenceBoundary(lowest, max(complete_lrs, default=None), above,
                              tuple(per_batch), blowups)


@dataclass(frozen=True)
class FamilyStats:
    """One schedule family: how its trials ended and the spread of its final metric."""

    name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_diverged: int
    n_failed: int
    best_value: float | None
    best_number: int | None
    best_lr: float | None
    median: float | None
    q1: float | None  # 25th percentile, whichever direction is better
    q3: float | None
    worst: float | None
    values: tuple[float, ...]  # final metric of its complete trials


def family_stats(points: Sequence[TrialPoint], direction: str) -> tuple[FamilyStats, ...]:
    """Per schedule family, best family first (families without a complete trial last)."""
    sign = _sign(direction)
    groups: dict[str, list[TrialPoint]] = defaultdict(list)
    for p in points:
        groups[p.schedule].append(p)
    found = []
    for name, mine in groups.items():
        done = sorted((p for p in mine if p.state == "complete" and p.value is not None),
                      key=lambda p: sign * p.value)
        values = [p.value for p in done]
        count = {s: sum(p.state == s for p in mine)
                 for s in ("complete", "pruned", "diverged", "failed")}
        q1, median, q3 = (np.percentile(values, [25, 50, 75]).tolist() if values
                          else (None, None, None))
        found.append(FamilyStats(
            name, len(mine), count["complete"], count["pruned"], count["diverged"],
            count["failed"], values[0] if values else None, done[0].number if done else None,
            done[0].lr if done else None, median, q1, q3, values[-1] if values else None,
            tuple(values)))
    return tuple(sorted(found, key=lambda f: (f.best_value is None,
                                              sign * (f.best_value or 0.0), f.name)))


@dataclass(frozen=True)
class Trend:
    """A family's final metric vs learning rate, smoothed (Gaussian kernel on log10 lr)."""

    family: str
    lrs: tuple[float, ...]
    values: tuple[float | None, ...]  # None: no trial near (a gap in the line)


def smooth(lrs: Sequence[float], values: Sequence[float], *, bandwidth: float | None = None,
           n: int = _TREND_POINTS) -> tuple[list[float], list[float | None]]:
    """Kernel-weighted mean of `values` on a log-spaced grid over the range of `lrs`; None
    more than two bandwidths from every trial, where the line would draw a valley or a
    ridge no trial saw (three trials with 2.5 decades between two of them drew a dip in
    the empty middle)."""
    x = np.log10(np.asarray(lrs, dtype=float))
    y = np.asarray(values, dtype=float)
    # a quarter decade at least, so two close points do not make a spike
    width = bandwidth or max(0.25, (x.max() - x.min()) / 6)
    grid = np.linspace(x.min(), x.max(), n)
    weights = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / width) ** 2)
    fitted = (weights @ y) / weights.sum(axis=1)
    near = np.abs(grid[:, None] - x[None, :]).min(axis=1) <= 2 * width
    return (10**grid).tolist(), [float(v) if ok else None for v, ok in zip(fitted, near,
                                                                           strict=True)]


def family_trends(complete: Sequence[TrialPoint], min_points: int = 3) -> tuple[Trend, ...]:
    """A trend for each family with `min_points` complete trials at distinct lrs."""
    groups: dict[str, list[TrialPoint]] = defaultdict(list)
    for p in complete:
        groups[p.schedule].append(p)
    trends = []
    for name, mine in sorted(groups.items()):
        if len(mine) >= min_points and len({p.lr for p in mine}) >= 2:
            lrs, values = smooth([p.lr for p in mine], [p.value for p in mine])
            trends.append(Trend(name, tuple(lrs), tuple(values)))
    return tuple(trends)


@dataclass(frozen=True)
class BatchBest:
    batch_size: int
    lr: float  # learning rate of the best complete trial at this batch size
    value: float
    number: int
    n_complete: int


@dataclass(frozen=True)
class ScalingFit:
    """Best lr per batch size and the fit log10(lr) = slope * log10(batch) + intercept."""

    points: tuple[BatchBest, ...]
    slope: float | None
    intercept: float | None
    rule: str | None  # the closest of RULES: linear (1), square-root (0.5), flat (0);
    # "falling" below FALLING_BELOW
    reason: str | None  # why there is no fit


def scaling_fit(complete: Sequence[TrialPoint], direction: str) -> ScalingFit:
    sign = _sign(direction)
    groups: dict[int, list[TrialPoint]] = defaultdict(list)
    for p in complete:
        groups[p.batch_size].append(p)
    points = []
    for batch, mine in sorted(groups.items()):
        top = min(mine, key=lambda p: sign * p.value)
        points.append(BatchBest(batch, top.lr, top.value, top.number, len(mine)))
    if len(points) < 2:
        why = (f"only one batch size ({points[0].batch_size}) has complete trials"
               if points else "no trial completed")
        return ScalingFit(tuple(points), None, None, None, why + ", so there is nothing to fit.")
    slope, intercept = np.polyfit(np.log10([p.batch_size for p in points]),
                                  np.log10([p.lr for p in points]), 1).tolist()
    # a slope well below 0 is no rule's: the best lr falls as the batch grows
    rule = "falling" if slope < FALLING_BELOW else min(RULES, key=lambda n: abs(RULES[n] - slope))
    return ScalingFit(tuple(points), slope, intercept, rule, None)


@dataclass(frozen=True)
class Importance:
    """fANOVA importance of each searched parameter for the final metric (sums to 1)."""

    params: tuple[tuple[str, float], ...]  # most important first
    evaluator: str
    n_trials: int
    reason: str | None  # why it is empty, when it is


def _distributions(records: Sequence[TrialRecord]) -> dict:
    """Optuna distributions spanning the values the complete trials used (varying ones)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    found = {}
    for name in ("lr", "warmup_fraction", "weight_decay"):
        values = [float(r.params.get(name, 0.0)) for r in records]
        if min(values) < max(values):
            found[name] = FloatDistribution(min(values), max(values),
                                            log=name != "warmup_fraction" and min(values) > 0)
    for name in ("schedule", "batch_size", "optimizer"):
        choices = sorted({r.params.get(name) for r in records}, key=str)
        if len(choices) > 1:
            found[name] = CategoricalDistribution(choices)
    return found


def importance(records: Sequence[TrialRecord], direction: str) -> Importance:
    import optuna

    evaluator = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"
    done = [r for r in records if sampled(r) and r.state == "complete"
            and r.final_value is not None and math.isfinite(r.final_value)]
    if len(done) < MIN_IMPORTANCE_TRIALS:
        return Importance((), evaluator, len(done),
                          f"{len(done)} complete trial(s); importance needs at least "
                          f"{MIN_IMPORTANCE_TRIALS}.")
    if len(done) > MAX_IMPORTANCE_TRIALS:
        evaluator += (f", on a seeded sample of {MAX_IMPORTANCE_TRIALS} of the {len(done)} "
                      "complete trials")
        done = random.Random(0).sample(done, MAX_IMPORTANCE_TRIALS)
    distributions = _distributions(done)
    if not distributions:
        return Importance((), evaluator, len(done),
                          "every complete trial used the same settings: nothing varied.")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        study = optuna.create_study(direction=direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    for r in done:
        study.add_trial(optuna.trial.create_trial(
            params={name: r.params.get(name, 0.0) for name in distributions},
            distributions=distributions, value=r.final_value))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as error:
        return Importance((), evaluator, len(done), f"optuna could not compute it: {error}")
    ranked = sorted(found.items(), key=lambda item: -item[1])
    return Importance(tuple((k, float(v)) for k, v in ranked), evaluator, len(done), None)


@dataclass(frozen=True)
class FinderPick:
    """One classic LR-finder suggestion beside what the sweep measured."""

    name: str  # "steepest", "valley" or "min_tenth" (autolr.range_test.SUGGESTIONS)
    lr: float
    ratio: float  # the suggestion / the tuned learning rate
    in_band: bool | None  # inside the safe LR band (None: no band)
    # the complete trial at the range test's batch size (and, as the caller filters
    # `complete`, its optimizer and weight decay) closest in log lr, if one lies within a
    # quarter decade: what that learning rate actually gave in the sweep
    nearest: TrialPoint | None


def finder_picks(suggestions: dict[str, float], tuned_lr: float, batch_size: int,
                 band: SafeBand | None, complete: Sequence[TrialPoint],
                 max_distance: float = 0.25) -> tuple[FinderPick, ...]:
    """The range test's suggestions against the tuned learning rate and the sweep's trials.

    `complete`: the complete trials to look for one near each suggestion, already
    restricted to the range test's optimizer and weight decay (`TrialPoint` does not
    carry them; `data.extract` filters); they are restricted to its batch size here."""
    same_batch = [p for p in complete if p.batch_size == batch_size]
    picks = []
    for name, lr in suggestions.items():
        nearest = min(same_batch, key=lambda p: abs(math.log10(p.lr / lr)), default=None)
        if nearest is not None and abs(math.log10(nearest.lr / lr)) > max_distance:
            nearest = None
        picks.append(FinderPick(name, lr, lr / tuned_lr,
                                None if band is None else band.low <= lr <= band.high, nearest))
    return tuple(picks)
