"""Successive halving that first checks, on its own sweep, that its rungs would have kept
the sweep's best finished trials; the decay-aware median rule alone where they would not.

Every multi-fidelity pruner bets that a trial's value early in its run ranks it as its
final value will. Over the benchmark grids' complete runs that bet holds on digits and
MNIST-1D (of the best 5% of runs, 86% and 91% are in the best third of all runs at a
ninth of the run) and fails on diabetes (20%: its best configs, at low learning rates,
start slowly). Live, successive halving did better on digits (within the noise) and
lost diabetes beyond it (see benchmarks/RESULTS.md), so this pruner checks the bet on
the finished trials of its sweep before it halves. It is the default pruner
(`pruner="auto"`): over 60 live sweeps per benchmark task it was never behind the median
rule alone beyond the noise, and ahead of it on MNIST-1D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autolr.pruning import DecayAwareMedianPruner

#: where the first rung may go, as fractions of the run: halving that starts later than a
#: third of the run saves little that the median rule (from a quarter on) does not.
RUNG_FRACTIONS = (1 / 9, 1 / 4, 1 / 3)


class CheckedHalvingPruner(DecayAwareMedianPruner):
    """The decay-aware median rule, plus successive halving on the earliest ladder of
    rungs that would have kept the sweep's best finished trials.

    A ladder starts at one of `rung_fractions` of the run (`RUNG_FRACTIONS` unless told;
    an earlier one, 1/16, was measured and not adopted: benchmarks/RESULTS.md) and climbs by
    `reduction_factor`. At a rung a trial is cut unless it is among the best
    1/`reduction_factor` of the trials that reached the rung with at least as much decay
    ahead (as in the median rule, so a one-cycle trial at its peak is not ranked against
    constant ones), and never where the median rule does not judge: in warmup, or while
    its learning rate will still rise. A ladder is used once `n_startup_trials` trials
    have completed and the best `n_checked` of them would have passed each of its rungs;
    with no such ladder, this is the median rule.
    """

    def __init__(self, n_evals: int, *, n_checked: int = 2, reduction_factor: int = 4,
                 require_judged: bool = False,
                 rung_fractions: Sequence[float] = RUNG_FRACTIONS, **median_options) -> None:
        super().__init__(n_evals, **median_options)
        if not rung_fractions or not all(0 < f < 1 for f in rung_fractions):
            raise ValueError(f"rung_fractions must be fractions of the run in (0, 1), but got "
                             f"{rung_fractions=}.")
        self.rung_fractions = tuple(sorted(rung_fractions))
        # True: a rung where a checked trial was not judged (its warmup or ramp, too few
        # trials to compare with) fails the check instead of passing it
        self.require_judged = require_judged
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, but got {reduction_factor=}.")
        if n_checked < 1:
            raise ValueError(f"n_checked must be >= 1, but got {n_checked=}.")
        self.n_checked, self.reduction_factor = n_checked, reduction_factor
        self._candidates = {s for f in self.rung_fractions for s in self.ladder(f)}

    def ladder(self, fraction: float) -> list[int]:
        """The rungs (0-based evaluation steps) of the ladder starting at `fraction`."""
        evals, steps = max(1, round(self.n_evals * fraction)), []
        while evals < self.n_evals:
            steps.append(evals - 1)
            evals *= self.reduction_factor
        return steps

    def rung_steps(self, study: optuna.Study,
                   everyone: Sequence[FrozenTrial] | None = None) -> list[int]:
        """The rungs halving judges at now: the earliest ladder that the best finished
        trials would have passed; empty while there is none. `everyone`: the study's
        trials, when the caller has read them already."""
        everyone = study.get_trials(deepcopy=False) if everyone is None else everyone
        last = self.n_evals - 1
        finished = [t for t in everyone if t.state == TrialState.COMPLETE
                    and _finite(t.intermediate_values.get(last))]
        if len(finished) < self.n_startup_trials:
            return []
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        best = sorted(finished, key=lambda t: sign * t.intermediate_values[last])
        for fraction in self.rung_fractions:
            steps = self.ladder(fraction)
            if all(self.passes(t, step, everyone, sign)
                   for t in best[:self.n_checked] for step in steps):
                return steps
        return []

    def passes(self, trial: FrozenTrial, step: int, everyone: Sequence[FrozenTrial],
               sign: float) -> bool:
        """Whether `trial` is among the best 1/reduction_factor at `step` of the trials
        with as much decay ahead; True where it is not judged there."""
        own = self.profile(trial)
        mine = trial.intermediate_values.get(step)
        if own is None or mine is None or not own.judged[step]:
            return not self.require_judged
        others = (other for other in everyone if other.number != trial.number)
        reached = [sign * v if math.isfinite(v) else math.inf
                   for v in self.comparable(others, own, step)]
        if len(reached) < self.min_reference:
            return not self.require_judged
        mine = sign * mine if math.isfinite(mine) else math.inf
        ranked = sorted([*reached, mine])
        return mine <= ranked[max(1, len(ranked) // self.reduction_factor) - 1]

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if super().prune(study, trial):
            return True
        step = trial.last_step
        if step not in self._candidates:  # the check below reads every trial: only at rungs
            return False
        sign = 1.0 if study.direction == StudyDirection.MINIMIZE else -1.0
        everyone = study.get_trials(deepcopy=False)
        if (step in self.rung_steps(study, everyone)
                and not self.passes(trial, step, everyone, sign)):
            self.cuts[trial.number] = (f"outside the best 1/{self.reduction_factor} at the "
                                       f"rung at evaluation {step + 1} (checked halving)")
            return True
        return False


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
