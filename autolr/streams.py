"""TPE's random stream when other processes run trials of the same study alongside.

A sampler's stream is seeded once per process (the sweep's seed, moved on by the worker's
index and the trials a resume found): two `tune` calls started together on one storage,
each with the same seed, drew the same configs, trial for trial (2 of 24 trials were
copies of another). `SharedStreams` keeps that one stream while the process runs the
study alone, so a sweep is reproducible from its seed; once a trial of another process
has started since it began, each trial draws from a stream of its own, seeded by the
sweep's seed and the trial's number (unique in the study), with the constant liar on
(a running trial counts as bad), as `n_jobs` workers run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import optuna
from optuna.trial import TrialState

from autolr.delegating import DelegatingSampler
from autolr.storage import owner

#: how a trial's own stream is seeded from the sweep's seed and its number (primes apart
#: from make_sampler's, so no trial's stream is a process's)
_SEED_STEP, _NUMBER_STEP = 104_729, 15_485_863


class SharedStreams(DelegatingSampler):
    """`make(seed, liar)` -> a sampler; the one made with `seed` (liar False) while this
    process runs the study alone, else one made for each trial (see the module's doc):
    `base` is the current trial's."""

    def __init__(self, make: Callable[[int, bool], optuna.samplers.BaseSampler],
                 seed: int) -> None:
        self.make, self.seed = make, seed
        self.alone = make(seed, False)
        super().__init__(self.alone)
        self.since = datetime.now()  # what this process started: trials after it are others'

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        self.base = self.alone
        if _alongside(study, self.since):
            own = (self.seed * _SEED_STEP + trial.number * _NUMBER_STEP) % 2**32
            self.base = self.make(own, True)
        self.base.before_trial(study, trial)

    def reseed_rng(self) -> None:
        self.alone.reseed_rng()


def _alongside(study: optuna.Study, since: datetime) -> bool:
    """Whether another process started a trial of `study` since `since` (trials name their
    process: `autolr.storage.owner`; an older call's trials started before)."""
    me = owner()
    for trial in study.get_trials(deepcopy=False, states=_STARTED):
        claimed = trial.user_attrs.get("owner")
        if (claimed and claimed != me and trial.datetime_start is not None
                and trial.datetime_start >= since):
            return True
    return False


_STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
