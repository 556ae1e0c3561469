"""Step one of the report: plain data extracted from a TuneResult (no plotting, no HTML).

Everything the figures and the page show comes from `extract(result)`; tests assert on it.

>>> from autolr.range_test import RangeTest
>>> from autolr.result import TrialRecord, TuneResult
>>> params = {"lr": 0.01, "schedule": "constant", "schedule_params": {},
...           "warmup_fraction": 0.0, "batch_size": 32, "optimizer": "adamw",
...           "weight_decay": 0.0}
>>> record = TrialRecord(0, "complete", params, values=(0.5, 0.3), epochs_run=2.0,
...                      steps_run=20)
>>> extract(TuneResult([record], epochs=2)).summary.counts["complete"]
1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autolr.errors import AutoLRError
from autolr.metrics import PERFECT_SCORES
from autolr.pruning import is_stall
from autolr.range_test import RangeTest
from autolr.reporting import stats
from autolr.reporting.stats import (
    DivergenceBoundary,
    FamilyStats,
    FinderPick,
    Importance,
    SafeBand,
    ScalingFit,
    Trend,
)
from autolr.result import (
    TrialRecord,
    TuneResult,
    pick_candidates,
    schedule_edited,
    schedule_mismatch,
    seed_note,
)
from autolr.space import TrialConfig

#: The safe LR band holds learning rates whose final metric is within this fraction of
#: the best (relative to |best|): 0.10 means "at most 10% worse than the best".
DEFAULT_TOLERANCE = 0.10
#: The band is also given at these tolerances, to show how fast the metric falls off.
BAND_TOLERANCES = (0.05, 0.10, 0.25, 0.50)
_MAX_SCHEDULE_POINTS = 2000  # points drawn for the best schedule: enough for any shape


@dataclass(frozen=True)
class TrialPoint:
    """One trial that sampled a config: where it sits and how it ended."""

    number: int
    state: str
    lr: float
    schedule: str
    batch_size: int
    warmup_fraction: float
    value: float | None  # last finite metric: final for complete, when stopped otherwise
    epochs_run: float
    steps_run: int
    seconds: float
    is_baseline: bool
    reason: str | None
    # the robust pick: how `value` was measured (result.seed_note), '' for one seed
    seed_note: str = ""
    measured: str = ""  # the same in a few words for a table: 'held out', 'mean of 3 seeds'


@dataclass(frozen=True)
class Summary:
    """Section 1: best vs default, trial counts, compute spent and saved (in epochs)."""

    n_trials: int
    counts: dict[str, int]
    best: TrialPoint | None
    best_params: dict[str, Any] | None
    baseline: TrialPoint | None
    baseline_params: dict[str, Any] | None
    improvement: float | None  # the best's gain over the baseline (> 0 is better), a share
    # of the baseline's distance from a perfect score (`PERFECT_SCORES`, else 0)
    epochs_per_trial: int | None  # the full run length of a trial
    epochs_spent: float  # summed over all trials
    epochs_budget: float  # what every sampled trial would have cost run to the end
    epochs_saved_pruning: float  # pruned trials: budget minus what they ran
    epochs_saved_divergence: float  # diverged trials, stopped at the blow-up
    seconds_spent: float
    no_best: str | None  # why there is no best trial, when there is none
    epochs_confirming: float = 0.0  # of epochs_spent: re-running would-be bests on more seeds
    passed_over: str | None = None  # a better-valued trial the pick passed over, and why
    # epochs_saved_pruning by the rule that cut each trial (`pruning_rule`), largest first
    saved_by_rule: tuple[tuple[str, float], ...] = ()
    # budgeted rungs: a trial that passes a rung trains its whole schedule again at the
    # next, so a complete one costs more than one run; what that costs beyond the budget
    epochs_rung_reruns: float = 0.0


@dataclass(frozen=True)
class ScheduleCurve:
    """The learning rate of one trial at every optimizer step (downsampled when long)."""

    number: int
    schedule: str
    schedule_params: dict[str, Any]
    lr: float
    warmup_steps: int
    total_steps: int
    steps_per_epoch: int
    steps: tuple[int, ...]
    lrs: tuple[float, ...]


@dataclass(frozen=True)
class LearningCurve:
    """The metric of one trial at each evaluation, x in epochs."""

    number: int
    state: str
    schedule: str
    lr: float
    epochs: tuple[float, ...]
    values: tuple[float, ...]
    is_best: bool
    is_baseline: bool


@dataclass(frozen=True)
class BestLosses:
    """The best trial's training and validation loss per evaluation."""

    number: int
    epochs: tuple[float, ...]
    train: tuple[float, ...]
    val: tuple[float, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as plain values."""

    study_name: str | None
    metric: str
    direction: str
    tolerance: float
    summary: Summary
    points: tuple[TrialPoint, ...]
    band: SafeBand | None  # at `tolerance`
    bands: tuple[SafeBand, ...]  # at each of BAND_TOLERANCES and `tolerance`
    boundary: DivergenceBoundary
    trends: tuple[Trend, ...]
    families: tuple[FamilyStats, ...]
    best_schedule: ScheduleCurve | None
    # why the best schedule cannot be drawn, when it cannot; a caveat when it is drawn
    schedule_note: str | None
    curves: tuple[LearningCurve, ...]
    best_losses: BestLosses | None
    scaling: ScalingFit
    importance: Importance
    code: str | None
    failures: tuple[tuple[int, str], ...]  # (trial number, error) of failed trials
    # the LR range test run after the sweep, and its suggestions beside the tuned lr
    range_test: RangeTest | None = None
    tuned_lr: float | None = None
    finder_picks: tuple[FinderPick, ...] = ()
    rungs: tuple[int, ...] = ()  # budgeted rungs (epochs) the trials ran, if any
    # complete trials the safe band leaves out: on the edge of divergence, or a setback
    band_left_out: tuple[int, ...] = ()
    ended: bool | None = None  # TuneResult.ended: False for a sweep stopped before its end
    cut_short: str | None = None  # TuneResult.cut_short: why fewer trials ran than asked
    # the metric of a constant prediction (`autolr.chance`): a model that learned nothing
    chance: float | None = None
    learned_nothing: str | None = None  # TuneResult.learned_nothing: the best is no better
    range_edge: str | None = None  # TuneResult.range_edge: the best lr at the range's end


def extract(result: TuneResult, *, tolerance: float = DEFAULT_TOLERANCE) -> ReportData:
    """All the report's data from a result's trial table."""
    if not 0 <= tolerance < 1:
        raise AutoLRError(f"tolerance is a fraction of the best metric and must be in [0, 1),"
                          f" but got {tolerance=}.")
    direction = result.direction
    best = result.best_record
    points = tuple(_point(r) for r in result.records if stats.sampled(r))
    per_epoch = stats.steps_per_epoch_by_batch(result.records)
    epochs = full_epochs(result)
    complete = [p for p in points if p.state == "complete" and p.value is not None]
    # "safe": not a run the pick passed over for the edge of divergence or a setback
    away = {r.number for r in pick_candidates(result.records)}
    clear = [p for p in complete if p.number in away] or complete
    schedule, schedule_note = _schedule_curve(best, result.own_schedules)
    recommended = next((p for p in complete if best is not None and p.number == best.number),
                       None)
    perfect = PERFECT_SCORES.get(result.metric, 0.0)
    worst = stats.WORST_SCORES.get(result.metric)
    band = stats.safe_band(clear, direction, tolerance, recommended, perfect, worst)
    test = result.range_test
    tuned_lr = best.params.get("lr") if best is not None else None
    return ReportData(
        study_name=result.study_name, metric=result.metric, direction=direction,
        tolerance=tolerance, summary=_summary(result, points, epochs), points=points,
        band=band, band_left_out=tuple(p.number for p in complete if p not in clear),
        bands=tuple(b for t in sorted({*BAND_TOLERANCES, tolerance})
                    if (b := stats.safe_band(clear, direction, t, recommended, perfect, worst))
                    is not None),
        boundary=stats.divergence_boundary(
            result.records, per_epoch, epochs,
            frozenset(name for name in {str(r.params.get("schedule")) for r in result.records}
                      if schedule_mismatch(name, result.own_schedules))),
        trends=stats.family_trends(complete),
        families=stats.family_stats(points, direction),
        best_schedule=schedule, schedule_note=schedule_note,
        curves=_curves(result, best), best_losses=_best_losses(result, best),
        scaling=stats.scaling_fit(complete, direction),
        importance=stats.importance(result.records, direction),
        code=_code(result, best),
        failures=tuple((r.number, r.reason or "no error message")
                       for r in result.records if r.state == "failed"),
        range_test=test, tuned_lr=tuned_lr,
        rungs=tuple(sorted({r.rung_epochs for r in result.records if r.rung_epochs})),
        ended=result.ended, cut_short=result.cut_short,
        finder_picks=_finder_picks(result, test, tuned_lr, band, complete),
        chance=float(result.chance["value"]) if result.chance else None,
        learned_nothing=result.learned_nothing, range_edge=result.range_edge,
    )


def _finder_picks(result: TuneResult, test: RangeTest | None, tuned_lr: float | None,
                  band: SafeBand | None, complete: list[TrialPoint]) -> tuple[FinderPick, ...]:
    """The range test's suggestions beside the sweep: the trials near each are taken at
    the test's batch size, optimizer and weight decay (another optimizer's loss at the
    same lr says nothing about it)."""
    if test is None or tuned_lr is None:
        return ()
    alike = {r.number for r in result.records
             if r.params.get("optimizer", TrialConfig.optimizer) == test.optimizer
             and _near_decay(float(r.params.get("weight_decay") or 0.0), test.weight_decay)}
    return stats.finder_picks(test.suggestions(), tuned_lr, test.batch_size, band,
                              [p for p in complete if p.number in alike])


def _near_decay(decay: float, other: float) -> bool:
    """Weight decays alike for the finder's "sweep near it": equal, or within 3x of each
    other (a searched weight decay is drawn on a log scale: no other trial has the test's
    very value)."""
    if decay == 0.0 or other == 0.0:
        return decay == other
    return max(decay, other) / min(decay, other) <= 3.0


def full_epochs(result: TuneResult) -> int | None:
    """Epochs of a full trial: the result's, else the longest complete run."""
    if result.epochs:
        return int(result.epochs)
    runs = [r.epochs_run for r in result.records if r.state == "complete"]
    return round(max(runs)) if runs else None


