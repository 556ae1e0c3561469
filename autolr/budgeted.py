"""Budgeted rungs: multi-fidelity that trains the whole schedule at every budget.

Successive halving usually judges a trial part-way through its run, where a one-cycle or
cosine trial is still at a high learning rate and looks worse than a constant one. Here
each rung instead trains the config from scratch with its *whole* schedule (warmup,
decay and all) compressed into the rung's epochs ("budgeted training"), so trials are
compared at the same point of their own schedules: the end. A trial runs the rungs in
order (by default 1/9, 1/3 and all of the epochs); after each rung but the last, Optuna's
SuccessiveHalvingPruner (reduction factor 3) keeps it only if it is in the best third of
the trials that reached that rung. A config that reaches the top has cost 1.44x a full
run; the others stop after 1/9 or 1/3 of one.

It needs short runs that rank configs as full runs do: where the best config wants a
low learning rate and every step of its run, a short rung ranks it mid-field and cuts it
(the diabetes benchmark: benchmarks/RESULTS.md), so it is an option, not the default.

>>> rung_epochs(20)
(2, 7, 20)
>>> rung_epochs(3)
(1, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable

from autolr.space import TrialConfig
from autolr.training import COMPLETE, PRUNED, Reporter, TrialOutcome

REDUCTION_FACTOR = 3  # keep a third at each rung
N_RUNGS = 3


def rung_epochs(epochs: int, reduction_factor: int = REDUCTION_FACTOR,
                n_rungs: int = N_RUNGS) -> tuple[int, ...]:
    """The epochs of each rung, smallest first, ending with the full `epochs`."""
    return tuple(sorted({max(1, round(epochs / reduction_factor**k)) for k in range(n_rungs)}))


def rung_step(index: int, reduction_factor: int = REDUCTION_FACTOR) -> int:
    """The step rung `index` reports at: SuccessiveHalvingPruner(min_resource=1) judges
    its rung k at step reduction_factor**k."""
    return reduction_factor**index


def run_budgeted(run: Callable[..., TrialOutcome], config: TrialConfig,
                 reporter: Reporter | None, rungs: tuple[int, ...]) -> TrialOutcome:
    """Train `config` once per rung (`run(config, None, epochs=e)`, not pruned inside),
    reporting each rung's final value to `reporter` until it says stop. The outcome keeps
    the last run's curves and the cost of every run; `rung_epochs` says how long that
    run was."""
    spent_epochs, spent_steps, spent_seconds = 0.0, 0, 0.0
    outcome = TrialOutcome(COMPLETE)
    for index, epochs in enumerate(rungs):
        outcome = run(config, None, epochs=epochs)
        run_steps = outcome.steps_run
        spent_epochs += outcome.epochs_run
        spent_steps += run_steps
        spent_seconds += outcome.seconds
        outcome.rung_epochs, outcome.rung_steps = epochs, run_steps
        outcome.epochs_run, outcome.steps_run = round(spent_epochs, 4), spent_steps
        outcome.seconds = spent_seconds
        if outcome.state != COMPLETE:  # diverged: tell the sampler, as the plain loop does
            if reporter is not None:
                reporter.report(rung_step(index), {"value": math.nan})
            return outcome
        if index == len(rungs) - 1 or reporter is None:
            continue
        value = outcome.values[-1]
        if reporter.report(rung_step(index), {"value": value,
                                              "val_loss": outcome.val_losses[-1]}):
            outcome.state = PRUNED
            outcome.reason = (f"behind the others after its whole schedule in {epochs} "
                              f"epoch{'s' if epochs > 1 else ''} (budgeted rung {index + 1} "
                              f"of {len(rungs)})")
            return outcome
    return outcome
