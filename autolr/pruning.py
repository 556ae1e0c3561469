"""When to stop a trial: pure rules over a curve, and the Optuna pruner built on them.

The rules (`DivergenceMonitor` / `find_divergence`, `is_stalled`) know nothing of Optuna
or Ray, so both backends stop trials alike and the rules are tested on synthetic curves.

>>> find_divergence([2.3, 2.0, 1.5, float("nan")])
(3, 'loss became nan at step 3')
>>> is_stalled([1.0, 0.5, 0.5, 0.5, 0.5], patience=3)
True
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import TrialState

from autolr.lr_profile import EvalProfile
from autolr.space import TrialConfig

#: fastai's and Lightning's LR finders stop when the smoothed loss passes 4x its best.
DIVERGENCE_FACTOR = 4.0
#: steps in a row the smoothed loss must stay above that before a run counts as diverged.
#: A finder's learning rate only rises, so its first crossing is final; a training run's
#: schedule comes back down, and at a one-cycle peak the loss can spike past 4x for a
#: few steps and recover (MNIST-1D: a run stopped at 1.33 ended at 0.25 when left to run,
#: its config's best seed). Measured on the benchmark grids' high learning rates, 20
#: steps stop no run that would have ended well and still stop those that blow up.
DIVERGENCE_PATIENCE = 20
#: a run that ends blown up (`DivergenceMonitor.at_end`) must have been so for this many
#: steps: one bad last batch (a partial one of a few rows, say) is no blow-up
END_PATIENCE = 3


#: how far below zero, as a share of its typical size, a loss must go to be one that
#: crosses zero rather than a positive loss with rounding error
BELOW_ZERO_SHARE = 1e-3


@dataclass
class LossSize:
    """What a loss that can go below zero is measured by: fed each raw loss, it knows
    whether one went below zero (beyond rounding), and the loss's typical size (the mean
    |loss| of the first `steps`). A loss that crosses zero (a negative cosine similarity, a negative
    log-likelihood, an ELBO) has no meaningful multiple: near zero, 4x its best is batch
    noise, so its blow-up is measured against its size instead."""

    steps: int = DIVERGENCE_PATIENCE
    below_zero: bool = False
    _total: float = 0.0
    _signed: float = 0.0
    _count: int = 0

    def add(self, loss: float) -> None:
        if self._count < self.steps:
            self._total += abs(loss)
            self._signed += loss
            self._count += 1
        # below by a share of its size, not by rounding (a 1 - cosine similarity of
        # aligned outputs came out at -3.7e-8: that loss is still bounded by zero)
        self.below_zero = self.below_zero or loss < -BELOW_ZERO_SHARE * self.size

    @property
    def size(self) -> float:
        return self._total / self._count if self._count else 0.0

    @property
    def start(self) -> float:
        """Where the loss started: the mean of its first `steps`."""
        return self._signed / self._count if self._count else 0.0


@dataclass
class DivergenceMonitor:
    """Fed one training loss per step; says when training has diverged.

    Diverged: the loss is NaN or +/-inf (at once), or its smoothed value (a bias-corrected
    EMA, as fastai's finder) stays above `factor` times its best for `patience` steps in
    a row, or is still above it when the run ends (`at_end`): a spike that comes back
    down sooner is not a divergence. beta is 0.9, not the
    finders' 0.98: over a whole run the loss falls far, and a 50-step average lags so much
    behind it that a jump to 10x the current loss went unflagged; 10 steps still smooth
    batch noise. The best is floored at `floor` times the first smoothed loss, so a loss
    already near zero that wobbles (0.001 -> 0.005) is not mistaken for an explosion; a
    loss that goes below zero is measured by its size instead (`blow_up_limit`).
    """

    factor: float = DIVERGENCE_FACTOR
    beta: float = 0.9
    floor: float = 0.05
    patience: int = DIVERGENCE_PATIENCE
    _average: float = field(default=0.0, init=False)
    _count: int = field(default=0, init=False)
    _first: float = field(default=math.nan, init=False)
    _best: float = field(default=math.inf, init=False)
    _above: int = field(default=0, init=False)  # steps in a row above factor x best
    _size: LossSize = field(default_factory=LossSize, init=False)

    def update(self, loss: float) -> str | None:
        """Add the next step's loss; return why training diverged, or None."""
        step = self._count
        if not math.isfinite(loss):
            return f"loss became {loss} at step {step}"
        self._count += 1
        self._size.add(loss)
        self._average = self.beta * self._average + (1.0 - self.beta) * loss
        smoothed = self._average / (1.0 - self.beta**self._count)
        if self._count == 1:
            self._first = smoothed
        self._best = min(self._best, smoothed)
        blown = smoothed > blow_up_limit(self._best, self._first, self.factor, self.floor,
                                         self._size)
        self._above = self._above + 1 if blown else 0
        if self._above >= self.patience:
            return (f"smoothed loss {smoothed:.4g} stayed above {self._limit_words()} for "
                    f"{self.patience} steps, to step {step}")
        return None

    def _limit_words(self) -> str:
        """`blow_up_limit` in words, for the reason (built only then: not every step)."""
        reference = _multiplied(self._best, self._first, self.floor, self._size)
        if reference is not None:
            return f"{self.factor:g}x its best {reference:.4g}"
        limit = blow_up_limit(self._best, self._first, self.factor, self.floor, self._size)
        if limit == _start_cap(self.factor, self._size):
            return (f"{limit:.4g} ({self.factor - 1:g}x its size above where it started, "
                    f"{self._size.start:.4g})")
        return f"{limit:.4g} (its best {self._best:.4g}, risen {self.factor - 1:g}x its size)"

    def at_end(self) -> str | None:
        """Call once the run is over: why it ended diverged, or None. A run that ends with
        its smoothed loss still above `factor` times its best had no steps left to come
        back down; without this, a run shorter than `patience` steps (3 epochs of 6
        batches) or one that blows up in its last steps would count as complete. One or two
        steps above it are not enough, unless far above (`factor` times the limit): a
        single bad last batch lifts the average too, but not by so much."""
        if self._above == 0:
            return None
        smoothed = self._average / (1.0 - self.beta**self._count)  # as `update` left it
        limit = blow_up_limit(self._best, self._first, self.factor, self.floor, self._size)
        far_above = smoothed > limit + (self.factor - 1.0) * max(abs(limit), 1e-12)
        if self._above < min(END_PATIENCE, self.patience) and not far_above:
            return None
        return (f"smoothed loss {smoothed:.4g} was still above {self._limit_words()} when "
                f"the run ended, {self._above} steps on")


def _multiplied(best: float, first: float, floor: float, size: LossSize | None) -> float | None:
    """The loss whose multiple `blow_up_limit` takes, or None where it measures by size."""
    reference = max(best, floor * first)
    return reference if reference > 0 and not (size and size.below_zero) else None


def blow_up_limit(best: float, first: float, factor: float, floor: float = 0.0,
                  size: LossSize | None = None) -> float:
    """The smoothed loss above which training (or a range test) is blowing up: `factor`
    times the best (floored at `floor` times the first); for a loss that goes to or below
    zero (`size` saw one below it), where a multiple of the best means nothing, the best
    plus `factor - 1` times the loss's size (the largest of |best|, |first| and its
    typical size at the start), and at most `factor - 1` typical sizes above where it
    started: a bounded loss (a cosine similarity, in [-1, 1]) that fell far could not rise
    that much, and a loss back well above its start has undone all its training."""
    reference = _multiplied(best, first, floor, size)
    if reference is not None:
        return factor * reference
    typical = size.size if size else 0.0
    rise = best + (factor - 1.0) * max(abs(best), abs(first), typical, 1e-8)
    return rise if size is None or not size.below_zero else min(rise, _start_cap(factor, size))


def _start_cap(factor: float, size: LossSize) -> float:
    """`factor - 1` typical sizes above where a loss started (see `blow_up_limit`)."""
    return size.start + (factor - 1.0) * max(size.size, 1e-8)


def find_divergence(losses: Sequence[float], factor: float = DIVERGENCE_FACTOR,
                    patience: int = DIVERGENCE_PATIENCE) -> tuple[int, str] | None:
    """The step at which a whole run's loss curve counts as diverged, with the reason
    (its last step if it ends still blown up, as the training loop judges); None if never."""
    monitor = DivergenceMonitor(factor, patience=patience)
    step = -1
    for step, loss in enumerate(losses):
        reason = monitor.update(loss)
        if reason is not None:
            return step, reason
    reason = monitor.at_end()
    return None if reason is None else (step, reason)


def is_stalled(values: Sequence[float], patience: int, min_delta: float = 1e-3,
               direction: str = "minimize") -> bool:
    """True when the last `patience` evaluations did not beat the best before them by a
    relative `min_delta` (a stalled trial, as Optuna's PatientPruner judges it)."""
    if patience < 1 or len(values) <= patience:
        return False
    sign = 1.0 if direction == "minimize" else -1.0
    before = min(sign * v for v in values[:-patience])
    recent = min(sign * v for v in values[-patience:])
    return not recent < before - min_delta * abs(before)


#: below this share of its base learning rate a schedule has annealed: a flat curve there
#: is a run converging at its end, not a stall.
ANNEALED = 0.05
#: a schedule whose learning rate will still fall by more than this share of where it is
#: (cosine, linear, one-cycle before their last steps) has most of its decay to come, and
#: a decaying learning rate is what brings a plateau down: a flat curve there is not a
#: stall yet. After it (constant, a step schedule past its last drop, an exponential
#: near its floor) a flat curve at a high learning rate is one.
DECAY_AHEAD = 0.5


STALLED = "stalled"  # how a stall's reason starts (`is_stall`)


def stop_reason(values: Sequence[float], patience: int | None, min_delta: float,
                direction: str, profile: EvalProfile | None = None) -> str | None:
    """The reason a curve of evaluations should stop on its own: 'diverged', or one that
    starts 'stalled' and says where.

    With the trial's `profile` the stall rule is LR-aware: flat at a high learning rate
    with little decay still to come is a stall; flat once the schedule has annealed,
    while its learning rate will still fall by more than half, or during warmup or where
    the learning rate will still rise, is not."""
    if values and not math.isfinite(values[-1]):
        return "diverged"
    if not (patience and is_stalled(values, patience, min_delta, direction)):
        return None
    where = ""
    if profile is not None:
        last = min(len(values), len(profile.multiplier)) - 1
        window = range(max(0, last - patience), last + 1)
        factor = profile.multiplier[last]
        if (factor < ANNEALED or profile.ahead[last] > DECAY_AHEAD * factor
                or not all(profile.judged[i] for i in window)):
            return None
        where = f", at {factor:.2g}x its base learning rate with little decay ahead"
    return (f"{STALLED}: not {min_delta:.2g} (relative) better than its best before for "
            f"{patience} evaluations, to evaluation {len(values)}{where}")


def is_stall(reason: str | None) -> bool:
    """Whether a trial's reason is the stall rule's (also a stored 'stalled' of old)."""
    return bool(reason) and reason.startswith(STALLED)


class DecayAwareMedianPruner(BasePruner):
    """Optuna's median rule, made fair to decaying schedules (see autolr.lr_profile).

    At evaluation s a trial is pruned when its best value so far is worse than the median
    of the completed trials' values at s, counting only trials with at least as much
    decay still ahead of them at s (within `tolerance`): a one-cycle trial at its peak is
    measured against other trials still to anneal, not against a constant one that has
    nothing left to gain; a constant trial is measured against everyone. Never during
    warmup, while the learning rate will still rise, before `start_fraction` of the run,
    with fewer than `min_reference` comparable trials, or before `n_startup_trials`
    trials completed.
    """

    def __init__(self, n_evals: int, *, start_fraction: float = 0.25,
                 tolerance: float = 0.25, n_startup_trials: int = 5,
                 min_reference: int = 3) -> None:
        self.n_evals, self.start_fraction, self.tolerance = n_evals, start_fraction, tolerance
        self.n_startup_trials, self.min_reference = n_startup_trials, min_reference
        self._profiles: dict[str, EvalProfile] = {}  # by config (its JSON)
        # by trial: its id with its start (an id alone restarts at 0 in each storage), so
        # that a prune, which reads every finished trial's profile, need not write JSON
        self._by_trial: dict[tuple, EvalProfile] = {}
        self.cuts: dict[int, str] = {}  # trial number -> why this pruner cut it

    def profile(self, trial: optuna.trial.FrozenTrial) -> EvalProfile | None:
        """The trial's profile from the config autolr stores on it (None without one)."""
        mine = (trial._trial_id, trial.datetime_start)  # noqa: SLF001 - stable per trial
        if mine in self._by_trial:
            return self._by_trial[mine]
        config = trial.user_attrs.get("config")
        if not config:  # not known yet (set as the trial starts): not kept
            return None
        # keyed by the config, of which it is a pure function: one pruner may serve
        # several studies, whose trial ids restart at 0
        key = json.dumps(config, sort_keys=True)
        if key not in self._profiles:
            self._profiles[key] = EvalProfile.of(TrialConfig.from_dict(config), self.n_evals)
        self._by_trial[mine] = self._profiles[key]
        return self._profiles[key]

    def comparable(self, others: Iterable[optuna.trial.FrozenTrial], own: EvalProfile,
                   step: int) -> list[float]:
        """The values at `step` of those of `others` with at least as much decay still
        ahead of them there as `own` (within `tolerance`), non-finite ones included."""
        values = []
        for other in others:
            value = other.intermediate_values.get(step)
            theirs = self.profile(other) if value is not None else None
            if theirs is not None and theirs.ahead[step] >= own.ahead[step] - self.tolerance:
                values.append(value)
        return values

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        own = self.profile(trial)
        if (step is None or own is None or step >= self.n_evals or not own.judged[step]
                or (step + 1) / self.n_evals < self.start_fraction):
            return False
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(completed) < self.n_startup_trials:
            return False
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        reference = [sign * v for v in self.comparable(completed, own, step) if math.isfinite(v)]
        if len(reference) < self.min_reference:
            return False
        so_far = [sign * v for s, v in trial.intermediate_values.items()
                  if s <= step and math.isfinite(v)]
        if so_far and min(so_far) > statistics.median(reference):
            self.cuts[trial.number] = (f"behind the median of {len(reference)} finished trials "
                                       f"with as much decay ahead, at evaluation {step + 1}")
            return True
        return False


class AutoLRPruner(BasePruner):
    """Prunes a trial whose last value is not finite or that has stalled, and otherwise
    defers to a wrapped Optuna pruner (Median, SuccessiveHalving, Hyperband...), the way
    Optuna's PatientPruner wraps another one.

    >>> import optuna
    >>> pruner = AutoLRPruner(optuna.pruners.MedianPruner(), patience=2)
    >>> study = optuna.create_study(pruner=pruner)
    >>> study.add_trial(optuna.trial.create_trial(value=0.5))
    >>> trial = study.ask()
    >>> for step, value in enumerate([1.0, 0.9, 0.9, 0.9]):
    ...     trial.report(value, step)
    >>> trial.should_prune()
    True
    """

    def __init__(self, wrapped: BasePruner | None = None, *, patience: int | None = None,
                 min_delta: float = 1e-3, n_evals: int | None = None) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be None or >= 1, but got {patience=}.")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, but got {min_delta=}.")
        self.wrapped = wrapped
        self.patience = patience
        self.min_delta = min_delta
        self.n_evals = n_evals  # with it, the stall rule is LR-aware (see stop_reason)

    def reason(self, study: optuna.Study, values: Sequence[float],
               profile: EvalProfile | None = None) -> str | None:
        """Why this pruner's own rules stop a trial with these evaluations, or None:
        'diverged' (a non-finite value), or 'stalled' (flat for `patience` evaluations at
        a learning rate that has not annealed, while behind the best finished trial: a
        flat trial that leads is never cut)."""
        direction = "minimize" if study.direction == StudyDirection.MINIMIZE else "maximize"
        why = stop_reason(values, self.patience, self.min_delta, direction, profile)
        if not is_stall(why):
            return why
        try:
            leader = study.best_value
        except ValueError:  # no finished trial yet: nothing to be behind
            return None
        own = min(values) if direction == "minimize" else max(values)
        behind = own > leader if direction == "minimize" else own < leader
        return why if behind else None

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        values = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
        if not values:
            return False
        if self.reason(study, values, self.profile(trial)) is not None:
            return True
        # the default config's trial runs to its end (unless it diverges or stalls): the
        # report's comparison with it is then with a finished run, not an early value
        return (self.wrapped is not None and not trial.user_attrs.get("baseline")
                and bool(self.wrapped.prune(study, trial)))

    def profile(self, trial: optuna.trial.FrozenTrial) -> EvalProfile | None:
        """The trial's LR profile, when this pruner knows the number of evaluations."""
        if self.n_evals is None or not trial.user_attrs.get("config"):
            return None
        if isinstance(self.wrapped, DecayAwareMedianPruner):  # shares its cache
            return self.wrapped.profile(trial)
        return EvalProfile.of(TrialConfig.from_dict(trial.user_attrs["config"]), self.n_evals)
