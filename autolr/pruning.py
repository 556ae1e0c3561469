"""When to stop a trial: pure rules over a curve, and the Optuna pruner built on them.

The rules (`DivergenceMonitor` / `find_divergence`, `is_stalled`) know nothing of Optuna
or Ray, so both backends stop trials alike and the rules are tested on synthetic curves.

>>> find_divergence([2.3, 2.0, 1.5, float("nan")])
(3, 'loss became nan at step 3')
>>> is_stalled([1.0, 0.5, 0.5, 0.5, 0.5], patience=3)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection

#: fastai's and Lightning's LR finders stop when the smoothed loss passes 4x its best.
DIVERGENCE_FACTOR = 4.0


@dataclass
class DivergenceMonitor:
    """Fed one training loss per step; says when training has diverged.

    Diverged: the loss is NaN or +/-inf, or its smoothed value (a bias-corrected EMA, as
    fastai's finder) exceeds `factor` times its best. beta is 0.9, not the finders' 0.98:
    over a whole run the loss falls far, and a 50-step average lags so much behind it that
    a jump to 10x the current loss went unflagged; 10 steps still smooth batch noise.
    The best is floored at `floor` times the first smoothed loss, so a loss already near
    zero that wobbles (0.001 -> 0.005) is not mistaken for an explosion.
    """

    factor: float = DIVERGENCE_FACTOR
    beta: float = 0.9
    floor: float = 0.05
    _average: float = field(default=0.0, init=False)
    _count: int = field(default=0, init=False)
    _first: float = field(default=math.nan, init=False)
    _best: float = field(default=math.inf, init=False)

    def update(self, loss: float) -> str | None:
        """Add the next step's loss; return why training diverged, or None."""
        step = self._count
        if not math.isfinite(loss):
            return f"loss became {loss} at step {step}"
        self._count += 1
        self._average = self.beta * self._average + (1.0 - self.beta) * loss
        smoothed = self._average / (1.0 - self.beta**self._count)
        if self._count == 1:
            self._first = smoothed
        self._best = min(self._best, smoothed)
        reference = max(self._best, self.floor * self._first)
        if reference > 0 and smoothed > self.factor * reference:
            return (f"smoothed loss {smoothed:.4g} rose above {self.factor:g}x its best "
                    f"{reference:.4g} at step {step}")
        return None


def find_divergence(losses: Sequence[float], factor: float = DIVERGENCE_FACTOR,
                    ) -> tuple[int, str] | None:
    """The first step at which a loss curve diverges, with the reason; None if it never does."""
    monitor = DivergenceMonitor(factor)
    for step, loss in enumerate(losses):
        reason = monitor.update(loss)
        if reason is not None:
            return step, reason
    return None


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


def stop_reason(values: Sequence[float], patience: int | None, min_delta: float,
                direction: str) -> str | None:
    """The reason a curve of evaluations should stop on its own: 'diverged' or 'stalled'."""
    if values and not math.isfinite(values[-1]):
        return "diverged"
    if patience and is_stalled(values, patience, min_delta, direction):
        return "stalled"
    return None


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
                 min_delta: float = 1e-3) -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be None or >= 1, but got {patience=}.")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, but got {min_delta=}.")
        self.wrapped = wrapped
        self.patience = patience
        self.min_delta = min_delta

    def reason(self, study: optuna.Study, values: Sequence[float]) -> str | None:
        """Why this pruner's own rules stop a trial with these evaluations, or None:
        'diverged' (a non-finite value), or 'stalled' (flat for `patience` evaluations
        while behind the best finished trial: a flat trial that leads is never cut)."""
        direction = "minimize" if study.direction == StudyDirection.MINIMIZE else "maximize"
        why = stop_reason(values, self.patience, self.min_delta, direction)
        if why != "stalled":
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
        if self.reason(study, values) is not None:
            return True
        return self.wrapped is not None and bool(self.wrapped.prune(study, trial))