def _finite(values: tuple[float, ...]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _point(record: TrialRecord) -> TrialPoint:
    params = record.params
    finite = _finite(record.values)
    return TrialPoint(
        number=record.number, state=record.state, lr=float(params["lr"]),
        schedule=str(params.get("schedule", "constant")),
        batch_size=int(params.get("batch_size", 32)),
        warmup_fraction=float(params.get("warmup_fraction", 0.0)),
        value=record.expected_value if record.state == "complete" and record.seed_values
        else (finite[-1] if finite else None),
        epochs_run=record.epochs_run, steps_run=record.steps_run,
        seconds=record.seconds + record.extra_seconds, is_baseline=record.is_baseline,
        reason=record.reason, seed_note=seed_note(record).strip(),
        measured=_measured(record))


def _measured(record: TrialRecord) -> str:
    if record.state != "complete":
        return ""
    if record.holdout_values:
        return "held out"
    return f"mean of {len(record.seed_values)} seeds" if len(record.seed_values) > 1 else ""


def _summary(result: TuneResult, points: tuple[TrialPoint, ...],
             epochs: int | None) -> Summary:
    by_number = {p.number: p for p in points}
    best = result.best_record
    best_point = by_number.get(best.number) if best else None
    baseline = result.baseline
    base_point = by_number.get(baseline.number) if baseline else None
    improvement = None
    # as the safe band measures: a share of the default's distance from a perfect score,
    # so accuracy 0.92 -> 0.956 is 45% less error, not "4% better"
    perfect = PERFECT_SCORES.get(result.metric, 0.0)
    if (best_point and base_point and base_point.state == "complete"
            and base_point.value is not None and base_point.value != perfect):
        sign = 1.0 if result.direction == "minimize" else -1.0
        improvement = (sign * (base_point.value - best_point.value)
                       / abs(base_point.value - perfect))
    full = float(epochs or 0)

    def saved(state: str) -> float:
        return sum(max(0.0, full - p.epochs_run) for p in points if p.state == state)

    by_rule: dict[str, float] = {}
    for p in points:
        if p.state == "pruned":
            rule = pruning_rule(p.reason)
            by_rule[rule] = by_rule.get(rule, 0.0) + max(0.0, full - p.epochs_run)

    return Summary(
        n_trials=len(result.records), counts=result.counts(), best=best_point,
        best_params=dict(best.params) if best else None, baseline=base_point,
        baseline_params=dict(baseline.params) if baseline and baseline.params else None,
        improvement=improvement, epochs_per_trial=epochs,
        epochs_spent=sum(r.epochs_run + r.extra_epochs for r in result.records),
        epochs_budget=full * len(points), epochs_saved_pruning=saved("pruned"),
        epochs_saved_divergence=saved("diverged"),
        seconds_spent=sum(r.seconds + r.extra_seconds for r in result.records),
        epochs_confirming=sum(r.extra_epochs for r in result.records),
        no_best=None if best else _no_best(result), passed_over=result.passed_over(),
        saved_by_rule=tuple(sorted(by_rule.items(), key=lambda item: -item[1])),
        epochs_rung_reruns=sum(max(0.0, p.epochs_run - full) for p in points if full))


def pruning_rule(reason: str | None) -> str:
    """Which rule cut a pruned trial, read from the reason autolr's pruners give."""
    why = reason or ""
    if is_stall(why):
        return "stalls"
    if why.endswith("(checked halving)"):
        return "halving"
    if why.startswith("behind the median"):
        return "the median rule"
    if "(budgeted rung " in why:
        return "budgeted rungs"
    return "other rules"  # a pruner of Optuna's or Tune's: "pruned by ..."


def _no_best(result: TuneResult) -> str:
    try:
        result.best_config  # noqa: B018 - raises with the result's own explanation
    except AutoLRError as error:
        return str(error)
    return "no trial completed."


def _config(record: TrialRecord | None) -> TrialConfig | None:
    """The record's config, or None when it cannot be rebuilt (e.g. a user schedule that
    is not registered in this Python session)."""
    if record is None or not record.params:
        return None
    try:
        return TrialConfig.from_dict(record.params)
    except (AutoLRError, TypeError):
        return None


def _schedule_curve(best: TrialRecord | None, own_schedules: dict[str, str] | None
                    ) -> tuple[ScheduleCurve | None, str | None]:
    if best is None:
        return None, "There is no best trial, so there is no schedule to draw."
    mismatch = schedule_mismatch(str(best.params.get("schedule")), own_schedules)
    if mismatch:  # drawn, it would be another schedule than the one trained
        return None, mismatch[0].upper() + mismatch[1:]
    config = _config(best)
    if config is None:
        return None, (f"The schedule {best.params.get('schedule')!r} is not registered in "
                      "this Python session; register it (autolr.schedules.register) before "
                      "writing the report to draw it.")
    # a complete trial ran every step of its schedule; with budgeted rungs, steps_run
    # adds up every rung's run, and its last rung's is the whole schedule
    total, epochs = ((best.rung_steps, best.rung_epochs) if best.rung_steps and best.rung_epochs
                     else (best.steps_run, best.epochs_run))
    if total < 1 or epochs <= 0:
        return None, "The best trial recorded no optimizer steps."
    factors = config.multipliers(total)  # the very table the training loop applied
    keep = _downsample(factors)
    edited = schedule_edited(config.schedule, own_schedules)
    caveat = edited and edited[0].upper() + edited[1:]
    return ScheduleCurve(
        number=best.number, schedule=config.schedule,
        schedule_params=dict(config.schedule_params), lr=config.lr,
        warmup_steps=config.warmup_steps(total), total_steps=total,
        steps_per_epoch=max(1, round(total / epochs)), steps=tuple(keep),
        lrs=tuple(config.lr * factors[i] for i in keep)), caveat or None


def _downsample(factors: list[float]) -> list[int]:
    """Step indices to draw: every step of a short run; of a long one an even stride plus
    both sides of every jump (a change of over 5% in one step), so step decays keep their
    exact drop positions."""
    n = len(factors)
    if n <= _MAX_SCHEDULE_POINTS:
        return list(range(n))
    stride = math.ceil(n / _MAX_SCHEDULE_POINTS)
    keep = set(range(0, n, stride)) | {n - 1}
    jumps = [i for i in range(1, n)
             if abs(factors[i] - factors[i - 1]) > 0.05 * max(factors[i], factors[i - 1])]
    if len(jumps) <= _MAX_SCHEDULE_POINTS // 2:  # else the shape is jagged: stride only
        keep |= {*jumps, *(i - 1 for i in jumps)}
    return sorted(keep)


def _evals_per_epoch(records: list[TrialRecord]) -> float:
    """Evaluations per epoch: complete and pruned trials stop right after an evaluation."""
    ratios = sorted(len(r.values) / r.epochs_run for r in records
                    if r.state in ("complete", "pruned") and r.epochs_run > 0 and r.values)
    return max(1.0, round(ratios[len(ratios) // 2])) if ratios else 1.0


def _curves(result: TuneResult, best: TrialRecord | None) -> tuple[LearningCurve, ...]:
    per_epoch = _evals_per_epoch(result.records)
    curves = []
    for r in result.records:
        pairs = [((i + 1) / per_epoch, v) for i, v in enumerate(r.values)
                 if v is not None and math.isfinite(v)]
        if not stats.sampled(r) or not pairs:
            continue
        curves.append(LearningCurve(
            number=r.number, state=r.state, schedule=str(r.params.get("schedule", "constant")),
            lr=float(r.params["lr"]), epochs=tuple(x for x, _ in pairs),
            values=tuple(v for _, v in pairs), is_best=best is not None and r.number == best.number,
            is_baseline=r.is_baseline))
    return tuple(curves)


def _best_losses(result: TuneResult, best: TrialRecord | None) -> BestLosses | None:
    if best is None or not (best.train_losses or best.val_losses):
        return None
    per_epoch = _evals_per_epoch(result.records)
    n = max(len(best.train_losses), len(best.val_losses))
    return BestLosses(number=best.number, epochs=tuple((i + 1) / per_epoch for i in range(n)),
                      train=tuple(best.train_losses), val=tuple(best.val_losses))


def _code(result: TuneResult, best: TrialRecord | None) -> str | None:
    if best is None or _config(best) is None or schedule_mismatch(
            str(best.params.get("schedule")), result.own_schedules):
        return None  # the schedule's note says why
    return result.code()  # with this sweep's steps per epoch and epochs, when known
