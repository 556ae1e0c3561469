"""autolr's schedule-aware pruners on Ray: the decisions the Optuna backend makes, made
on Tune's driver from the trials' reports.

Tune's schedulers (ASHA, the median stopping rule) compare trials at the same step, so a
one-cycle or cosine trial at its peak learning rate is cut for being earlier in its
schedule. autolr's pruners (`autolr.pruning.DecayAwareMedianPruner`,
`autolr.checked_halving.CheckedHalvingPruner`) read each trial's schedule, but they read
it from an Optuna study. `SweepPruning` keeps every trial's config and curve as the
reports come in and shows the pruner an Optuna-shaped view of them, so the same pruner
object decides: with one trial at a time, a Ray sweep prunes exactly the trials an Optuna
sweep of the same seed prunes, at the same evaluations. No Ray import here: the Ray
backend's scheduler (`autolr.backends.ray`) hands the reports over.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autolr.training import COMPLETE

RUNNING = "running"  # the state of a record its trial is still adding to
#: a trial's state as Optuna's pruners read it; anything else that ended was stopped
_STATES = {COMPLETE: TrialState.COMPLETE, RUNNING: TrialState.RUNNING}


class _SweepView:
    """The part of an `optuna.Study` autolr's pruners read: the direction and the trials."""

    def __init__(self, direction: StudyDirection) -> None:
        self.direction = direction
        self.trials: dict[int, FrozenTrial] = {}

    def get_trials(self, deepcopy: bool = False,
                   states: Iterable[TrialState] | None = None) -> list[FrozenTrial]:
        wanted = None if states is None else tuple(states)
        return [self.trials[n] for n in sorted(self.trials)
                if wanted is None or self.trials[n].state in wanted]


class SweepPruning:
    """A schedule-aware pruner's decisions for a sweep whose trials arrive as records:
    dicts with the trial's `number`, `params` (`TrialConfig.to_dict`), `values` so far,
    `state` ("running" while it trains) and `is_baseline` (the default config's trial,
    never cut by the pruner: `AutoLRPruner` spares it too). `cuts` says why each cut
    trial was cut; with a `log` path, each cut is also appended there as it is made
    (`read_cuts`), so that the reason outlives the driver."""

    def __init__(self, pruner: optuna.pruners.BasePruner, mode: str,
                 log: str | Path | None = None) -> None:
        self.pruner, self.log = pruner, log
        self.view = _SweepView(StudyDirection.MINIMIZE if mode == "min"
                               else StudyDirection.MAXIMIZE)

    @property
    def cuts(self) -> dict[int, str]:
        return getattr(self.pruner, "cuts", {})

    def seed(self, records: Iterable[Any]) -> None:
        """Trials an earlier experiment of the sweep finished (`TrialRecord`s): the
        references a resumed or extended sweep judges its new trials against."""
        for record in records:
            self.update({"number": record.number, "params": record.params,
                         "values": list(record.values), "state": record.state})

    def report(self, record: Mapping[str, Any]) -> bool:
        """Take a trial's latest report; True when the pruner stops it here."""
        trial = self.update(record)
        if (trial.state != TrialState.RUNNING or record.get("is_baseline")  # as AutoLRPruner
                or not self.pruner.prune(self.view, trial)):
            return False
        if self.log is not None and trial.number in self.cuts:
            with open(self.log, "a", encoding="utf-8") as log:  # a line of its own, even
                # after half a line a killed driver left (read_cuts skips that one)
                log.write("\n" + json.dumps({"number": trial.number,
                                             "reason": self.cuts[trial.number]}))
        return True

    def stopped(self, number: int) -> None:
        """The trial ended without completing (stopped, diverged or failed): it stays a
        reference for the evaluations it reached, as a pruned Optuna trial does."""
        trial = self.view.trials.get(number)
        if trial is not None and trial.state == TrialState.RUNNING:
            self.view.trials[number] = _frozen(number, TrialState.PRUNED, trial.user_attrs,
                                               trial.intermediate_values)

    def update(self, record: Mapping[str, Any]) -> FrozenTrial:
        number, values = record["number"], dict(enumerate(record["values"]))
        state = _STATES.get(record["state"], TrialState.PRUNED)
        attrs = {"config": record["params"]} if record.get("params") else {}
        trial = _frozen(number, state, attrs, values)
        self.view.trials[number] = trial
        return trial


def read_cuts(log: str | Path) -> dict[int, str]:
    """The reasons `SweepPruning` logged, by trial number ({} before any cut). A line cut
    short by a killed driver is skipped."""
    cuts: dict[int, str] = {}
    with contextlib.suppress(FileNotFoundError), open(log, encoding="utf-8") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                cuts[int(entry["number"])] = str(entry["reason"])
    return cuts


def _frozen(number: int, state: TrialState, user_attrs: dict, values: dict[int, float],
            ) -> FrozenTrial:
    """An Optuna trial as the pruners read it; the number doubles as its id (the
    pruners' cache key), since numbers go on through a sweep's experiments."""
    final = values[max(values)] if values else None
    if state == TrialState.COMPLETE and not (final is not None and math.isfinite(final)):
        state = TrialState.PRUNED  # ended on a non-finite value: diverged
    return FrozenTrial(number=number, state=state,
                       value=final if state == TrialState.COMPLETE else None,
                       datetime_start=None, datetime_complete=None, params={},
                       distributions={}, user_attrs=dict(user_attrs), system_attrs={},
                       intermediate_values=values, trial_id=number)
