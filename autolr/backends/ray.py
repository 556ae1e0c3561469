"""Run a sweep with Ray Tune: the same space, loop and pruning rules on a Ray cluster.

Tune's `Tuner` drives it: Tune's `OptunaSearch` (TPE, seeded) samples the define-by-run
`SearchSpace.sample`, autolr's schedule-aware pruner stops trials that fall behind (as a
Tune scheduler on the driver, `autolr.backends.ray_pruner`: the Optuna backend's
decisions), a Tune `Stopper` applies autolr's stall rule, and the one training loop stops
a diverged trial at once.
Every report carries the trial's record so far, so a trial stopped from outside still comes
back as a whole `TrialRecord`. The sweep (model, data) goes to the object store once and
actors are reused: per-trial overhead stays small. Before Tune starts, every node with room
for a trial must load it (`ray_nodes.check_nodes_load`).

Then the robust pick (`autolr.pick`, `ray_pick.RayPick`) re-trains the leader on extra
seeds and the recommended config on a held-out seed, each as a Ray task with a trial's
resources: the value told is the one the user will get, as with the Optuna backend. Its
step back is one more Tune trial, in an experiment of its own (`_Run.step_back`).

Persistence: the experiment lives in `storage/study_name` (Tune's storage_path and name).
Calling again resumes it with `Tuner.restore` (the searcher's state comes back with it);
asking for more trials than it holds starts `study_name.2` (then `.3`...) from the last
one's searcher state, and the result joins them all. The pick's runs are logged, as they
finish, in `storage/study_name.pick.jsonl`: a resumed or extended sweep folds them back in
and does not train them again. The sweep's settings (`Sweep.settings`) are kept in
`storage/study_name.settings.json`: a resume with other ones is refused before connecting.
The result so far is saved as `storage/study_name.autolr.json` after each trial (and in
full at the end): an interrupted sweep can be read, shown and reported on without Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from autolr.backends.ray_nodes import LOAD_FIX, check_nodes_load, last_line, load
from autolr.backends.ray_pick import RayPick
from autolr.backends.ray_pruner import RUNNING, SweepPruning, read_cuts
from autolr.data import steps_per_epoch
from autolr.errors import AutoLRError, SweepInterrupted
from autolr.lr_profile import EvalProfile
from autolr.output_file import check_folder
from autolr.pruning import is_stall, stop_reason
from autolr.range_test import RangeTest
from autolr.result import TrialRecord, TuneResult
from autolr.space import TrialConfig
from autolr.storage import dead, owner, sigterm_as_interrupt
from autolr.sweep import Sweep
from autolr.training import COMPLETE, FAILED, PRUNED, UNJUDGED, TrialOutcome

logger = logging.getLogger("autolr")

try:  # an optional extra: this module imports without it, and run_ray says how to get it
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    _MISSING: ImportError | None = None
    _Stopper, _Callback = tune.Stopper, tune.Callback
except ImportError as error:
    tune, _MISSING = None, error
    OptunaSearch = _Stopper = _Callback = FIFOScheduler = object
    ASHAScheduler = MedianStoppingRule = object

SCHEDULERS = ("auto", "checked_halving", "decay_median", "median", "successive_halving",
              "hyperband", "none")
#: autolr's own pruners, run on the driver as the Optuna backend runs them
SCHEDULE_AWARE = ("auto", "checked_halving", "decay_median")
DEFAULT_STUDY = "autolr"
CONNECT_TIMEOUT = 10.0  # seconds for a cluster's head to accept a connection
_PAYLOAD = "autolr"  # the result key holding the trial's record so far, as JSON
_NUMBER = "autolr_number"  # the config key holding the Optuna trial number
_STEPS_BACK = "autolr_steps_back"  # ... and for the pick's step back, the trial it left
#: what a trial's record holds while it runs (`_train`); the pick adds to it at the end
_REPORTED = ("number", "state", "params", "reason", "values", "train_losses", "val_losses",
             "epochs_run", "steps_run", "seconds", "is_baseline", "node", "steps_back_from")


def run_ray(sweep: Sweep, *, address: str | None = None, storage: Any = None,
            study_name: str | None = None, pruner: Any = "auto",
            resources_per_trial: Mapping[str, float] | None = None,
            max_concurrent: int | None = None, progress: bool = True) -> list[TrialRecord]:
    """Run (or resume, or extend) the sweep on Ray until `sweep.n_trials` trials finished.

    `address`: None starts a local Ray, "auto" or "host:port" joins a cluster. `storage`: a
    directory every node can reach (None: a temporary one, removed afterwards).
    """
    if tune is None:
        raise AutoLRError(f"backend='ray' needs Ray Tune: pip install 'autolr[ray]' ({_MISSING}).")
    if address is not None and not isinstance(address, str):
        raise AutoLRError(f"ray_address must be None, 'auto' or 'host:port' such as "
                          f"'10.0.0.1:6379', but got {address!r}.")
    resources = _check_resources(resources_per_trial)
    if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(
            max_concurrent, int) or max_concurrent < 1):
        raise AutoLRError(f"max_concurrent must be None or an integer >= 1, but got "
                          f"{max_concurrent=}.")
    mode = "min" if sweep.direction == "minimize" else "max"
    make_scheduler(pruner, sweep.n_evals, mode)  # a bad pruner fails before connecting
    folder, name = _storage_folder(storage), study_name or DEFAULT_STUDY
    if folder and Path(folder, name).exists() and not Path(folder, name).is_dir():
        raise AutoLRError(f"the Ray storage {folder!r} holds a file named {name!r}, where "
                          "the sweep's experiment folder goes; choose another study_name "
                          "(--study NAME on the command line) or storage.")
    settings = Path(folder, f"{name}.settings.json") if folder else None
    if settings is not None and settings.is_file():  # a resume: with the same settings
        sweep.check_resumable(name, json.loads(settings.read_text("utf-8")))
    _check_serializable(sweep)
    import ray

    held = contextlib.ExitStack()
    if folder:  # one driver per sweep
        held.enter_context(_one_driver(Path(folder, f"{name}.driver.json"), name))
    held.enter_context(sigterm_as_interrupt())  # SIGTERM stops the sweep as Ctrl-C does
    started = False
    try:
        started = _connect(address)
        folder = folder or tempfile.mkdtemp(prefix="autolr-ray-")  # made last: nothing leaks
        if max_concurrent is None:  # what the cluster runs at once: TPE sees every result
            cpus = ray.cluster_resources().get("CPU", 1)
            max_concurrent = max(1, int(cpus // max(resources["cpu"], 1e-9)))
        threads = max(1, int(resources["cpu"])) if resources_per_trial else sweep.torch_threads
        stored = [ray.put(sweep)]  # in a list: each worker gets it from the store itself
        check_nodes_load(stored, resources)
        if settings is not None and not settings.is_file():  # kept once a sweep can start
            settings.parent.mkdir(parents=True, exist_ok=True)
            settings.write_text(json.dumps(sweep.settings()), "utf-8")
        saved = Path(folder, f"{name}.autolr.json")  # readable without Ray or pickle
        if storage is not None and saved.is_file():  # unended until this call ends
            with contextlib.suppress(AutoLRError):  # unreadable: rewritten after a trial
                earlier = TuneResult.load(saved)
                earlier.ended = False
                earlier.save(saved)
        trainable = tune.with_resources(tune.with_parameters(
            _train, stored=stored, threads=threads, ended=_ended_trials(saved)), resources)
        keep = None if storage is None else (lambda records: _save(sweep, name, folder,
                                                                   records, saved))
        run = _Run(sweep, trainable, pruner, mode, max_concurrent, folder, keep)
        with _tune_env():
            records = run.all(name, progress)
            pick = RayPick(sweep, records, Path(folder, f"{name}.pick.jsonl"),
                           _remote_runs(stored, threads, resources),
                           lambda params, number: run.step_back(name, params, number))
            pick.settle(None)
        records = pick.records(None)
        if storage is not None:
            _save(sweep, name, folder, records, saved)
        return records
    finally:
        if started:
            ray.shutdown()
        if storage is None and folder:
            shutil.rmtree(folder, ignore_errors=True)
        held.close()


def _save(sweep: Sweep, name: str, folder: str, records: list[TrialRecord],
          path: Path) -> None:
    """The sweep so far as `TuneResult.save` writes it (`autolr.load`, `show` and `report`
    read it): after each trial, so an interrupted sweep can be read too, and at the end."""
    TuneResult(records, metric=sweep.metric, direction=sweep.direction, epochs=sweep.epochs,
               study_name=name, storage=folder, ended=False,
               own_schedules=sweep.own_schedules(), chance=sweep.chance,
               lr_space=sweep.lr_space()).save(path)  # till `store_end`


def make_scheduler(spec: Any, n_evals: int, mode: str, cuts_log: str | None = None) -> Any:
    """Tune's scheduler for a pruner name; one evaluation is the unit of time.

    'auto' / 'checked_halving', 'decay_median': the Optuna backend's schedule-aware
    pruners (`autolr.backends.optuna.make_pruner`), judged on the driver
    (`_PrunerScheduler`). 'median', 'successive_halving': Tune's MedianStoppingRule from
    mid-run and ASHA. 'hyperband': ASHA with 3 brackets (Tune's synchronous HyperBand
    pauses trials: that needs checkpoints). Tune's own see no evaluation that ended in
    warmup, as autolr's never judge one. `cuts_log`: where autolr's pruners log why they
    cut each trial.
    """
    from ray.tune import schedulers

    from autolr.backends.optuna import make_pruner

    if isinstance(spec, schedulers.TrialScheduler):
        return spec
    common = {"time_attr": "training_iteration", "metric": "value", "mode": mode}
    if spec in SCHEDULE_AWARE:
        return _PrunerScheduler(SweepPruning(make_pruner(spec, n_evals).wrapped, mode,
                                             cuts_log))
    if spec == "median":
        return _WarmupBlindMedian(grace_period=max(1, n_evals // 2), min_samples_required=5,
                                  **common)
    if spec == "successive_halving":
        return _WarmupBlindASHA(max_t=n_evals, grace_period=max(1, n_evals // 9), **common)
    if spec == "hyperband":
        return _WarmupBlindASHA(max_t=n_evals, grace_period=1, brackets=3, **common)
    if spec == "none":
        return schedulers.FIFOScheduler()
    raise AutoLRError(f"with backend='ray', pruner must be one of {', '.join(SCHEDULERS)} or a "
                      f"ray.tune.schedulers.TrialScheduler, but got {spec!r}.")


class _Run:
    """The experiments of one sweep: `name`, then `name.2`, `name.3`..."""

    def __init__(self, sweep: Sweep, trainable: Any, pruner: Any, mode: str,
                 max_concurrent: int, folder: str,
                 keep: Callable[[list[TrialRecord]], None] | None = None) -> None:
        from autolr.backends.optuna import make_pruner

        self.sweep, self.trainable, self.pruner, self.mode = sweep, trainable, pruner, mode
        self.max_concurrent, self.folder = max_concurrent, folder
        self.keep = keep  # called with the sweep's records so far as each trial ends
        rules = make_pruner("none", sweep.n_evals)  # the Optuna backend's patience, exactly
        self.patience, self.min_delta = rules.patience, rules.min_delta
        scheduler = make_scheduler(pruner, sweep.n_evals, mode)
        self.scheduler = (type(scheduler.pruning.pruner).__name__
                          if isinstance(scheduler, _PrunerScheduler)  # else Tune's own name
                          else next(kind.__name__ for kind in type(scheduler).__mro__
                                    if not kind.__name__.startswith("_")))
        self.cuts_log: Path | None = None  # where autolr's pruner logs why it cut a trial
        self.cuts: dict[int, str] = {}
        # the timeout starts no new trial; the running ones finish (Tune's own time budget
        # stopped them mid-run, as if pruned, and the best of one sweep was lost so)
        self.deadline = None if sweep.timeout is None else time.monotonic() + sweep.timeout

    def experiments(self, name: str) -> list[str]:
        """The sweep's experiment folders so far, then the next one's."""
        paths = [os.path.join(self.folder, name)]
        while tune.Tuner.can_restore(paths[-1]):
            paths.append(os.path.join(self.folder, f"{name}.{len(paths) + 1}"))
        return paths

    def all(self, name: str, progress: bool) -> list[TrialRecord]:
        # on the class, not the searcher: Tune saves a searcher with its experiment, and a
        # restored one would bring an old call's deadline; the pick's step back has none
        _Search.deadline = self.deadline
        try:
            return self._all(name, progress)
        finally:
            _Search.deadline = None

    def _all(self, name: str, progress: bool) -> list[TrialRecord]:
        self.cuts_log = Path(self.folder, f"{name}.cuts.jsonl")
        paths = self.experiments(name)
        last = paths[-2] if len(paths) > 1 else None
        done = [r for path in paths[:-2] for r in self.records(
            tune.ResultGrid(tune.ExperimentAnalysis(path)))]
        if last:  # resume it: interrupted trials run again, from scratch (no checkpoints)
            tuner = tune.Tuner.restore(last, self.trainable, restart_errored=True)
            ended = [self.record(t.last_result, t.config, None) for t in
                     tune.ExperimentAnalysis(last).trials if t.status == "TERMINATED"]
            done += self.fit(tuner, done + [r for r in ended if r], progress)
        remaining = self.sweep.n_trials - sum(_counts(r) for r in done)
        if remaining > 0:
            finals = [r.final_value for r in done if r.state == COMPLETE]
            leader = (min if self.mode == "min" else max)(finals) if finals else None
            scheduler = make_scheduler(self.pruner, self.sweep.n_evals, self.mode,
                                       str(self.cuts_log))
            if isinstance(scheduler, _PrunerScheduler):  # judged against the earlier trials too
                scheduler.pruning.seed(done)
            tuner = tune.Tuner(self.trainable, tune_config=tune.TuneConfig(
                search_alg=self.searcher(resume_from=last),
                scheduler=scheduler,
                num_samples=remaining, max_concurrent_trials=self.max_concurrent,
                reuse_actors=True,
                trial_dirname_creator=_dirname),
                run_config=tune.RunConfig(
                    name=os.path.basename(paths[-1]), storage_path=self.folder, verbose=0,
                    stop=_StallStopper(self.patience, self.min_delta, self.mode, leader,
                                       self.sweep.n_evals),
                    failure_config=tune.FailureConfig(max_failures=3)))  # a node may die
            done += self.fit(tuner, done, progress)
        return sorted(done, key=lambda r: r.number)

    def step_back(self, name: str, params: dict[str, Any],
                  from_number: int) -> list[TrialRecord]:
        """The pick's step back: `params` trained unpruned as one more trial of the sweep,
        in an experiment of its own whose searcher goes on from the last one's, the
        config queued as its next trial: trial numbers go on, TPE learns it, and a resume
        or an extension finds it with the sweep's other experiments."""
        paths = self.experiments(name)
        searcher = self.searcher(resume_from=paths[-2])
        searcher._ot_study.enqueue_trial(  # noqa: SLF001 - Tune's searcher holds the study
            params, user_attrs={"steps_back": from_number})
        tuner = tune.Tuner(self.trainable, tune_config=tune.TuneConfig(
            search_alg=searcher, scheduler=make_scheduler("none", self.sweep.n_evals,
                                                          self.mode),
            num_samples=1, max_concurrent_trials=1, trial_dirname_creator=_dirname),
            run_config=tune.RunConfig(
                name=os.path.basename(paths[-1]), storage_path=self.folder, verbose=0,
                failure_config=tune.FailureConfig(max_failures=3)))
        return self.fit(tuner, [], progress=False, keep=False)  # the end saves the pick

    def fit(self, tuner: Any, before: list[TrialRecord], progress: bool,
            keep: bool = True) -> list[TrialRecord]:
        """Run one experiment, following its trials for the progress bar (and, with
        `keep`, `self.keep`); its records."""
        from autolr.progress import SweepProgress

        finished = _Finished(self, before, keep and self.keep is not None)
        # Attached now, not in the RunConfig: the Tuner pickles that (and this holds the
        # sweep), and a restored Tuner brings back the callbacks pickled at its start.
        internal = getattr(tuner, "_local_tuner", None)  # None with Ray Client: no live bar
        if internal is not None:
            internal.get_run_config().callbacks = [finished]
        with SweepProgress(finished.so_far, total=self.sweep.n_trials,
                           direction=self.sweep.direction,
                           enabled=progress and internal is not None):
            with _fit_signals():
                grid = tuner.fit()
        # Tune ends a run gracefully on Ctrl-C, saving it with its unfinished trials (the
        # grid shows them stopped): stop too, as the Optuna backend does; calling again
        # resumes it.
        saved = tune.ExperimentAnalysis(grid.experiment_path).trials
        if any(trial.status not in ("TERMINATED", "ERROR") for trial in saved):
            if self.keep is None:  # no storage: its folder goes, the finished trials with it
                raise SweepInterrupted(finished.so_far())
            raise KeyboardInterrupt(f"the Ray Tune run in {grid.experiment_path} was stopped")
        return self.records(grid)

    def cut_reason(self, number: int) -> str | None:
        """Why autolr's pruner cut trial `number`, from its log (None: not its cut)."""
        if number not in self.cuts and self.cuts_log is not None:
            self.cuts = read_cuts(self.cuts_log)
        return self.cuts.get(number)

    def searcher(self, resume_from: str | None) -> Any:
        from autolr.backends.optuna import sweep_sampler

        space = _Space(self.sweep.space, self.sweep.n_train)
        # the Optuna backend's sampler and start-up design: the same search
        # and the default config's trial: the sampler hands it out by trial number, which
        # goes on through a resume, so it runs once
        sampler = sweep_sampler(self.sweep, self.max_concurrent)
        searcher = _Search(space, metric="value", mode=self.mode, sampler=sampler)
        if resume_from is not None:  # TPE keeps what it learnt and trial numbers go on
            searcher.restore_from_dir(resume_from)
            searcher._space = space  # noqa: SLF001 - sample from this call's space
        return searcher

    def records(self, grid: Any) -> list[TrialRecord]:
        return [r for r in (self.record(res.metrics, res.config, res.error) for res in grid)
                if r is not None]

    def record(self, metrics: Mapping | None, config: Mapping | None,
               error: BaseException | None) -> TrialRecord | None:
        """A Tune trial as a TrialRecord; None for one that never started."""
        payload = json.loads(metrics[_PAYLOAD]) if metrics and _PAYLOAD in metrics else None
        if payload is None and error is None:
            return None
        payload = payload or {"number": (config or {}).get(_NUMBER, -1),  # it never reported
                              "steps_back_from": (config or {}).get(_STEPS_BACK)}
        if error is not None:  # Tune gave up on it: its node died once too often, say
            payload.update(state=FAILED, reason=f"interrupted: {last_line(error)}")
        elif payload["state"] == RUNNING:  # stopped from outside: stopper or scheduler
            why = stop_reason(payload["values"], self.patience, self.min_delta,
                              "minimize" if self.mode == "min" else "maximize",
                              _profile(payload, self.sweep.n_evals))
            payload.update(state=PRUNED, reason=why if is_stall(why) else
                           self.cut_reason(payload["number"]) or f"pruned by {self.scheduler}")
        for key in ("values", "train_losses", "val_losses"):
            payload[key] = tuple(payload.get(key, ()))
        return TrialRecord(**payload)


