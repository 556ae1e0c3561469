"""The robust pick's steps in their order, for any backend (`autolr.robust` has its rules).

At the end of a sweep (`RobustPick.settle`): step back from the edge of divergence,
confirm the leader on extra seeds (and the next one, if it fell behind), then train the
recommended config on held-out seeds for the value the user is told. A backend says
where its records are and how the extra runs are kept: the Optuna backend as finished
trials of its study (`backends.optuna.ConfirmLeader`), the Ray backend in a log beside
its experiments, each run a task on the cluster, and the step back as a Tune trial
(`backends.ray.RayPick`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from autolr.errors import SweepStopped
from autolr.result import TrialRecord, TuneResult
from autolr.robust import (
    HOLDOUT_SEEDS,
    MIN_SPEND_RATIO,
    Confirmation,
    after,
    leader_to_confirm,
    run_seeds,
    step_back,
)
from autolr.space import TrialConfig
from autolr.sweep import Sweep
from autolr.training import DIVERGED

logger = logging.getLogger("autolr")
SEED_VALUES, HOLDOUT_VALUES = "seed_values", "holdout_values"  # the record fields they fill


class RobustPick:
    """The pick's steps; `where` is the backend's handle on the sweep (an Optuna study,
    say), handed to the methods a backend provides: `records`, `store` and, for the
    step back, `train_again`; and where the extra runs train (`seed_runs`: by
    default `sweep.run` in this process, one after the other)."""

    def __init__(self, sweep: Sweep, min_spend_ratio: float = MIN_SPEND_RATIO) -> None:
        self.sweep, self.min_spend_ratio = sweep, min_spend_ratio

    # -- what a backend provides ----------------------------------------------------------
    def records(self, where: Any) -> list[TrialRecord]:
        raise NotImplementedError

    def store(self, where: Any, record: TrialRecord, runs: Confirmation, field: str,
              diverged: str) -> None:
        """Keep the extra runs of `record`'s config (`field`: SEED_VALUES or
        HOLDOUT_VALUES; `diverged`: the reason given when one diverged) for good."""
        raise NotImplementedError

    def may_step_back(self, where: Any) -> bool:
        """Whether the backend can step back now: once per sweep (False: it cannot)."""
        return False

    def train_again(self, where: Any, record: TrialRecord, params: dict[str, Any]) -> None:
        """The step back: train `params` (`record`'s config at a lower learning rate) as
        one more trial of the sweep, unpruned."""
        raise NotImplementedError

    # -- the steps ------------------------------------------------------------------------
    def settle(self, where: Any, rounds: int = 3) -> None:
        """At the end of a sweep: if the best run is passed over for sitting on the edge
        of divergence (or for a setback), train its config once more at a lower learning
        rate (`robust.step_back`); confirm the leader, and the next one if it fell behind
        (and step back then, if the extra seeds found the edge); then train the
        recommended config on the held-out seeds, for the value told (one that diverges
        there is out: the next leader is confirmed and held out in its place). An error
        in a run (the model's own: out of memory, say) ends the pick, not the sweep
        (`stopped_by`): the sweep's trials are all there, its best then unconfirmed."""
        with stopped_by(self):
            self._settle(where, rounds)

    def _settle(self, where: Any, rounds: int) -> None:
        self.step_back(where)
        self.confirm_rounds(where, rounds)
        if self.step_back(where):  # once per sweep at most
            self.confirm_rounds(where, rounds)
        for _ in range(rounds):  # a pick that diverges on a held-out seed is out: the
            if not self.hold_out(where):  # next is confirmed on extra seeds, then held out
                return
            self.confirm_rounds(where, rounds)

    def confirm_rounds(self, where: Any, rounds: int) -> None:
        for _ in range(rounds):
            if not self.confirm_leader(where, 1):
                return

    def step_back(self, where: Any) -> bool:
        """Train the config of a best run passed over for sitting on the edge of
        divergence (or for a setback) once more, at a lower learning rate
        (`robust.step_back`); False when there is nothing to do."""
        records, sweep = self.records(where), self.sweep
        if not (self.spent_enough(records) and self.may_step_back(where)):
            return False
        found = step_back(records, sweep.direction)
        if found is None:
            return False
        best, lr = found
        params = sweep.space.params_for(dataclasses.replace(best.config, lr=lr), sweep.n_train)
        if params is None:  # below the searched range
            return False
        logger.info("robust pick: trial %d is passed over (on the edge of divergence, or "
                    "it nearly diverged); training its config again at lr %.3g",
                    best.number, lr)
        self.train_again(where, best, params)
        return True

    def confirm_leader(self, where: Any, min_complete: int) -> bool:
        """Re-train the leader on `sweep.confirm_seeds` more seeds once `min_complete`
        trials completed, if it stands on one seed; False when there is nothing to do."""
        records, sweep = self.records(where), self.sweep
        if not self.spent_enough(records):
            return False
        leader = leader_to_confirm(records, sweep.direction, min_complete)
        if leader is None:
            return False
        logger.info("robust pick: re-training trial %d (%s %.4g) on %d more seeds",
                    leader.number, sweep.metric, leader.final_value, sweep.confirm_seeds)
        checked = after(leader.final_value,
                        self.seed_runs(leader.config, range(1, sweep.confirm_seeds + 1)))
        self.store(where, leader, checked, SEED_VALUES,
                   f"{checked.failure('extra')}, after finishing at "
                   f"{leader.final_value:.4g} on the sweep's seed: too close to the edge")
        return True

    def hold_out(self, where: Any) -> bool:
        """Train the recommended config, once the robust pick chose it, on HOLDOUT_SEEDS
        more seeds; False when there is nothing (more) to do."""
        best = TuneResult(self.records(where), direction=self.sweep.direction).best_record
        if best is None or not best.seed_values or best.holdout_values:
            return False
        logger.info("robust pick: training trial %d on %d held-out seed(s), for the value "
                    "reported", best.number, HOLDOUT_SEEDS)
        first = self.sweep.confirm_seeds + 1  # offsets the pick never trained on
        held = self.seed_runs(best.config, range(first, first + HOLDOUT_SEEDS))
        self.store(where, best, held, HOLDOUT_VALUES,
                   f"{held.failure('held-out')}, after a seed mean of "
                   f"{best.final_value:.4g}: too close to the edge")
        return held.diverged_on is not None

    def seed_runs(self, config: TrialConfig, offsets: range) -> Confirmation:
        """`config` trained unpruned on each seed offset (`robust.run_seeds`: one after
        the other, up to the first that diverges); a backend may run them side by side."""
        return run_seeds(self.sweep.run, config, offsets)

    def spent_enough(self, records: list[TrialRecord]) -> bool:
        """Whether the sweep has spent enough for the robust pick (on a tiny budget the
        extra runs buy more as search)."""
        spent = sum(r.epochs_run + r.extra_epochs for r in records)
        return bool(self.sweep.confirm_seeds) and (
            spent >= self.min_spend_ratio * self.sweep.confirm_seeds * self.sweep.epochs)


@contextlib.contextmanager
def stopped_by(pick: RobustPick) -> Iterator[None]:
    """Around the pick's steps: an error from a run ends the pick with a warning, never the
    sweep; with no storage, its trials lived only in the call that raised (helper-40: a
    model that ran out of memory in the pick's first run lost all 6 finished trials).
    A stop (`SweepStopped`, Ctrl-C) goes on up: the same call resumes it."""
    try:
        yield
    except SweepStopped:
        raise
    except Exception as error:
        logger.warning("the robust pick stopped: one of its runs raised %s: %s. Every trial "
                       "of the sweep is kept; the best is recommended on the runs it has.",
                       type(error).__name__, error, exc_info=True)


def with_runs(record: TrialRecord, field: str, values: tuple[float, ...], epochs: float,
              seconds: float, state: str | None = None,
              reason: str | None = None) -> TrialRecord:
    """`record` with the pick's extra runs of its config folded in: their values into
    `field`, their cost, and their verdict (`state`, `reason`) if they diverged. A record
    that did not complete is left as it is."""
    if record.state != "complete":
        return record
    return dataclasses.replace(
        record, **{field: tuple(values)}, extra_epochs=record.extra_epochs + epochs,
        extra_seconds=record.extra_seconds + seconds, state=state or record.state,
        reason=reason if state else record.reason)


def verdict(runs: Confirmation, diverged: str) -> tuple[str | None, str | None]:
    """(state, reason) for a record whose extra runs are `runs`: (None, None) if none
    diverged."""
    return (DIVERGED, diverged) if runs.diverged_on is not None else (None, None)
