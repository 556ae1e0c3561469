"""A space-filling start for the search: the first trials cover the space on purpose.

TPE samples its first `n_startup_trials` at random. With a handful of trials, random
draws leave whole decades of learning rate untried and repeat a schedule family while
another is never seen, so a small sweep's result is mostly luck. Here those start-up
trials come from a design instead: a Latin hypercube over the log learning rate (one
trial in each of n equal slices of the range), the warmup and a searched weight decay,
and balanced, independently shuffled choices of schedule family, batch size and
optimizer (each value as often as n allows). The order matters too: the first few
trials are already far apart, so a sweep cut short has still looked around. A family's
own parameters are random draws seeded by the trial's place.

`DesignedStartSampler` wraps a sampler (TPE): a planned trial whose place falls in the
design takes its values from it; everything else is the wrapped sampler's. A trial's
place is its number less the trials before it that are off the plan (`OFF_PLAN`: a
re-run of an interrupted trial, the robust pick's runs): trial numbers are global to a
study, so worker processes and Ray's searcher, each with its own sampler, walk through
the same design, and a re-run queued on resume takes no planned trial's place.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler

from autolr.delegating import DelegatingSampler
from autolr.space import SearchSpace

# user attributes of trials created off the plan, each set in the write that creates the
# trial (so a trial's place never changes once given): a re-run of an interrupted trial
# (`autolr.storage.recover`) and the robust pick's runs (`backends.optuna.ConfirmLeader`)
RERUN_OF = "retry_of"
OFF_PLAN = (RERUN_OF, "confirms", "holds_out", "steps_back")


def startup_design(space: SearchSpace, n_train: int, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` partial Optuna params (the names `SearchSpace.sample` asks for), space-filling."""
    if n <= 0:
        return []
    rng = np.random.default_rng(seed)
    columns: dict[str, list[Any]] = {
        "lr": _log_slices(*space.lr, n, rng),
        "schedule": _balanced(space.schedules, n, rng),
        "batch_size": _balanced(space.usable_batch_sizes(n_train), n, rng),
        "optimizer": _balanced(space.optimizers, n, rng),
    }
    low, high = space.warmup
    if high > low:
        step = space.warmup_dim().step
        columns["warmup_fraction"] = [_on_grid(low, step, v) for v in _slices(low, high, n, rng)]
    if isinstance(space.weight_decay, tuple):
        columns["weight_decay"] = _log_slices(*space.weight_decay, n, rng)
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


class DesignedStartSampler(DelegatingSampler):
    """`base`, except that the trial at place k of the plan (k < len(design);
    `planned_place`) takes the values of design[k] (the wrapped sampler fills in any
    parameter the design leaves out: all of them for {}). A re-run of an interrupted
    trial has that trial's place: its own queued values win, the design fills in any it
    lacks (one interrupted while it sampled)."""

    def __init__(self, base: BaseSampler, design: list[dict[str, Any]], seed: int = 0) -> None:
        super().__init__(base)
        self.design, self.seed = design, seed

    def _place(self, study: optuna.Study, trial: Any) -> int | None:
        """The trial's place in the design; None past it or off the plan."""
        place = planned_place(study.get_trials(deepcopy=False), trial)
        return place if place is not None and place < len(self.design) else None

    def _point(self, study: optuna.Study, trial: Any) -> dict[str, Any] | None:
        place = self._place(study, trial)
        return None if place is None else self.design[place]

    def sample_relative(self, study: optuna.Study, trial: Any,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if self._point(study, trial) is not None:  # relative values would override it
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: Any, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        place = self._place(study, trial)
        point = None if place is None else self.design[place]
        if point is not None and param_name in point:
            value = point[param_name]
            try:
                if param_distribution._contains(param_distribution.to_internal_repr(value)):
                    return value
            except (ValueError, TypeError):  # a space changed on resume: not in the design
                pass
        if point:  # a family's own parameter: drawn from the place, not from whichever
            # worker's sampler runs the trial, so `n_jobs` runs repeat the design whole
            place_seed = zlib.crc32(f"{self.seed}:{place}:{param_name}".encode())
            return optuna.samplers.RandomSampler(seed=place_seed).sample_independent(
                study, trial, param_name, param_distribution)
        return self.base.sample_independent(study, trial, param_name, param_distribution)


def planned_place(trials: Sequence[Any], trial: Any) -> int | None:
    """`trial`'s place in the plan: its number less the trials before it off the plan (a
    re-run: the place of the trial it re-runs); None for the robust pick's runs."""
    by_number = {t.number: t for t in trials}
    while RERUN_OF in trial.user_attrs and trial.user_attrs[RERUN_OF] in by_number:
        trial = by_number[trial.user_attrs[RERUN_OF]]
    if _off_plan(trial):
        return None
    return trial.number - sum(1 for t in trials if t.number < trial.number and _off_plan(t))


def _off_plan(trial: Any) -> bool:
    return any(key in trial.user_attrs for key in OFF_PLAN)


def _slices(low: float, high: float, n: int, rng: np.random.Generator) -> list[float]:
    """One uniform draw in each of n equal slices of [low, high] (a Latin hypercube
    column), visited in an order whose every prefix is spread out too: slice ranks of a
    golden-ratio sequence, so that a sweep stopped after 2 or 3 trials has still tried
    far-apart values."""
    golden = (math.sqrt(5) - 1) / 2
    start = rng.random()
    sequence = [(start + i * golden) % 1.0 for i in range(n)]
    rank = {i: r for r, i in enumerate(sorted(range(n), key=sequence.__getitem__))}
    return [low + (high - low) * (rank[i] + rng.random()) / n for i in range(n)]


def _log_slices(low: float, high: float, n: int, rng: np.random.Generator) -> list[float]:
    if low == high:
        return [float(low)] * n
    return [min(high, max(low, math.exp(v)))
            for v in _slices(math.log(low), math.log(high), n, rng)]


def _balanced(choices: tuple, n: int, rng: np.random.Generator) -> list[Any]:
    """Back-to-back shuffles of the choices: each appears floor(n / k) or ceil(n / k)
    times, and the first k trials (as each next block of k) see k different ones."""
    values: list[Any] = []
    while len(values) < n:
        values.extend(choices[i] for i in rng.permutation(len(choices)))
    return values[:n]


def _on_grid(low: float, step: float | None, value: float) -> float:
    # SearchSpace samples the warmup on a grid (`SearchSpace.warmup_dim`); a value off its
    # grid would not be used (DesignedStartSampler checks), only wasted
    if step is None:  # a range no float step divides is searched whole
        return round(value, 9)
    return round(low + round((value - low) / step) * step, 9)
