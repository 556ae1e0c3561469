"""What the facade hands a backend: everything about a sweep except how to run it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autolr.space import SearchSpace, TrialConfig
from autolr.training import TrialOutcome


@dataclass(frozen=True)
class Sweep:
    """A validated sweep. `run(config, reporter)` trains one config with the one loop."""

    space: SearchSpace
    # run(config, reporter, seed_offset=0, epochs=None): the sweep's seed + seed_offset
    # seeds the run; epochs (budgeted rungs) shortens it, the schedule compressed
    run: Callable[..., TrialOutcome]
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
    # the robust pick (autolr.robust): extra seeds for the leader at the end of the sweep,
    # and also during it from `confirm_after` completed trials on (None: only at the end)
    confirm_seeds: int = 0
    confirm_after: int | None = None
    # budgeted rungs (autolr.budgeted): the epochs of each rung, each training the whole
    # schedule; `run` then takes epochs=. None: each trial is one run, pruned as it goes.
    rungs: tuple[int, ...] | None = None

    def is_baseline(self, config: TrialConfig) -> bool:
        """Whether `config` is the default config (the trial a report compares against)."""
        return self.baseline is not None and config == self.space.config_from_params(
            self.baseline, self.n_train)
