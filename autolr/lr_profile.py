"""Where a trial stands in its own schedule at each evaluation: what the pruners need to
judge a trial for being worse, not for being earlier in its schedule.

A one-cycle or cosine trial is still at a high learning rate mid-run, so at the same step
it looks worse than a constant one that will never improve further. For each of a
trial's `n_evals` evaluations (evenly spaced over training) this says:

- `multiplier`: the schedule's factor there (1 = the base learning rate);
- `ahead`: how far the factor will still fall before the end (the decay still to come,
  which is what makes a trial improve late): 0 for constant, ~1 for one-cycle mid-run;
- `judged`: False during warmup and while the learning rate will still rise again
  (warmup, one-cycle's ramp, a cyclic or restarting schedule before its last cycle, its
  peaks included): a trial is never pruned there for its value.

>>> from autolr.space import TrialConfig
>>> profile = EvalProfile.of(TrialConfig(0.1, "cosine", warmup_fraction=0.2), 10)
>>> profile.judged[:3], round(profile.ahead[4], 2), profile.ahead[-1]
((False, False, True), 0.71, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autolr.space import TrialConfig

_STEPS_PER_EVAL = 8  # schedule resolution: enough to see a step or a restart between evals


def will_rise(factors: Sequence[float]) -> list[bool]:
    """For each step, whether the factor rises at some later step: a trial is not judged
    there (at a cyclic schedule's first peak the next peaks are as high, and the lr will
    rise to them again)."""
    rises, later = [False] * len(factors), False
    for step in range(len(factors) - 2, -1, -1):
        later = later or factors[step + 1] > factors[step] * (1 + 1e-9)
        rises[step] = later
    return rises


@dataclass(frozen=True)
class EvalProfile:
    multiplier: tuple[float, ...]
    ahead: tuple[float, ...]
    judged: tuple[bool, ...]

    @classmethod
    def of(cls, config: TrialConfig, n_evals: int) -> EvalProfile:
        total = n_evals * _STEPS_PER_EVAL
        factors = config.multipliers(total)
        warmup = config.warmup_steps(total)
        rises = will_rise(factors)
        multiplier, ahead, judged = [], [], []
        for evaluation in range(n_evals):
            at = (evaluation + 1) * _STEPS_PER_EVAL - 1
            later = factors[at:]
            multiplier.append(factors[at])
            ahead.append(max(0.0, factors[at] - min(later)))
            judged.append(at >= warmup and not rises[at])
        return cls(tuple(multiplier), tuple(ahead), tuple(judged))
