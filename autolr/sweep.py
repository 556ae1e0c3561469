"""What the facade hands a backend: everything about a sweep except how to run it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autolr.space import SearchSpace, TrialConfig
from autolr.training import Reporter, TrialOutcome


@dataclass(frozen=True)
class Sweep:
    """A validated sweep. `run(config, reporter)` trains one config with the one loop."""

    space: SearchSpace
    run: Callable[[TrialConfig, Reporter], TrialOutcome]
    n_train: int  # train rows, which cap the batch sizes
    n_evals: int  # evaluations in a full trial: the pruners' unit of budget
    n_trials: int
    direction: str
    metric: str
    epochs: int
    seed: int = 0
    timeout: float | None = None
    baseline: dict | None = None  # Optuna params of the default config, when in the space
    # torch threads per trial: 1 unless told otherwise. Small models gain nothing from
    # more, and on a busy machine oversubscribed threads were measured 24-60x slower.
    torch_threads: int = 1
