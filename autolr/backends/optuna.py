"""Run a sweep with Optuna: TPE over the joint space, autolr's pruner, any storage.

In-process by default. With `n_jobs > 1`, worker processes share one storage (a journal
file when none is given), each running torch with its share of the cores.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

from autolr.budgeted import REDUCTION_FACTOR, run_budgeted
from autolr.checked_halving import CheckedHalvingPruner
from autolr.design import DesignedStartSampler, startup_design
from autolr.errors import AutoLRError, SweepInterrupted, SweepStopped, unknown_study
from autolr.pick import SEED_VALUES, RobustPick, stopped_by, verdict, with_runs
from autolr.progress import SweepProgress
from autolr.pruning import AutoLRPruner, DecayAwareMedianPruner
from autolr.range_test import RangeTest
from autolr.result import TrialRecord
from autolr.robust import MIN_SPEND_RATIO, Confirmation, judge_side_by_side
from autolr.side_by_side import can_fork, train_side_by_side
from autolr.space import SearchSpace, TrialConfig
from autolr.storage import (
    ClaimingSampler,
    check_writable,
    claim_new_trials,
    die_with,
    interrupted,
    is_orphan,
    open_storage,
    others_running,
    owner,
    recover,
    sigterm_as_interrupt,
    start_child,
    stored_file,
)
from autolr.streams import SharedStreams
from autolr.sweep import Sweep, lr_space, own_schedule_ids
from autolr.training import COMPLETE, UNJUDGED

logger = logging.getLogger("autolr")

PRUNERS = ("auto", "checked_halving", "decay_median", "median", "successive_halving",
           "hyperband", "budgeted", "none")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
DEFAULT_STUDY = "autolr"
STARTUP_TRIALS = 10  # TPE's start-up trials (the design among them)
DESIGN_TRIALS = 5  # the first trials, from the space-filling design
ENDED = "ended"  # a study attribute: False from a call's start until it returns
CUT_SHORT = "cut_short"  # a study attribute: TuneResult.cut_short of the last call
# the default config's trial: once the start-up trials have covered the space, before
# TPE's model takes over. Run first, it cost diabetes sweeps (the benchmark task whose
# space holds it) a full run of search: within 5% of the oracle at 5 FTE in 55 of 100
# replayed sweeps, against 86 with it run here and 73 for random search
BASELINE_TRIAL = STARTUP_TRIALS


def make_pruner(spec: str | BasePruner, n_evals: int) -> AutoLRPruner:
    """autolr's pruner (divergence + LR-aware stall) around a multi-fidelity pruner.

    'auto' or 'checked_halving': the decay-aware median rule plus successive halving on
    the earliest rungs that would have kept the sweep's best finished trials
    (`CheckedHalvingPruner`). 'decay_median': the decay-aware median rule alone
    (`DecayAwareMedianPruner`, the default until checked halving matched or beat it on
    60 live sweeps per benchmark task), fair to one-cycle, cosine and step schedules,
    from a quarter of the run on. 'median': Optuna's MedianPruner judging only the
    second half of a run. 'successive_halving', 'hyperband': Optuna's, with one
    evaluation as the unit of budget. 'budgeted':
    successive halving over budgeted rungs (autolr.budgeted: each rung trains the whole
    schedule, compressed), judged on each rung's final value. 'none': divergence and
    stall only.
    """
    patience = max(2, n_evals // 3) if n_evals >= 4 else None
    if isinstance(spec, BasePruner):
        return spec if isinstance(spec, AutoLRPruner) else AutoLRPruner(
            spec, patience=patience, n_evals=n_evals)
    if spec in ("auto", "checked_halving"):
        wrapped = CheckedHalvingPruner(n_evals)
    elif spec == "decay_median":
        wrapped = DecayAwareMedianPruner(n_evals)
    elif spec == "median":
        wrapped = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=n_evals // 2)
    elif spec == "successive_halving":
        wrapped = optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, n_evals // 9))
    elif spec == "budgeted":  # rung k reports at step 3**k (see autolr.budgeted)
        return AutoLRPruner(optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=REDUCTION_FACTOR, min_early_stopping_rate=0))
    elif spec == "hyperband":
        wrapped = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=n_evals)
    elif spec == "none":
        wrapped = None
    else:
        raise AutoLRError(f"pruner must be one of {', '.join(PRUNERS)} or an "
                          f"optuna.pruners.BasePruner, but got {spec!r}.")
    return AutoLRPruner(wrapped, patience=patience, n_evals=n_evals)


class OptunaReporter:
    """Reports each evaluation to the trial and asks the pruner whether to stop."""

    def __init__(self, trial: optuna.Trial, pruner: AutoLRPruner) -> None:
        self.trial, self.pruner = trial, pruner
        self.values: list[float] = []
        self.last_reason: str | None = None

    def report(self, step: int, metrics: dict[str, float]) -> bool:
        value = metrics["value"]
        self.trial.report(value, step)
        self.values.append(value)
        if not math.isfinite(value):
            return True
        if metrics.get(UNJUDGED):  # reported (others compare with it), not judged
            return False
        if self.trial.should_prune():
            profile = self.pruner.profile(self.trial)
            cuts = getattr(self.pruner.wrapped, "cuts", {})  # autolr's own rules say why
            self.last_reason = (self.pruner.reason(self.trial.study, self.values, profile)
                                or cuts.get(self.trial.number)
                                or f"pruned by {type(self.pruner.wrapped).__name__}")
            return True
        return False


def make_objective(sweep: Sweep, pruner: AutoLRPruner):
    def objective(trial: optuna.Trial) -> float:
        try:  # an error, not an interruption (`interrupted`): recorded, never re-run
            config = sweep.space.sample(trial, sweep.n_train)
            trial.set_user_attr("config", config.to_dict())
            if sweep.is_baseline(config):  # the sampler's BASELINE_TRIAL place, or its re-run
                trial.set_user_attr("baseline", True)
            reporter = OptunaReporter(trial, pruner)
            outcome = (run_budgeted(sweep.run, config, reporter, sweep.rungs) if sweep.rungs
                       else sweep.run(config, reporter))
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        for key in ("values", "train_losses", "val_losses"):
            trial.set_user_attr(key, getattr(outcome, key))
        trial.set_user_attr("state", outcome.state)
        trial.set_user_attr("reason", outcome.reason)
        run = {"steps": outcome.steps_run, "epochs": outcome.epochs_run,
               "seconds": outcome.seconds}
        if outcome.rung_epochs is not None:
            run.update(rung_epochs=outcome.rung_epochs, rung_steps=outcome.rung_steps)
        trial.set_user_attr("run", run)
        if outcome.state == COMPLETE:
            return outcome.values[-1]
        raise optuna.TrialPruned(outcome.reason)  # diverged ones too: the sampler learns

    return objective


class ConfirmLeader(RobustPick):
    """The robust pick (`autolr.pick`) on an Optuna study: at the end of the sweep
    (`settle`), and as an Optuna callback after each trial when `sweep.confirm_after` is
    set, an unconfirmed leader is re-trained on `sweep.confirm_seeds` more seeds. The
    extra runs are stored as one more finished trial (`confirms`: the leader's number)
    that does not count towards n_trials and that `records_from_study` folds into the
    leader's record; TPE sees the seed mean at the leader's point too. The step back is
    a trial of the study (`steps_back`: the number it steps back from), run by
    `objective` (None: no step back). With `processes` > 1 (a sweep's n_jobs) a config's
    extra seeds train side by side in forked processes (`autolr.side_by_side`)."""

    def __init__(self, sweep: Sweep, min_spend_ratio: float = MIN_SPEND_RATIO,
                 objective: Callable[[optuna.Trial], float] | None = None,
                 processes: int = 1) -> None:
        super().__init__(sweep, min_spend_ratio)
        self.objective, self.processes = objective, processes

    def seed_runs(self, config: TrialConfig, offsets: range) -> Confirmation:
        if self.processes < 2 or len(offsets) < 2 or not can_fork():
            return super().seed_runs(config, offsets)
        outcomes = train_side_by_side(self.sweep.run, config, offsets, self.processes,
                                      self.sweep.torch_threads)
        return judge_side_by_side(config, offsets, outcomes)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if (self.sweep.confirm_after is not None and trial.state == TrialState.COMPLETE
                and "confirms" not in trial.user_attrs):
            with stopped_by(self):  # an error in its runs: a warning, the sweep goes on
                self.confirm_leader(study, self.sweep.confirm_after)

    def records(self, where: optuna.Study) -> list[TrialRecord]:
        return records_from_study(where)

    def may_step_back(self, where: optuna.Study) -> bool:
        return self.objective is not None and not any(
            "steps_back" in t.user_attrs and not interrupted(t)  # once: but a killed
            for t in where.get_trials(deepcopy=False))          # one is done again

    def train_again(self, where: optuna.Study, record: TrialRecord,
                    params: dict[str, Any]) -> None:
        study = where
        # owned from the queue on: if this process dies before it starts, `recover` closes
        # it and the pick steps back anew
        study.enqueue_trial(params, user_attrs={"steps_back": record.number, "owner": owner()})
        pruner, study.pruner = study.pruner, optuna.pruners.NopPruner()
        try:  # unpruned, as the pick's other runs: the choice to spend it is made
            study.optimize(self.objective, n_trials=1, catch=(Exception,))
        finally:
            study.pruner = pruner

    def store(self, where: optuna.Study, record: TrialRecord, runs: Confirmation,
              field: str, diverged: str) -> None:
        """The extra runs as their own finished trial (a finished trial's attributes are
        frozen); `records_from_study` folds it into the trial's record. TPE sees their
        mean at the config's point."""
        original = where.get_trials(deepcopy=False)[record.number]
        attrs: dict[str, Any] = (
            {"confirms": record.number, "config": original.user_attrs.get("config")}
            if field == SEED_VALUES else {"holds_out": record.number})
        attrs.update({field: list(runs.values), "confirm": {
            "steps": runs.steps_run, "epochs": runs.epochs_run, "seconds": runs.seconds}})
        state, reason = verdict(runs, diverged)
        if state is not None:
            attrs.update(state=state, reason=reason)
        where.add_trial(optuna.trial.create_trial(
            params=original.params, distributions=original.distributions,
            value=runs.mean if state is None else None,
            state=TrialState.COMPLETE if state is None else TrialState.PRUNED,
            user_attrs=attrs))


def run_optuna(sweep: Sweep, *, storage: Any = None, study_name: str | None = None,
               n_jobs: int = 1, pruner: str | BasePruner = "auto",
               progress: bool = True) -> list[TrialRecord]:
    """Run (or resume) the sweep until `sweep.n_trials` trials have finished."""
    autolr_pruner = make_pruner(pruner, sweep.n_evals)
    studies: list[optuna.Study] = []  # the one it runs, once made: read on an interrupt
    with _scratch_journal(storage, n_jobs) as scratch:
        try:
            return _run_study(sweep, scratch, study_name, n_jobs, autolr_pruner, progress,
                              studies)
        except KeyboardInterrupt as stop:
            if storage is not None or not studies or isinstance(stop, SweepInterrupted):
                raise  # a storage keeps them, and the same call resumes
            # in memory (or a scratch journal about to be removed) they would be lost
            raise SweepInterrupted(records_from_study(studies[0])) from stop


@contextlib.contextmanager
def _scratch_journal(storage: Any, n_jobs: int) -> Iterator[Any]:
    """`storage`, or for worker processes without one a journal file (no lock contention)
    in a temporary folder, removed after the sweep: nothing else could find it. The
    folder names its process, so that one left by a sweep killed outright (kill -9 skips
    the removal) is removed by the next such sweep once that process is gone."""
    if n_jobs <= 1 or storage is not None:
        yield storage
        return
    _remove_orphaned_scratch()
    folder = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
    try:
        yield os.path.join(folder, "sweep.log")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SCRATCH_PREFIX = "autolr-scratch-"
INTERRUPTED_EXIT = 130  # a worker stopped by Ctrl-C or SIGTERM, its trial closed
#: a scratch folder is an orphan only once its journal has been still this long too: a pid
#: seen as gone may be a live sweep's in another PID namespace sharing /tmp (a container)
ORPHAN_SECONDS = 24 * 3600


def _remove_orphaned_scratch() -> None:
    """Remove the scratch folders of sweeps whose process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and _still_for(folder) > ORPHAN_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


def _still_for(folder: Path) -> float:
    """Seconds since anything in `folder` (the folder too) last changed."""
    try:
        times = [folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())]
    except OSError:  # removed meanwhile
        return 0.0
    return time.time() - max(times)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def _run_study(sweep: Sweep, storage: Any, study_name: str | None, n_jobs: int,
               autolr_pruner: BasePruner, progress: bool,
               studies: list[optuna.Study]) -> list[TrialRecord]:
    if n_jobs > 1 and not isinstance(storage, (str, Path)):
        raise AutoLRError("n_jobs > 1 runs worker processes, which need a storage given as a "
                          "URL or journal file path, not a storage object.")
    study_name = study_name or (DEFAULT_STUDY if storage is not None else None)
    check_writable(storage)
    opened, stop = open_storage(storage), StopSafely()
    if isinstance(storage, (str, Path)):  # one autolr opened, never a storage object given
        stop.guard_storage(opened)
    with _quiet_optuna(), limit_torch_threads(sweep.torch_threads):
        study = optuna.create_study(
            storage=opened, pruner=autolr_pruner, study_name=study_name,
            direction=sweep.direction, load_if_exists=True)
        studies.append(study)
        study.sampler = study_sampler(study, sweep, n_jobs)
        claim_new_trials(study)
        _record_sweep(study, sweep)
        recover(study)  # trials of dead workers / interrupted runs: failed, re-run once
        remaining = sweep.n_trials - _count_taken(study)
        if remaining <= 0:  # said: a call that trains nothing looked like a finished sweep
            _say_nothing_to_run(study, sweep.n_trials)
        enough = StopAtNTrials(sweep.n_trials)
        confirmer = ConfirmLeader(sweep, objective=make_objective(sweep, autolr_pruner),
                                  processes=n_jobs)
        with SweepProgress(lambda: records_from_study(study), total=sweep.n_trials,
                           direction=sweep.direction, enabled=progress and remaining > 0), \
                sigterm_as_interrupt():
            if remaining > 0 and n_jobs == 1:
                with stop.handling(signal.SIGINT, signal.SIGTERM):
                    study.optimize(stop.guard_training(make_objective(sweep, autolr_pruner)),
                                   n_trials=remaining, timeout=sweep.timeout,
                                   catch=(Exception,),
                                   callbacks=[stop.guard_training(confirmer), stop.check,
                                              enough])
            elif remaining > 0:
                # queued trials (re-runs of interrupted ones) run here
                # first: on SQLite two workers can pop the same queued trial (no row locks)
                # and the slower one then dies telling a finished trial
                queued = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
                if queued:
                    study.optimize(make_objective(sweep, autolr_pruner),
                                   n_trials=min(queued, remaining), catch=(Exception,),
                                   callbacks=[enough])
                    remaining = sweep.n_trials - _count_taken(study)
                if remaining > 0:
                    _run_workers(sweep, autolr_pruner, str(storage), study.study_name,
                                 n_jobs, remaining)
        running = others_running(study)
        if running:  # its trials would not be in the pick: the last process to end picks
            logger.warning("another process is still running %d trial(s) of study %r: the "
                           "robust pick is left to the call that ends last", running,
                           study.study_name)
        else:
            with sigterm_as_interrupt():  # after the bar has closed: its lines stay whole
                confirmer.settle(study)
    return records_from_study(study)


def load_records(storage: Any, study_name: str | None) -> tuple[list[TrialRecord], dict]:
    """The finished trials of a stored study, and its metric/direction/epochs."""
    stored = stored_file(storage)
    if stored is not None and not stored.exists():  # opening it would create it, empty
        raise AutoLRError(f"no sweep is stored at {str(storage)!r}: {str(stored)!r} does not "
                          "exist. Check the path (a relative one is read from the current "
                          f"folder, {os.getcwd()!r}).")
    if stored is not None and stored.is_file() and stored.stat().st_size == 0:
        # opened, Optuna would write its tables into it: a read must write nothing
        raise AutoLRError(f"no sweep is stored at {str(storage)!r}: {str(stored)!r} is an "
                          "empty file. Check the path, or run autolr.tune (`autolr tune`) "
                          "with this storage first.")
    opened = open_storage(storage)
    summaries = optuna.get_all_study_summaries(opened)
    # The sweeps are autolr's studies; a plain-Optuna one sharing the file is not one
    # (named, it is refused below with the reason).
    sweeps = [s.study_name for s in summaries if "metric" in s.user_attrs]
    study_name = study_name or (sweeps[0] if len(sweeps) == 1 else None)
    if study_name not in {s.study_name for s in summaries}:
        raise unknown_study(storage, study_name, sweeps)
    with _quiet_optuna():
        study = optuna.load_study(study_name=study_name, storage=opened)
    _check_made_by_autolr(study, "read")  # its trials hold no config autolr could show
    stored_test = study.user_attrs.get("range_test")
    info = {"metric": study.user_attrs.get("metric", "value"),
            "direction": "minimize" if study.direction.name == "MINIMIZE" else "maximize",
            "epochs": study.user_attrs.get("epochs"), "study_name": study_name,
            "range_test": RangeTest.from_dict(stored_test) if stored_test else None,
            "ended": study.user_attrs.get(ENDED),
            "cut_short": study.user_attrs.get(CUT_SHORT),
            # stored with the settings (`Sweep.settings`); absent from an older autolr's
            "own_schedules": own_schedule_ids(study.user_attrs["own_schedules"])
            if isinstance(study.user_attrs.get("own_schedules"), dict) else None,
            "chance": study.user_attrs.get("chance"),
            "lr_space": lr_space(study.user_attrs.get("space"))}
    return records_from_study(study), info


def store_end(storage: Any, study_name: str | None, test: RangeTest | None,
              cut_short: str | None = None) -> bool:
    """Mark the stored sweep ended, its range test (if it ran one) and why it ran fewer
    trials than asked (if so) beside its trials, for reports made from storage; not while
    another process still runs trials of it (then False: the call that ends last marks
    it)."""
    with _quiet_optuna():
        study = optuna.load_study(study_name=study_name or DEFAULT_STUDY,
                                  storage=open_storage(storage))
        if others_running(study):
            return False
        if test is not None:
            study.set_user_attr("range_test", test.to_dict())
        study.set_user_attr(CUT_SHORT, cut_short)  # a later call that ran them all: None
        study.set_user_attr(ENDED, True)
        return True


def records_from_study(study: optuna.Study) -> list[TrialRecord]:
    """Every finished trial of a study as a TrialRecord. Running trials, and attempts
    interrupted by Ctrl-C or a dead worker (re-run by `recover`), are left out."""
    trials = study.get_trials(deepcopy=False, states=_FINISHED)
    confirmations = {t.user_attrs["confirms"]: t for t in trials if "confirms" in t.user_attrs}
    holdouts = {t.user_attrs["holds_out"]: t for t in trials if "holds_out" in t.user_attrs}
    return [_fold(_fold(_record(t), confirmations.get(t.number), "seed_values"),
                  holdouts.get(t.number), "holdout_values") for t in trials if _counts(t)]


def _fold(record: TrialRecord, runs: optuna.trial.FrozenTrial | None,
          field: str) -> TrialRecord:
    """A trial's record with the robust pick's extra runs of its config (`runs`, stored
    by `ConfirmLeader.store`) folded in."""
    if runs is None:
        return record
    attrs, cost = runs.user_attrs, runs.user_attrs.get("confirm", {})
    return with_runs(record, field, tuple(attrs.get(field, ())), cost.get("epochs", 0.0),
                     cost.get("seconds", 0.0), attrs.get("state"), attrs.get("reason"))


def _record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    attrs = trial.user_attrs
    if trial.state == TrialState.FAIL:
        state, reason = "failed", attrs["error"]
    else:
        state = attrs.get("state", "complete" if trial.state == TrialState.COMPLETE else "pruned")
        reason = attrs.get("reason")
    run = attrs.get("run", {})
    return TrialRecord(
        number=trial.number, state=state, params=attrs.get("config", {}), reason=reason,
        values=tuple(attrs.get("values", ())), train_losses=tuple(attrs.get("train_losses", ())),
        val_losses=tuple(attrs.get("val_losses", ())), epochs_run=run.get("epochs", 0.0),
        steps_run=run.get("steps", 0), seconds=run.get("seconds", 0.0),
        is_baseline=bool(attrs.get("baseline")), node=attrs.get("owner", {}).get("host"),
        rung_epochs=run.get("rung_epochs"), rung_steps=run.get("rung_steps"),
        steps_back_from=attrs.get("steps_back"))


def make_sampler(space: SearchSpace, n_train: int, seed: int, *,
                 baseline: dict[str, Any] | None = None, baseline_trial: int = BASELINE_TRIAL,
                 n_jobs: int = 1, worker: int = 0, design_trials: int = DESIGN_TRIALS,
                 trials_before: int = 0) -> optuna.samplers.BaseSampler:
    """autolr's sampler (both backends): TPE, whose first `design_trials` trials come
    from a space-filling design (`autolr.design`) instead of random draws, and whose
    trial at place `baseline_trial` is the default config (`baseline`: its params), when
    the space holds it. Places are trial numbers less the trials off the plan before
    them (`autolr.design.planned_place`: re-runs, the robust pick's runs).
    `trials_before`: the trials the study held already (a resume), which move TPE's random
    stream on: started again where the first call's did, it drew the same configs again."""
    # group=True: TPE models each family's conditional parameters on their own.
    # constant_liar (a running trial counts as bad): parallel workers do not all pile onto
    # the same promising point. Measured without it, two at once, 30 live sweeps: digits
    # better, MNIST-1D worse, diabetes a tie, all within the noise (benchmarks/RESULTS.md).
    # one stream for the process while it runs the study alone; a stream a trial when
    # other processes run trials beside it (two calls on one storage drew the same configs)
    tpe = SharedStreams(functools.partial(_tpe, workers=n_jobs),
                        (seed + 1000 * worker + 7919 * trials_before) % 2**32)
    design: list[dict[str, Any]] = (startup_design(space, n_train, design_trials, seed)
                                    if design_trials > 0 else [])
    if baseline is not None:  # {}: a trial TPE samples as it would
        design += [{}] * (baseline_trial - len(design))
        design.insert(baseline_trial, dict(baseline))
    return DesignedStartSampler(tpe, design, seed) if design else tpe


def _tpe(stream: int, liar: bool, *, workers: int) -> optuna.samplers.TPESampler:
    """autolr's TPE on random stream `stream`; the constant liar with parallel workers or
    when `liar` (a module's function: Ray's searcher pickles the sampler)."""
    with warnings_quiet():
        return optuna.samplers.TPESampler(
            seed=stream, multivariate=True, group=True, n_startup_trials=STARTUP_TRIALS,
            constant_liar=liar or workers > 1)


def sweep_sampler(sweep: Sweep, n_jobs: int = 1, worker: int = 0,
                  design_trials: int = DESIGN_TRIALS, *, baseline_ran: bool = False,
                  trials_before: int = 0) -> optuna.samplers.BaseSampler:
    """`make_sampler` for a sweep: its space, seed and default config, which a sweep of
    fewer than BASELINE_TRIAL + 1 trials runs as its last trial; `baseline_ran`: the
    study ran it already, it does not run again."""
    return make_sampler(sweep.space, sweep.n_train, sweep.seed,
                        baseline=None if baseline_ran else sweep.baseline,
                        baseline_trial=max(0, min(BASELINE_TRIAL, sweep.n_trials - 1)),
                        n_jobs=n_jobs, worker=worker, design_trials=design_trials,
                        trials_before=trials_before)


def study_sampler(study: optuna.Study, sweep: Sweep, n_jobs: int = 1,
                  worker: int = 0) -> optuna.samplers.BaseSampler:
    """`sweep_sampler` for a study that may have run trials already: the default config
    runs once per study, even when a sweep is extended to more trials (which would move
    its trial number) or resumes a study from an autolr that ran it first.
    A re-run of an interrupted default-config trial is still marked as one. Each trial
    names its process (`ClaimingSampler`), so a resume can tell if it died."""
    trials = study.get_trials(deepcopy=False)
    ran = any(t.user_attrs.get("baseline") for t in trials)
    ended = sum(t.state in _FINISHED for t in trials)  # not the trials workers just began
    return ClaimingSampler(sweep_sampler(sweep, n_jobs, worker, baseline_ran=ran,
                                         trials_before=ended))


def _record_sweep(study: optuna.Study, sweep: Sweep) -> None:
    """Keep what a report needs to read this study back without the Python session, and
    what tells a resume with other settings apart (refused: `Sweep.check_resumable`). A
    study autolr did not make is refused (`_check_made_by_autolr`); the direction it
    was created with is the one it keeps, whatever an older autolr stored."""
    _check_made_by_autolr(study)
    settings = sweep.settings()
    stored = {key: study.user_attrs[key] for key in settings if key in study.user_attrs}
    direction = "/".join(d.name.lower() for d in study.directions)
    sweep.check_resumable(study.study_name, {**stored, "direction": direction})
    for key, value in settings.items():  # a study from an older autolr lacks some
        if key not in stored:
            study.set_user_attr(key, value)
    study.set_user_attr(ENDED, False)  # until `store_end`: a report can tell it is unfinished


def _check_made_by_autolr(study: optuna.Study, doing: str = "resume") -> None:
    """Refuse a same-name study of someone else's (plain Optuna, say) before training:
    resumed, its trials would be mixed with autolr's. Every autolr study keeps its
    `metric` from its first call on (every version), before its first trial; an empty
    study without it (one killed between its creation and that write) is taken."""
    if "metric" in study.user_attrs:
        return
    trials = study.get_trials(deepcopy=False)
    if trials or study.user_attrs:
        raise AutoLRError(
            f"study {study.study_name!r} exists in this storage but was not made by autolr "
            f"(it holds {len(trials)} trial(s) and none of autolr's settings), so autolr "
            f"cannot {doing} it; choose another study_name (--study NAME on the command line).")


def _counts(trial: optuna.trial.FrozenTrial) -> bool:
    """Does this trial count towards n_trials? An interrupted one (Ctrl-C, SIGTERM, a
    killed worker) does not: a resumed sweep re-runs it instead."""
    if "confirms" in trial.user_attrs or "holds_out" in trial.user_attrs:
        return False  # the robust pick's extra and held-out seeds: not a trial
    return not interrupted(trial)


def _count_finished(study: optuna.Study) -> int:
    return sum(map(_counts, study.get_trials(deepcopy=False, states=_FINISHED)))


def _say_nothing_to_run(study: optuna.Study, n_trials: int) -> None:
    taken = _count_taken(study)
    complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    logger.warning(
        "study %r holds %d trial(s) already, n_trials=%d: no new search trial runs%s; a "
        "larger n_trials (--trials) extends the sweep, another study_name (--study NAME) "
        "starts a new one", study.study_name, taken, n_trials,
        " (none of them completed: after a fix, start a new study)" if not complete else "")


def _count_taken(study: optuna.Study) -> int:
    """Trials that count towards n_trials or will: the finished ones, and those running
    in a live process (another process on the storage, resuming the same study, say), as
    Optuna's MaxTrialsCallback counts RUNNING ones."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return _count_finished(study) + sum(_counts(t) and not is_orphan(t) for t in running)


class StopAtNTrials:
    """Optuna callback: stop the sweep once `n_trials` trials are taken (`_count_taken`),
    so that processes sharing a study stop at n_trials between them, not each at its own
    count. (Two processes can still each start one at the same moment.)"""

    def __init__(self, n_trials: int) -> None:
        self.n_trials = n_trials
        self.stopped = False

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if _count_taken(study) >= self.n_trials:
            self.stopped = True
            study.stop()


def _run_workers(sweep: Sweep, pruner: AutoLRPruner, storage: str, study_name: str,
                 n_jobs: int, n_trials: int) -> None:
    """n_jobs processes on one storage, each with `sweep.torch_threads` torch threads (no
    oversubscription), taking the `n_trials` one at a time from a shared count: exact
    total, no overshoot, and a worker whose trials ran short takes more (fixed shares left
    one idle for up to a sixth of the sweep: trials differ in batch size and pruning)."""
    context = multiprocessing.get_context("fork")
    threads = sweep.torch_threads
    unclaimed = context.Value("i", n_trials)
    workers = [context.Process(target=_worker, args=(sweep, pruner, storage, study_name, i,
                                                      n_jobs, unclaimed, threads, os.getpid()),
                               daemon=True)
               for i in range(min(n_jobs, n_trials))]
    def started() -> list[Any]:  # a stop can come between two starts
        return [worker for worker in workers if worker.pid is not None]

    try:
        for worker in workers:
            start_child(worker)
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        # Ctrl-C from a terminal reaches the workers too, but SIGTERM to this process
        # alone (a scheduler, `kill`) does not: pass it on (terminate() sends SIGTERM,
        # which a worker takes as Ctrl-C). Each closes its running trial; wait for that
        for worker in started():
            if worker.is_alive():
                worker.terminate()
        for worker in started():
            worker.join(timeout=30)
        raise
    finally:
        for worker in started():
            if worker.is_alive():
                worker.terminate()
                worker.join()
    crashed = [w.exitcode for w in workers if w.exitcode != 0]
    if crashed and set(crashed) == {INTERRUPTED_EXIT}:
        # Ctrl-C to the whole process group (a terminal): each worker closed its trial and
        # left; the parent's own interrupt came while it waited on them
        raise KeyboardInterrupt
    if crashed:
        raise SweepStopped(f"{len(crashed)} worker process(es) died (exit codes {crashed}); "
                           "finished trials are kept in the storage.")


class StopSafely:
    """Ctrl-C or SIGTERM as KeyboardInterrupt, raised only where Optuna can still close
    the running trial: at once while the objective trains, else at the end of a storage
    call made while training, at the next trial's start or after a trial ends. Raised
    inside Optuna's own write of a trial's state, it left that trial RUNNING (seen once in
    the kill -9 test of the workers); inside a SQLite commit it became a storage error
    that failed the trial and let the sweep go on, or left the storage's heartbeat thread
    running, so the process never exited (both seen in the CLI's Ctrl-C test, under
    load). Workers and the in-process sweep both use it."""

    def __init__(self) -> None:
        self.training = False
        self.writing = 0
        self.pending = False

    def on_signal(self, _signum: int, _frame: Any) -> None:
        self.pending = True  # kept even when raised: a raise that lands in a garbage
        # collector's callback is printed and dropped, and the sweep would go on
        if self.training and not self.writing:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def handling(self, *signums: int) -> Iterator[None]:
        """`signums` handled by `on_signal` inside the block (the main thread only: no
        other can set a handler), the previous handlers back after it; a signal that came
        after the block's last safe point is raised as it ends."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        before = {signum: signal.signal(signum, self.on_signal) for signum in signums}
        try:
            yield
            self.check()
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)

    def guard_storage(self, storage: Any) -> Any:
        """`storage` with each call (reads too: one interrupted mid-query leaves the
        connection in an unknown state; and the private ones Optuna's cache calls) as a
        section the signal waits out."""
        calls = ("set_", "create_", "get_", "_set_", "_create_", "_get_")
        for name in [n for n in dir(storage) if n.startswith(calls)]:
            setattr(storage, name, self._writing(getattr(storage, name)))
        return storage

    def guard_training(self, train: Callable[..., Any]) -> Callable[..., Any]:
        """`train` (the objective, or the robust pick's callback) as a section the signal
        stops at once."""
        def guarded(*args: Any) -> Any:
            self.check()
            self.training = True
            try:
                return train(*args)
            finally:
                self.training = False
        return guarded

    def check(self, *_args: Any) -> None:
        """Raise the signal that came at an unsafe moment (also an Optuna callback)."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def _writing(self, write: Callable[..., Any]) -> Callable[..., Any]:
        def section(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                return write(*args, **kwargs)  # the progress bar's reads: signals go to main
            self.writing += 1
            try:
                return write(*args, **kwargs)
            finally:
                self.writing -= 1
                if self.training and not self.writing:
                    self.check()
        return section


def _claim(unclaimed: Any) -> bool:
    """Take one of the trials left to start (a shared multiprocessing.Value), if any."""
    with unclaimed.get_lock():
        if unclaimed.value <= 0:
            return False
        unclaimed.value -= 1
        return True


def _worker(sweep: Sweep, pruner: AutoLRPruner, storage: str, study_name: str, index: int,
            n_jobs: int, unclaimed: Any, threads: int, parent: int) -> None:
    import torch

    stop = StopSafely()
    for signum in (signal.SIGINT, signal.SIGTERM):  # closes its trial, then exits
        signal.signal(signum, stop.on_signal)
    die_with(parent)  # the parent killed outright: SIGTERM, not a sweep going on unseen
    torch.set_num_threads(threads)
    with _quiet_optuna():
        study = optuna.load_study(study_name=study_name, pruner=pruner,
                                  storage=stop.guard_storage(open_storage(storage)))
        study.sampler = study_sampler(study, sweep, n_jobs, index + 1)
        claim_new_trials(study)
        objective = stop.guard_training(make_objective(sweep, pruner))
        enough = StopAtNTrials(sweep.n_trials)  # other processes on the study count too
        callbacks = [stop.guard_training(ConfirmLeader(sweep)), stop.check, enough]
        deadline = None if sweep.timeout is None else time.monotonic() + sweep.timeout
        try:
            while not enough.stopped and _claim(unclaimed):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break  # as optimize's timeout: no trial starts past it
                study.optimize(objective, n_trials=1, timeout=left, catch=(Exception,),
                               callbacks=callbacks)
        except KeyboardInterrupt:  # the parent reports it; Optuna closed the trial as failed
            os._exit(INTERRUPTED_EXIT)


@contextlib.contextmanager
def limit_torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op threads for the sweep, restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _NoInterruptTraceback(logging.Filter):
    """Optuna logs a trial stopped by Ctrl-C or SIGTERM as failed, with the traceback of
    the KeyboardInterrupt, then 'failed with value None': noise above autolr's own word
    that the sweep was interrupted (and how to resume it). Both are dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.after_interrupt = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[0] if record.exc_info else None
        if error is not None and issubclass(error, KeyboardInterrupt):
            self.after_interrupt = True
            return False
        if self.after_interrupt and "failed with value" in record.getMessage():
            self.after_interrupt = False
            return False
        return True


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; autolr reports progress itself, and an
    interruption (`_NoInterruptTraceback`)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    no_traceback = _NoInterruptTraceback()
    trials_log = logging.getLogger("optuna.study._optimize")  # where Optuna logs a failed trial
    trials_log.addFilter(no_traceback)
    try:
        yield
    finally:
        trials_log.removeFilter(no_traceback)
        optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    """TPE's multivariate/group options are 'experimental' in Optuna: do not warn users."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