class _Space:
    """The define-by-run space for Tune's Optuna searcher: a plain class, since Tune saves
    the searcher with pickle. Returns the Optuna trial number, so that records keep it."""

    def __init__(self, space: Any, n_train: int) -> None:
        self.space, self.n_train = space, n_train

    def __call__(self, trial: Any) -> dict[str, Any]:
        self.space.sample(trial, self.n_train)
        stepped = trial.user_attrs.get("steps_back")  # the pick queued it (`_Run.step_back`)
        return {_NUMBER: trial.number, **({} if stepped is None else {_STEPS_BACK: stepped})}


class _Search(OptunaSearch):
    """Tune's Optuna searcher, telling Optuna how each trial ended as the Optuna backend
    does: complete, pruned (a diverged one too, after its NaN report, so that TPE ranks it
    worst), or failed. Tune's own tells a trial it stopped 'complete' with its last value,
    and one that reported NaN fails and is forgotten (the trap of ray-project/ray#11670).
    Past its `deadline` (the sweep's timeout) it suggests no more trials."""

    deadline: float | None = None  # time.monotonic(); set by `_Run.all` for its call

    def suggest(self, trial_id: str) -> dict | str | None:
        deadline = _Search.deadline
        if deadline is not None and time.monotonic() >= deadline:
            return self.FINISHED  # Tune lets the running trials end, and starts none
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        # A trial a resume runs again (from scratch: no checkpoints) reports the steps its
        # interrupted attempt reported: Optuna would keep the first value and warn each time
        trial = self._ot_trials.get(trial_id)
        if trial is not None and result.get("training_iteration") in trial.study._storage \
                .get_trial(trial._trial_id).intermediate_values:
            return
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        state = json.loads(result[_PAYLOAD])["state"] if result and _PAYLOAD in result else None
        if error or state == FAILED:
            super().on_trial_complete(trial_id, None, error=True)
        elif state == COMPLETE:
            super().on_trial_complete(trial_id, result)
        else:
            super().on_trial_complete(trial_id, None)  # pruned: ranked by its last report


class _PrunerScheduler(FIFOScheduler):
    """autolr's schedule-aware pruner as a Tune scheduler: each report's record goes to
    `SweepPruning`, which stops the trial where the Optuna backend's pruner would. Tune
    saves it with the experiment (its trials so far included); a restored experiment
    judges against the trials it had when it started, plus those it runs."""

    def __init__(self, pruning: SweepPruning) -> None:
        super().__init__()
        self.pruning = pruning

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if _PAYLOAD not in result:
            return self.CONTINUE
        if result.get(UNJUDGED):  # kept for the comparisons, not judged
            self.pruning.update(json.loads(result[_PAYLOAD]))
            return self.CONTINUE
        return self.STOP if self.pruning.report(json.loads(result[_PAYLOAD])) else self.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if result and _PAYLOAD in result:
            self.pruning.update(json.loads(result[_PAYLOAD]))
        self._ended(trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._ended(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._ended(trial)

    def _ended(self, trial: Any) -> None:
        self.pruning.stopped(trial.config.get(_NUMBER, -1))


class _BlindToWarmup:
    """For Tune's own schedulers: a report whose evaluation ended in warmup is not shown to
    them (a trial mid-warmup is not worse, only earlier). ASHA then files the trial's first
    report past warmup at the highest rung it has reached, as it files a late report. The
    default config's trial is never shown to them, as autolr's pruners never cut it."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if result.get(UNJUDGED) or _is_baseline(result):  # the default config's trial is
            return FIFOScheduler.CONTINUE  # never cut: the report compares with a whole run
        return super().on_trial_result(tune_controller, trial, result)


def _is_baseline(result: dict) -> bool:
    return _PAYLOAD in result and bool(json.loads(result[_PAYLOAD]).get("is_baseline"))


class _WarmupBlindASHA(_BlindToWarmup, ASHAScheduler):
    pass


class _WarmupBlindMedian(_BlindToWarmup, MedianStoppingRule):
    pass


class _StallStopper(_Stopper):
    """autolr's stall rule, judged on the driver, where the leader is known: a flat trial
    stops only while behind the best complete trial, as the Optuna backend's pruner rules.
    Tune saves it with the experiment, leader included."""

    def __init__(self, patience: int | None, min_delta: float, mode: str,
                 leader: float | None, n_evals: int | None = None) -> None:
        self.patience, self.min_delta, self.mode, self.leader = patience, min_delta, mode, leader
        self.n_evals = n_evals  # with it, the stall rule is LR-aware, as in the Optuna backend

    def __call__(self, trial_id: str, result: dict) -> bool:
        if _PAYLOAD not in result or result.get(UNJUDGED):
            return False
        payload = json.loads(result[_PAYLOAD])
        values, sign = payload["values"], 1.0 if self.mode == "min" else -1.0
        if payload["state"] == COMPLETE and values:
            if self.leader is None or sign * values[-1] < sign * self.leader:
                self.leader = values[-1]
        if payload["state"] != RUNNING or self.leader is None:
            return False
        direction = "minimize" if self.mode == "min" else "maximize"
        stalled = is_stall(stop_reason(values, self.patience, self.min_delta, direction,
                                       _profile(payload, self.n_evals)))
        return stalled and min(sign * v for v in values) > sign * self.leader

    def stop_all(self) -> bool:
        return False


def _profile(payload: Mapping, n_evals: int | None) -> EvalProfile | None:
    """The trial's LR profile (autolr.lr_profile), from the config in its record."""
    if not n_evals or not payload.get("params"):
        return None
    return EvalProfile.of(TrialConfig.from_dict(payload["params"]), n_evals)


def _remote_runs(stored: list, threads: int, resources: Mapping[str, float]) -> Any:
    """The pick's extra runs of a config on seed offsets, each a Ray task with a trial's
    resources, all submitted at once (not in the driver, which may be a laptop)."""
    import ray

    task = ray.remote(_train_seed).options(**_task_options(resources))

    def run_many(config: TrialConfig, offsets: list[int]) -> list[TrialOutcome]:
        return ray.get([task.remote(stored, config, k, threads) for k in offsets])

    return run_many


def _task_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """A trial's resources (`_check_resources`'s, read as Tune reads them: cpu, gpu,
    memory, and custom ones) as a Ray task's options."""
    spec = dict(resources)
    options: dict[str, Any] = {"num_cpus": spec.pop("cpu", 0.0),
                               "num_gpus": spec.pop("gpu", 0.0)}
    memory = spec.pop("memory", 0.0)
    if memory:
        options["memory"] = memory
    if spec:
        options["resources"] = spec
    return options


def _train_seed(stored: list, config: TrialConfig, seed_offset: int, threads: int) -> Any:
    """One of the pick's runs on a Ray worker: `config`, unpruned, on seed `seed_offset`."""
    import torch

    torch.set_num_threads(threads)
    return load(stored[0]).run(config, None, seed_offset=seed_offset)


class _Finished(_Callback):
    """Collects each trial as it ends, for the live progress bar and `_Run.keep`."""

    def __init__(self, run: _Run, before: list[TrialRecord], keep: bool) -> None:
        self.run, self.before, self.records, self.keep = run, before, [], keep

    def so_far(self) -> list[TrialRecord]:
        """The sweep's records: those it had before this experiment, then its own."""
        return list({r.number: r for r in self.before + self.records}.values())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add(trial, RuntimeError("its worker died"))

    def _add(self, trial: Any, error: BaseException | None) -> None:
        self.records += [r for r in [self.run.record(trial.last_result, trial.config, error)] if r]
        if not self.keep:
            return
        try:
            self.run.keep(self.so_far())
        except AutoLRError as failure:  # a full disk, say: the sweep goes on; the end retries
            self.keep = False
            logger.warning("cannot save the sweep so far: %s", failure)


def _ended_trials(saved: Path) -> dict[int, dict[str, Any]]:
    """The trials that ended in the sweep's saved result (`_save`, after each trial), as
    the records `_train` reports, by number; {} when there is none yet. Tune's own state
    lags a second or more behind: a killed driver leaves trials that ended there as
    running, which a resume would train again, to another end if pruning timed them
    differently."""
    if not saved.is_file():
        return {}
    try:
        records = TuneResult.load(saved).records
    except AutoLRError:  # unreadable: every unfinished trial of Tune's runs again
        return {}
    return {r.number: {key: value for key, value in json.loads(json.dumps(
                dataclasses.asdict(r))).items() if key in _REPORTED}
            for r in records if _counts(r) and r.steps_back_from is None}


def _train(config: dict, stored: list, threads: int,
           ended: dict[int, dict[str, Any]] | None = None) -> None:
    """One trial on a Ray worker: load the sweep, rebuild the config from the searcher's
    params, run the one loop (which reports every evaluation), report how it ended. A
    trial that ended before the driver was killed (`ended`) reports that end at once."""
    import ray
    import torch

    before = (ended or {}).get(config.get(_NUMBER, -1))
    if before is not None:
        return _report_again(before)
    torch.set_num_threads(threads)  # trials run side by side: no oversubscription
    record: dict[str, Any] = {
        "number": config.get(_NUMBER, -1), "state": RUNNING, "params": {}, "reason": None,
        "values": [], "train_losses": [], "val_losses": [], "epochs_run": 0.0, "steps_run": 0,
        "seconds": 0.0, "is_baseline": False, "node": ray.util.get_node_ip_address(),
        "steps_back_from": config.get(_STEPS_BACK)}
    try:
        sweep = load(stored[0])
    except Exception as error:  # a node that joined after the check, say: see ray_nodes
        return _report_failed(record, f"cannot load the model or data on {record['node']}: "
                              f"{last_line(error)} ({LOAD_FIX})")
    try:
        params = {k: v for k, v in config.items() if k not in (_NUMBER, _STEPS_BACK)}
        trial_config = sweep.space.config_from_params(params, sweep.n_train)
        record["params"] = trial_config.to_dict()
        record["is_baseline"] = sweep.is_baseline(trial_config)
        outcome = sweep.run(trial_config, _Reporter(record, sweep, trial_config.batch_size))
    except Exception as error:  # recorded, not raised: Tune would retry a trial that raises
        return _report_failed(record, f"{type(error).__name__}: {error}")
    if record["state"] == COMPLETE:  # its last evaluation said so already
        return
    record.update(state=outcome.state, reason=outcome.reason, values=outcome.values,
                  train_losses=outcome.train_losses, val_losses=outcome.val_losses,
                  steps_run=outcome.steps_run, epochs_run=outcome.epochs_run,
                  seconds=outcome.seconds)
    value = outcome.values[-1] if outcome.state == COMPLETE else math.nan  # diverged: NaN
    tune.report({"value": value, _PAYLOAD: json.dumps(record)})


def _report_again(record: dict[str, Any]) -> None:
    """Report a trial that had ended as it reported then, one evaluation a step (a
    diverged one's NaN last), each report carrying how it ended: Tune's ASHA files each
    value at its own rung, not all at the first, and whenever Tune stops the replay, the
    driver reads the same end."""
    payload = json.dumps(record)
    values = list(record["values"])
    if record["state"] not in (COMPLETE, PRUNED) or not values:
        values.append(math.nan)
    for value in values:
        tune.report({"value": value, _PAYLOAD: payload})


class _Reporter:
    """Reports each evaluation to Tune with the trial's record so far; Tune decides whether
    the trial goes on. Only a non-finite value stops it here: the loop ends it as diverged
    and `_train` reports that. The last evaluation is marked complete, because Tune may stop
    the trial on it (ASHA at max_t) before the loop returns."""

    def __init__(self, record: dict, sweep: Sweep, batch_size: int) -> None:
        self.record, self.n_evals = record, sweep.n_evals
        self.per_epoch = steps_per_epoch(sweep.n_train, batch_size)
        self.evals_per_epoch = max(1, sweep.n_evals // sweep.epochs)
        self.started = time.perf_counter()

    def report(self, step: int, metrics: Mapping[str, float]) -> bool:
        value = metrics["value"]
        if not math.isfinite(value):
            return True
        record, evals = self.record, step + 1
        record["values"].append(value)
        record["val_losses"].append(metrics.get("val_loss", value))
        record["train_losses"].append(metrics.get("train_loss", math.nan))
        # where the loop evaluates: the first step past each 1/evals_per_epoch of an epoch
        steps = math.ceil(evals * self.per_epoch / self.evals_per_epoch)
        record.update(steps_run=steps, epochs_run=round(steps / self.per_epoch, 4),
                      seconds=time.perf_counter() - self.started)
        if evals == self.n_evals:
            record["state"] = COMPLETE
        tune.report({"value": value, "val_loss": record["val_losses"][-1],
                     "train_loss": record["train_losses"][-1], _PAYLOAD: json.dumps(record),
                     UNJUDGED: bool(metrics.get(UNJUDGED))})  # the pruners skip it
        return False


def _report_failed(record: dict, reason: str) -> None:
    record.update(state=FAILED, reason=reason)
    tune.report({"value": math.nan, _PAYLOAD: json.dumps(record)})


def _counts(record: TrialRecord) -> bool:
    """Whether a trial counts towards n_trials: an interrupted one does not, as with Optuna."""
    return not (record.state == FAILED and (record.reason or "").startswith("interrupted"))


def _dirname(trial: Any) -> str:
    return trial.trial_id  # short: Tune's default name holds every parameter


def _check_resources(resources: Mapping[str, float] | None) -> dict[str, float]:
    if resources is None:
        return {"cpu": 1}
    if not (isinstance(resources, Mapping) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            and v >= 0 for k, v in resources.items())):
        raise AutoLRError("resources_per_trial must map resource names to amounts >= 0, such "
                          f"as {{'cpu': 2, 'gpu': 0.5}}, but got {resources!r}.")
    named = {{"CPU": "cpu", "GPU": "gpu"}.get(k, k): v for k, v in resources.items()}
    named = {"cpu": 1, **named}  # Tune reads "CPU" as "cpu": so does the rest of autolr
    if not any(named.values()):  # Ray cannot schedule a trial that asks for nothing
        raise AutoLRError(f"resources_per_trial must ask for some resource, such as "
                          f"{{'cpu': 1}} or {{'cpu': 0, 'gpu': 1}}, but got {resources!r}.")
    return named


def store_end(storage: Any, study_name: str | None, test: RangeTest | None,
              cut_short: str | None = None) -> None:
    """Mark the `<study>.autolr.json` the sweep wrote ended, with its range test if it ran
    one, and why it ran fewer trials than asked if so."""
    path = Path(_storage_folder(storage), f"{study_name or DEFAULT_STUDY}.autolr.json")
    result = TuneResult.load(path)
    result.range_test = test or result.range_test
    result.cut_short = cut_short
    result.ended = True
    result.save(path)


def _storage_folder(storage: Any) -> str | None:
    if storage is None:
        return None
    if not isinstance(storage, (str, os.PathLike)) or "://" in str(storage):
        raise AutoLRError(
            "with backend='ray', storage is a directory that every node of the cluster can "
            "reach (Tune's storage_path, e.g. on NFS), such as '/shared/autolr', but got "
            f"{storage!r}.")
    folder = os.path.abspath(os.path.expanduser(os.fspath(storage)))
    # before connecting: Tune makes it on the driver, a missing one included
    check_folder(Path(folder), "Ray sweep (storage is a directory)")
    return folder


@contextlib.contextmanager
def _one_driver(path: Path, name: str) -> Iterator[None]:
    """Hold the sweep's driver file (`storage.owner()` of this process) while it runs: a
    second driver would restore the same Tune run and train its unfinished trials twice.
    The file of a driver that died on this host is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    taken_over = False
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and dead(holder) and not taken_over:
                path.unlink(missing_ok=True)
                taken_over = True
                continue
            where = (f"process {holder.get('pid')} on {holder.get('host')}" if holder
                     else "another process")
            raise AutoLRError(
                f"study {name!r} is being run by {where} (it holds {str(path)!r}); wait for "
                "it to end, or choose another study_name (--study NAME on the command line). "
                "If that driver is gone (its machine died), delete the file.") from None
        with os.fdopen(descriptor, "w") as held:
            json.dump(owner(), held)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):  # being written right now, or gone
        return None
    return holder if isinstance(holder, dict) else None


def _check_serializable(sweep: Sweep) -> None:
    """Fail before the sweep when the model, factory, loss or metric cannot go to the
    cluster, instead of in every trial, deep in Tune's stack."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(sweep)
    except Exception as error:
        raise AutoLRError(
            "the model (or model factory), loss or metric cannot be sent to the Ray cluster: "
            f"{type(error).__name__}: {error}. Locks, open files or connections cannot be "
            "serialized: create them inside the model factory, or keep them out of the "
            "model.") from None


def _connect(address: str | None) -> bool:
    """Connect to Ray unless connected already; True when this call connected."""
    import ray

    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS")  # ray.init() reads it too
    unreachable = _unreachable(target)
    if unreachable:  # Ray itself would retry an address nobody answers at, for ever
        given = repr(target) if address else f"{target!r} (RAY_ADDRESS)"
        raise AutoLRError(f"cannot connect to the Ray cluster at {given}: {unreachable}. "
                          "Check the head node's address and port (`ray status` on it), start "
                          "one with `ray start --head`, or use ray_address=None (and no "
                          "RAY_ADDRESS) for a local Ray.")
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
    main = threading.current_thread() is threading.main_thread()
    sigterm = signal.getsignal(signal.SIGTERM) if main else None
    try:
        if address is None:  # a Ray of its own: not the cluster a stale file names
            ray.init(address=None if target else "local", include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise AutoLRError(f"cannot connect to the Ray cluster at {address!r}: {error}. Start "
                          "one with `ray start --head`, or use ray_address=None for a local "
                          "Ray.") from None
    finally:  # ray.init replaces it with a plain exit: no trial closed, no word said
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)
    return True


@contextlib.contextmanager
def _fit_signals() -> Iterator[None]:
    """Around Tune's fit: SIGTERM does what Ctrl-C does there (Tune's handler ends the
    run gracefully, saving it); after it, both are handled as before: Tune leaves its
    SIGINT handler in place, which would swallow the next Ctrl-C (during the pick, say)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def _as_ctrl_c(_signum: int, frame: Any) -> None:
    handler = signal.getsignal(signal.SIGINT)  # Tune's, while it runs
    if not callable(handler):
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def _unreachable(address: str | None) -> str | None:
    """Why no Ray cluster answers at a 'host:port' (or 'ray://host:port') address; None
    when one may, or for None / 'auto' / 'local', which Ray resolves itself."""
    if not address or address in ("auto", "local"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return "it is not of the form 'host:port', such as '10.0.0.1:6379'"
    try:
        with socket.create_connection((host.strip("[]"), int(port)),
                                      timeout=CONNECT_TIMEOUT) as connection:
            if _speaks_grpc(connection):
                return None
    except OSError as error:
        return f"nothing answers there ({error.strerror or error})"
    return ("something answers there, but not a Ray cluster's head (its GCS port, 6379 "
            "unless `ray start --head --port` said otherwise; the dashboard's 8265 is not it)")


#: an HTTP/2 client's opening (RFC 9113 3.4), then an empty SETTINGS frame (6.5)
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_grpc(connection: socket.socket) -> bool:
    """Whether the server answers an HTTP/2 opening with a SETTINGS frame, as Ray's gRPC
    servers do. Ray itself would retry any other (a web server, say) for ever."""
    try:
        connection.sendall(_HTTP2_PREFACE)
        header = b""
        while len(header) < 9:  # a frame header: length (3 bytes), type, flags, stream id
            chunk = connection.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:  # closed on us, or silent for CONNECT_TIMEOUT
        return False
    return header[3] == 4  # SETTINGS


@contextlib.contextmanager
def _tune_env() -> Iterator[None]:
    """Tune settings read from the environment (a user's own values win), Optuna quiet.

    Tune saves the experiment state every 10 s or more by default: saving it at every step
    keeps each finished trial when the driver is killed (measured: no slower here). The
    legacy output is silent at verbose=0, the new one still prints tables."""
    from autolr.backends.optuna import _quiet_optuna

    wanted = {"TUNE_GLOBAL_CHECKPOINT_S": "1", "RAY_AIR_NEW_OUTPUT": "0"}
    added = [key for key in wanted if key not in os.environ]
    os.environ.update({key: wanted[key] for key in added})
    for name, noise in _TUNE_NOISE:
        logging.getLogger(name).addFilter(noise)
    try:
        with _quiet_optuna():
            yield
    finally:
        for name, noise in _TUNE_NOISE:
            logging.getLogger(name).removeFilter(noise)
        for key in added:
            os.environ.pop(key, None)


class _Drop(logging.Filter):
    """Drops a logger's messages that start with `start`, or says them in autolr's words
    (`instead`)."""

    def __init__(self, start: str, instead: str | None = None) -> None:
        super().__init__()
        self.start, self.instead = start, instead

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(self.start):
            return True
        if self.instead is None:
            return False
        record.msg, record.args = self.instead, ()
        return True


_TUNE_NOISE = [  # (logger, filter)
    # on Ctrl-C, "resume experiment with: Tuner.restore(...)": with autolr, calling again
    # resumes (the CLI prints its command); restoring by hand would lose autolr's pruner,
    # pick and settings
    ("ray.tune.tune", _Drop("Experiment has been interrupted")),
    # Tune's words for a Ctrl-C (or SIGTERM, `_fit_signals`) name its own signals
    ("ray.tune.tune", _Drop(
        "Stop signal received", "stopping: Ray saves the sweep's state once more (Ctrl-C "
        "again skips that; every trial that ended is kept either way)")),
    # reading back a stopped run, for a trial that had not reported yet: it runs again
    ("ray.tune.analysis.experiment_analysis", _Drop("Failed to fetch metrics")),
]
