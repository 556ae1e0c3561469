"""Sweeps that lose nothing: dead workers, kills, stale locks, parallel workers, bad input."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState
from processes import dead_pid, survivors
from sklearn.datasets import load_digits

import autolr
import autolr._tune
from autolr import AutoLRError
from autolr.backends.optuna import DESIGN_TRIALS
from autolr.design import startup_design
from autolr.space import SearchSpace
from autolr.storage import ClaimingSampler, PidJournalLock, claim_new_trials, open_storage, owner

torch.set_num_threads(1)
X, Y = load_digits(return_X_y=True)
DIGITS = (X / 16.0, Y)


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


def storage_url(tmp_path: Path, kind: str) -> str:
    return f"sqlite:///{tmp_path / 'sweep.db'}" if kind == "sqlite" else str(tmp_path / "s.log")


# -- trials of dead processes -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_left_running_by_a_dead_process_is_failed_and_rerun_once(tmp_path, kind):
    url = storage_url(tmp_path, kind)
    autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False, storage=url,
                study_name="s")
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    study.enqueue_trial({"lr": 0.01, "schedule": "constant", "warmup_fraction": 0.0,
                         "batch_size": 64})
    orphan = study.ask()  # as a worker would, then it dies mid-trial
    config = autolr.SearchSpace.preset("default").sample(orphan, 1437)
    orphan.set_user_attr("config", config.to_dict())
    orphan.set_user_attr("owner", {"host": os.uname().nodename, "pid": dead_pid()})

    result = autolr.tune(mlp(), DIGITS, n_trials=4, epochs=1, progress=False, storage=url,
                         study_name="s")
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert study.trials[orphan.number].state == TrialState.FAIL
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retries) == 1 and retries[0].params["lr"] == 0.01
    assert len(result.records) == 4  # the orphan does not count; its retry does
    assert not study.get_trials(states=(TrialState.RUNNING,))
    # resuming again neither re-runs the orphan twice nor adds trials
    again = autolr.tune(mlp(), DIGITS, n_trials=4, epochs=1, progress=False, storage=url,
                        study_name="s")
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert len([t for t in study.trials if t.user_attrs.get("retry_of") == orphan.number]) == 1
    assert len(again.records) == 4


def interrupt_at(monkeypatch, run: int) -> None:
    """Ctrl-C while the `run`-th trainer call of the sweep (1 = the first) trains."""
    train, calls = autolr._tune.train_trial, []

    def training(*args, **kwargs):
        calls.append(1)
        if len(calls) == run:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(autolr._tune, "train_trial", training)


def test_a_resumed_sweep_draws_new_configs_not_the_first_calls_again(tmp_path, monkeypatch):
    # TPE's random stream started again where the first call's had: the resume's first
    # random start-up trial was the first call's (trials 5 and 6 trained twice)
    sweep = dict(n_trials=12, epochs=1, progress=False, storage=storage_url(tmp_path, "sqlite"),
                 study_name="s", confirm_seeds=0, range_test=False)
    interrupt_at(monkeypatch, run=8)  # trials 0-6 finish, 7 is interrupted
    with pytest.raises(KeyboardInterrupt):
        autolr.tune(mlp(), DIGITS, **sweep)
    monkeypatch.undo()
    result = autolr.tune(mlp(), DIGITS, **sweep)
    tried = [json.dumps(r.params, sort_keys=True) for r in result.records]
    assert len(result.records) == 12 and len(set(tried)) == len(tried)


def test_a_stored_sweep_stopped_before_its_end_says_so_until_it_ends(tmp_path, monkeypatch):
    # a report of an interrupted sweep read like a finished one: an unconfirmed best, and
    # "no range test" put down to range_test=False
    from autolr.reporting.data import extract
    from autolr.reporting.sections import finder, summary

    url = storage_url(tmp_path, "sqlite")
    sweep = dict(n_trials=3, epochs=1, progress=False, storage=url, study_name="s",
                 confirm_seeds=0, range_test=False)
    interrupt_at(monkeypatch, run=3)
    with pytest.raises(KeyboardInterrupt) as stopped:
        autolr.tune(mlp(), DIGITS, **sweep)
    assert not isinstance(stopped.value, autolr.SweepInterrupted)  # kept in the storage
    monkeypatch.undo()
    stopped = autolr.load(url, "s")
    assert stopped.ended is False and "last call has not reached its end" in stopped.summary()
    data = extract(stopped)
    assert "last call has not reached its end (it was interrupted" in summary(data, {})
    assert "a sweep stopped before its end" in finder(data, {})
    done = autolr.tune(mlp(), DIGITS, **sweep)
    assert done.ended is True and autolr.load(url, "s").ended is True
    assert "has not reached its end" not in autolr.load(url, "s").summary()
    saved = autolr.TuneResult.load(done.save(tmp_path / "r.json"))
    assert saved.ended is True


def test_ctrl_c_on_a_sweep_without_storage_hands_over_its_finished_trials(monkeypatch):
    # they lived only in the call, and were gone with the KeyboardInterrupt (helper-40)
    interrupt_at(monkeypatch, run=4)
    sweep = dict(n_trials=6, epochs=1, progress=False, confirm_seeds=0, range_test=False)
    with pytest.raises(autolr.SweepInterrupted) as stopped:
        autolr.tune(mlp(), DIGITS, **sweep)
    assert isinstance(stopped.value, KeyboardInterrupt)  # a script still stops
    result = stopped.value.result
    assert len(result.records) == 3 and result.best_record is not None
    assert "Ctrl-C stopped the sweep after 3 finished trial(s) of its 6" in result.summary()
    assert "stop.result" in str(stopped.value)


def test_an_interrupted_trials_rerun_takes_no_planned_trials_place(tmp_path, monkeypatch):
    # the design's points and the default config are planned by place in the study: a
    # re-run queued on resume must not take one (whose point would then never run)
    sweep = dict(n_trials=5, epochs=1, progress=False, storage=storage_url(tmp_path, "journal"),
                 study_name="s", confirm_seeds=0, range_test=False)
    interrupt_at(monkeypatch, run=3)  # trial 2
    with pytest.raises(KeyboardInterrupt):
        autolr.tune(mlp(), DIGITS, **sweep)
    monkeypatch.undo()
    result = autolr.tune(mlp(), DIGITS, **sweep)
    study = optuna.load_study(study_name="s", storage=open_storage(sweep["storage"]))
    ran = [t for t in study.trials if t.state != TrialState.FAIL]
    assert [t.number for t in study.trials if t.state == TrialState.FAIL] == [2]
    assert [t.user_attrs.get("retry_of") for t in ran].count(2) == 1
    # a 5-trial sweep's plan: the design's first 4 points, then the default config
    design = startup_design(SearchSpace.preset("default"), study.user_attrs["n_train"],
                            DESIGN_TRIALS, seed=0)
    for point in design[:4]:
        assert sum(t.params["lr"] == pytest.approx(point["lr"]) for t in ran) == 1, point
    assert sum(bool(t.user_attrs.get("baseline")) for t in ran) == 1
    assert len(ran) == len(result.records) == 5


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # study.ask outside optimize
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_names_its_process_as_soon_as_optuna_creates_it(tmp_path, kind):
    # a kill between Optuna creating a trial and the objective starting must not leave a
    # trial that no resume can tell is dead: the owner is there before any sampling
    sampler = ClaimingSampler(optuna.samplers.RandomSampler(seed=3))
    study = optuna.create_study(storage=open_storage(storage_url(tmp_path, kind)),
                                sampler=sampler)
    trial = study.ask()
    stored = study.get_trials(deepcopy=False)[trial.number]
    assert stored.user_attrs["owner"] == {"host": os.uname().nodename, "pid": os.getpid()}
    assert not stored.params
    # otherwise it is the sampler it wraps: the same draws
    plain = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask()
    assert trial.suggest_float("x", 0.0, 1.0) == plain.suggest_float("x", 0.0, 1.0)
    # a new trial names it in the very write that creates it (no sampler involved: a
    # kill -9 right after the creation leaves a trial a resume can tell is dead)
    (tmp_path / "created").mkdir()
    created = optuna.create_study(storage=open_storage(storage_url(tmp_path / "created", kind)))
    claim_new_trials(created)
    fresh = created.ask()
    reread = optuna.load_study(study_name=created.study_name,
                               storage=open_storage(storage_url(tmp_path / "created", kind)))
    assert reread.trials[fresh.number].user_attrs == {"owner": owner()}
    assert reread.trials[fresh.number].state == TrialState.RUNNING
    # and autolr's sweeps use it: every stored trial names the host and process
    (tmp_path / "tune").mkdir()
    url = storage_url(tmp_path / "tune", kind)
    records = autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False, storage=url,
                          study_name="s").records
    assert [r.node for r in records] == [os.uname().nodename] * 2


def running_elsewhere(url: str, pid: int) -> None:
    """A trial another live process (`pid`) on the storage is training right now."""
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    trial = study.ask()
    trial.set_user_attr("config", {"lr": 0.01})
    trial.set_user_attr("owner", {"host": os.uname().nodename, "pid": pid})


def test_processes_sharing_a_study_stop_at_n_trials_between_them(tmp_path, monkeypatch):
    url = storage_url(tmp_path, "journal")
    sweep = dict(epochs=1, progress=False, storage=url, study_name="s", confirm_seeds=0,
                 range_test=False)
    autolr.tune(mlp(), DIGITS, n_trials=1, **sweep)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running_elsewhere(url, other.pid)  # trial 1, in the other process
        train = autolr._tune.train_trial

        def training(*args, **kwargs):  # while this one trains, the other starts trial 3
            if len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == 3:
                running_elsewhere(url, other.pid)
            return train(*args, **kwargs)

        monkeypatch.setattr(autolr._tune, "train_trial", training)
        result = autolr.tune(mlp(), DIGITS, n_trials=4, **sweep)
    finally:
        other.kill()
        other.wait()
    # 1 finished + 2 running elsewhere + 1 of its own: 4; it started no second one
    assert [r.number for r in result.records] == [0, 2]


def test_recovering_a_study_warns_of_nothing_experimental(tmp_path):
    from autolr.storage import recover

    url = storage_url(tmp_path, "sqlite")
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    with pytest.warns(UserWarning, match="Heartbeat"):  # ask outside optimize (as a worker)
        study.ask()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recover(study)
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


def test_a_stale_journal_lock_of_a_dead_process_is_cleared_at_once(tmp_path):
    journal = tmp_path / "s.log"
    Path(f"{journal}.lock").write_text(f"{os.uname().nodename} {dead_pid()}")
    started = time.monotonic()
    result = autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False,
                         storage=str(journal))
    assert len(result.records) == 2
    assert time.monotonic() - started < 20  # Optuna's own lock waits 30 s, then some


def test_a_live_holders_journal_lock_is_respected(tmp_path):
    lock = PidJournalLock(str(tmp_path / "s.log"))
    Path(lock._lock_file).write_text(f"{os.uname().nodename} {os.getpid()}")
    assert not lock._holder_is_gone(waited=1.0)
    os.unlink(lock._lock_file)
    assert lock.acquire() and Path(lock._lock_file).exists()
    lock.release()
    assert not Path(lock._lock_file).exists()


@pytest.mark.slow
def test_a_sqlite_write_waits_out_a_reader_that_holds_the_file_past_5_seconds(tmp_path):
    """A report or `autolr.load` reading the file while the sweep writes: with Python's
    default 5 s lock wait the sweep's write fails ("database is locked"); the storages
    autolr opens wait longer."""
    import sqlite3
    import threading

    url = storage_url(tmp_path, "sqlite")
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    held = threading.Event()

    def read_for(seconds: float) -> None:
        reader = sqlite3.connect(tmp_path / "sweep.db", isolation_level=None)
        reader.execute("BEGIN")  # a read transaction: the shared lock stays until COMMIT
        reader.execute("SELECT * FROM studies").fetchall()
        held.set()
        time.sleep(seconds)
        reader.execute("COMMIT")
        reader.close()

    thread = threading.Thread(target=read_for, args=(6.0,))
    thread.start()
    held.wait()
    started = time.monotonic()
    study.set_user_attr("written", True)  # its commit waits for the reader to finish
    thread.join()
    assert time.monotonic() - started > 5.0
    assert optuna.load_study(study_name="s", storage=url).user_attrs == {"written": True}


# -- kill -9 and SIGTERM at random points -----------------------------------------------
SWEEP = textwrap.dedent("""
    import sys, torch
    from sklearn.datasets import load_digits
    import autolr
    X, y = load_digits(return_X_y=True)
    model = lambda: torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                        torch.nn.Linear(64, 10))
    autolr.tune(model, (X / 16, y), n_trials=int(sys.argv[2]), epochs=6, progress=False,
                storage=sys.argv[1], study_name="s", pruner="none",
                space={"batch_sizes": [16, 32]})  # ~0.5 s a trial: kills land mid-trial
""")


def finished(url: str) -> dict[int, tuple]:
    try:
        return {r.number: (r.state, r.values) for r in autolr.load(url, "s").records}
    except AutoLRError:  # not created yet
        return {}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_kills_at_random_points_lose_no_finished_trial(tmp_path, kind):
    url, n_trials = storage_url(tmp_path, kind), 30
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    rng = random.Random(7)
    kept: dict[int, tuple] = {}
    for kill in [signal.SIGKILL] * 5 + [signal.SIGTERM]:
        process = subprocess.Popen([sys.executable, str(script), url, str(n_trials)])
        deadline = time.monotonic() + 60
        while len(finished(url)) <= len(kept) and time.monotonic() < deadline:
            time.sleep(0.1)  # until this run has finished a trial of its own...
        time.sleep(rng.uniform(0.0, 0.6))  # ...then at a random point of the next ones
        process.send_signal(kill)
        code = process.wait(timeout=60)
        # SIGTERM is handled like Ctrl-C: the trial is closed, KeyboardInterrupt ends the
        # script (exit by SIGINT), rather than the process dying of SIGTERM mid-write.
        assert code == (-signal.SIGKILL if kill == signal.SIGKILL else -signal.SIGINT)
        now = finished(url)
        assert all(now[n] == values for n, values in kept.items()), "a finished trial changed"
        kept = now
    subprocess.run([sys.executable, str(script), url, str(n_trials)], check=True, timeout=600)
    final = finished(url)
    stepped = [r for r in autolr.load(url, "s").records if r.steps_back_from is not None]
    assert len(final) == n_trials + len(stepped) and len(stepped) <= 1  # + a step back
    assert all(final[n] == values for n, values in kept.items())
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert not study.get_trials(states=(TrialState.RUNNING,))
    interrupted = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(kept) < n_trials and interrupted, "the kills must have interrupted something"
    retried = [t.user_attrs["retry_of"] for t in study.trials if "retry_of" in t.user_attrs]
    assert sorted(retried) == sorted(set(retried))  # each interrupted trial re-run once


# -- parallel workers on one storage ----------------------------------------------------
WORKERS = textwrap.dedent("""
    import sys, torch
    from sklearn.datasets import load_digits
    import autolr
    X, y = load_digits(return_X_y=True)
    model = lambda: torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                        torch.nn.Linear(64, 10))
    autolr.tune(model, (X / 16, y), n_trials=1000, epochs=6, progress=False, n_jobs=2,
                storage=sys.argv[1], study_name="s", pruner="none")
""")


@contextlib.contextmanager
def two_workers_training(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, list[int]]]:
    """A sweep of two worker processes (WORKERS) on a journal, once two trials finished:
    (its journal, the sweep's process, its workers); the process is killed at the end."""
    url = str(tmp_path / "s.log")
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    parent = subprocess.Popen([sys.executable, str(script), url], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(finished(url)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers are training
        workers = children_of(parent.pid)
        assert len(workers) == 2
        yield url, parent, workers
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_workers_stop_and_close_their_trials_when_the_parent_is_killed(tmp_path):
    # kill -9 of the sweep's process: its workers must not go on with the sweep unseen
    with two_workers_training(tmp_path) as (url, _, workers):
        pass
    assert not survivors(workers, within=20), "the workers went on after their parent died"
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert not study.get_trials(states=(TrialState.RUNNING,))  # each closed its own
    count = len(study.trials)
    time.sleep(1.0)
    assert len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == count


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc lists children")
def test_sigterm_to_the_sweeps_process_alone_stops_its_workers_cleanly(tmp_path):
    # a scheduler or `kill PID` signals the main process only, not its process group
    with two_workers_training(tmp_path) as (url, parent, workers):
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=20) == -signal.SIGINT  # ended as by Ctrl-C
    assert not survivors(workers, within=5), "the workers went on after the SIGTERM"
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert not study.get_trials(states=(TrialState.RUNNING,))
    stopped = [t for t in study.trials if t.state == TrialState.FAIL]
    assert stopped and all("error" not in t.user_attrs for t in stopped)  # to re-run
    assert len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == len(
        study.trials)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc lists children")
def test_ctrl_c_to_the_whole_process_group_is_an_interrupt_not_dead_workers(tmp_path):
    # a terminal's Ctrl-C reaches the workers too: they closed their trials and exited
    # 130, and the sweep then said "2 worker process(es) died", exit 1
    with two_workers_training(tmp_path) as (url, parent, workers):
        os.killpg(parent.pid, signal.SIGINT)
        assert parent.wait(timeout=20) == -signal.SIGINT  # ended as by Ctrl-C
    assert not survivors(workers, within=5)
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    assert not study.get_trials(states=(TrialState.RUNNING,))


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listed:
        return [int(child) for child in listed.read().split()]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_four_workers_fifty_trials_each_lose_and_repeat_nothing(tmp_path, kind):
    url = storage_url(tmp_path, kind)
    tiny = (X[:300] / 16.0, Y[:300])
    result = autolr.tune(mlp(), tiny, n_jobs=4, n_trials=200, epochs=1, progress=False,
                         storage=url, study_name="s", pruner="none")
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    # the robust pick's extra and held-out seeds are stored as trials that confirm or
    # hold out one: not counted
    trials = [t for t in study.trials if not {"confirms", "holds_out", "steps_back"}
              & set(t.user_attrs)]  # the searched trials, not the robust pick's runs
    assert len(study.trials) - len(trials) >= 2  # the pick ran, and its held-out seed
    assert len(trials) == 200
    assert sorted(t.number for t in trials) == list(range(200))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    searched = [r for r in result.records if r.steps_back_from is None]
    assert len(searched) == 200 and len(result.records) <= 201  # + the pick's step back
    assert result.counts()["failed"] == 0


# -- divergence, whatever the pruner ----------------------------------------------------
class Blows(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.net, self.value, self.steps = mlp(), value, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.steps += 1
            if self.steps > 3:
                return out * 0 + self.value
        return out


@pytest.mark.parametrize("pruner", ["auto", "median", "successive_halving", "hyperband", "none"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_outputs_diverge_with_every_pruner(pruner, value):
    result = autolr.tune(lambda: Blows(value), DIGITS, n_trials=2, epochs=2, progress=False,
                         pruner=pruner)
    assert [r.state for r in result.records] == ["diverged", "diverged"]
    assert all(r.steps_run == 4 for r in result.records)
    assert result.best_record is None


@pytest.mark.parametrize("pruner", ["auto", "hyperband", "none"])
def test_a_minus_infinite_metric_is_divergence_not_the_best_trial(pruner):
    def metric(outputs, targets):
        return torch.tensor(-math.inf if metric.calls >= 1 else 1.0)
    metric.calls = 0

    def counting(outputs, targets):
        value = metric(outputs, targets)
        metric.calls += 1
        return value

    result = autolr.tune(mlp(), DIGITS, n_trials=2, epochs=2, progress=False, pruner=pruner,
                         metric=counting, direction="minimize")
    states = [r.state for r in result.records]
    assert "diverged" in states
    assert result.best_record is None or math.isfinite(result.best_value)


def test_a_loss_not_finite_before_any_step_is_refused_before_training():
    def log_of_zero(outputs, targets):  # a typo'd loss: every trial would "diverge"
        return torch.log(torch.zeros(())) + outputs.sum() * 0

    with pytest.raises(AutoLRError, match=r"the loss is -inf on the untrained model's "
                                          r"output .* before any step"):
        autolr.tune(mlp(), DIGITS, loss=log_of_zero, n_trials=1, progress=False)


def test_r2_over_constant_validation_targets_is_refused_before_training():
    rng = torch.Generator().manual_seed(0)
    X = torch.randn(60, 4, generator=rng)
    train, val = (X[:40], torch.randn(40, 1, generator=rng)), (X[40:], torch.ones(20, 1))
    model = torch.nn.Linear(4, 1)
    with pytest.raises(AutoLRError, match=r"'r2' is -inf .* variance of the validation "
                                          r"targets, which is 0 \(20 rows, all alike\)"):
        autolr.tune(model, (train, val), metric="r2", n_trials=1, progress=False)


def test_a_metric_that_fails_is_not_blamed_on_the_learning_rate(caplog):
    def undefined(outputs, targets):
        return torch.tensor(math.nan)

    with caplog.at_level("WARNING", logger="autolr"):
        result = autolr.tune(mlp(), DIGITS, metric=undefined, direction="maximize",
                             n_trials=2, epochs=1, progress=False, confirm_seeds=0)
    assert "'undefined' is nan on the untrained model" in caplog.text  # said before the sweep
    assert [r.state for r in result.records] == ["diverged", "diverged"]
    assert "became nan while the loss stayed finite" in result.records[0].reason
    with pytest.raises(AutoLRError, match="The metric, not training, failed") as error:
        _ = result.best_config
    assert "lower learning-rate range" not in str(error.value)


# -- bad input, the rest of the list ----------------------------------------------------
@pytest.mark.parametrize("space, message", [
    ({"lr": (float("nan"), 1.0)}, "finite"),
    ({"lr": (1e-5, float("inf"))}, "finite"),
    ({"schedules": []}, "at least one"),
    ({"batch_sizes": []}, "batch_sizes"),
    ({"batch_sizes": [0, 32]}, "integers >= 1"),
    ({"optimizers": []}, "at least one"),
    ({"warmup": (0.0, 1.0)}, "high < 1"),
    ({"learning_rate": (1e-4, 1e-1)}, "unknown key.*learning_rate.*valid keys"),
])
def test_bad_spaces_fail_before_training(space, message):
    with pytest.raises(AutoLRError, match=message):
        autolr.tune(mlp(), DIGITS, space=space, n_trials=1, progress=False)


@pytest.mark.parametrize("storage, message", [
    ("sqlite:////no/such/folder/x.db", "its folder '/no/such/folder' does not exist"),
    ("mysql+nodriver://x", "cannot open storage"),
    ("no/such/folder/sweep.log", "does not exist"),
    (42, "storage must be"),
])
def test_malformed_storages_fail_before_training(storage, message):
    with pytest.raises(AutoLRError, match=message):
        autolr.tune(mlp(), DIGITS, storage=storage, n_trials=1, progress=False)


def test_an_sqlite_file_that_is_not_optunas_is_refused_untouched(tmp_path):
    import sqlite3

    for name in ("app.db", "odd#name.db"):  # '#' ended the path of the read-only look
        with contextlib.closing(sqlite3.connect(tmp_path / name)) as connection:
            connection.execute("CREATE TABLE trials (x INTEGER)")  # another program's
            connection.commit()
    (tmp_path / "corrupt.db").write_bytes(b"not a database at all" * 100)
    for name, message in (("app.db", "another program's SQLite database \\(tables trials\\)"),
                          ("odd#name.db", "another program's SQLite database"),
                          ("corrupt.db", "'.*corrupt.db' is not an SQLite database")):
        before = (tmp_path / name).read_bytes()
        with pytest.raises(AutoLRError, match=message):
            autolr.tune(mlp(), DIGITS, storage=f"sqlite:///{tmp_path / name}", n_trials=1,
                        progress=False)
        assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "corrupt.db", "odd#name.db"]


def test_an_sqlite_file_whose_optuna_tables_another_process_is_making_is_waited_for(
        tmp_path, monkeypatch):
    # Optuna does not make its schema in one transaction: a sweep started beside another
    # on a new file saw 'studies' alone, took the file for another program's, and refused
    import sqlite3
    import threading

    from autolr import storage

    monkeypatch.setattr(storage, "SCHEMA_WAIT", 2.0)
    path = tmp_path / "new.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE studies (x INTEGER)")
        connection.commit()

    def finish_the_schema() -> None:
        time.sleep(0.3)
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE version_info (x INTEGER)")
            connection.commit()

    maker = threading.Thread(target=finish_the_schema)
    maker.start()
    storage._check_is_optuna_database(path, f"sqlite:///{path}")  # waits, then takes it
    maker.join()
    monkeypatch.setattr(storage, "SCHEMA_WAIT", 0.3)  # one that stays half made is refused
    half = tmp_path / "half.db"
    with contextlib.closing(sqlite3.connect(half)) as connection:
        connection.execute("CREATE TABLE studies (x INTEGER)")
        connection.commit()
    with pytest.raises(AutoLRError, match="another program's SQLite database"):
        storage._check_is_optuna_database(half, f"sqlite:///{half}")


def test_a_storage_path_that_cannot_keep_a_sweep_is_refused_before_any_write(tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("notes.log").write_text("my notes\n")
    Path("folder.log").mkdir()
    refused = [("notes.log", "'notes.log' exists and is not an Optuna journal .* a new file"),
               ("folder.log", "'folder.log' is a folder, not a file; give the path of a file"),
               ("sqlite:///folder.log", "is a folder, not a file"),
               ("sqlite:///no/such/folder/x.db", "its folder 'no/such/folder' does not exist")]
    if sys.platform.startswith("linux"):  # a folder no one can create files in, root too
        refused += [("/proc/sweep.log", "no file can be created in '/proc' .* a folder you "
                                        "can write to"),
                    ("sqlite:////proc/sweep.db", "no file can be created in '/proc'")]
    for storage, message in refused:
        with pytest.raises(AutoLRError, match=message):
            autolr.tune(mlp(), DIGITS, storage=storage, n_trials=1, progress=False)
    assert Path("notes.log").read_text() == "my notes\n"  # not appended to
    assert sorted(os.listdir()) == ["folder.log", "notes.log"]  # no lock file, no database
    with pytest.raises(AutoLRError, match="is not an Optuna journal"):  # nor read as one
        autolr.load("notes.log")


def test_resuming_a_study_with_another_space_says_what_differs(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    autolr.tune(mlp(), DIGITS, n_trials=1, epochs=1, progress=False, storage=url,
                study_name="s")
    with pytest.raises(AutoLRError, match=r"space\.lr: stored \[1e-05, 1\.0\], now \[0\.001"):
        autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False, storage=url,
                    study_name="s", space={"lr": (1e-3, 1.0)})
    with pytest.raises(AutoLRError, match="epochs: stored 1, now 3"):
        autolr.tune(mlp(), DIGITS, n_trials=2, epochs=3, progress=False, storage=url,
                    study_name="s")
    with pytest.raises(AutoLRError, match="seed: stored 0, now 1"):  # another split
        autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False, storage=url,
                    study_name="s", seed=1)
    with pytest.raises(AutoLRError, match=r"n_train: stored \d+, now 200"):  # other data
        autolr.tune(mlp(), (DIGITS[0][:250], DIGITS[1][:250]), n_trials=2, epochs=1,
                    progress=False, storage=url, study_name="s")
    with pytest.raises(AutoLRError, match=r"space\.schedule_params: stored \{\}, now "
                                          r"\{'one_cycle': \{'pct_start': 0\.3\}\}"):
        autolr.tune(mlp(), DIGITS, n_trials=2, epochs=1, progress=False, storage=url,
                    study_name="s", space={"schedule_params": {"one_cycle": {"pct_start": 0.3}}})


def test_resuming_with_another_direction_metric_or_loss_is_refused(tmp_path):
    def hits(outputs, targets):
        return (outputs.argmax(dim=1) == targets).float().mean()

    def smoothed(outputs, targets):
        return torch.nn.functional.cross_entropy(outputs, targets, label_smoothing=0.1)

    sweep = dict(n_trials=1, epochs=1, progress=False, storage=storage_url(tmp_path, "sqlite"),
                 study_name="s", confirm_seeds=0, range_test=False, metric=hits)
    autolr.tune(mlp(), DIGITS, direction="maximize", **sweep)
    with pytest.raises(AutoLRError, match="direction: stored 'maximize', now 'minimize'"):
        autolr.tune(mlp(), DIGITS, direction="minimize", **sweep)
    with pytest.raises(AutoLRError, match=r"metric_fn: stored '.*hits<\w+>', now '.*<lambda><"):
        autolr.tune(mlp(), DIGITS, direction="maximize",  # another metric, of any name
                    **{**sweep, "metric": lambda outputs, targets: -hits(outputs, targets)})
    with pytest.raises(AutoLRError, match=r"loss: stored \"CrossEntropyLoss\(.*label_smoothing"
                                          r"=0\.0.*\)\", now '.*smoothed<"):
        autolr.tune(mlp(), DIGITS, direction="maximize", loss=smoothed, **sweep)
    with pytest.raises(AutoLRError, match=r"label_smoothing=0\.2"):  # the same class, not loss
        autolr.tune(mlp(), DIGITS, direction="maximize", **sweep,
                    loss=torch.nn.CrossEntropyLoss(label_smoothing=0.2))
    # the default, given by hand, is the same loss
    again = autolr.tune(mlp(), DIGITS, direction="maximize", loss=torch.nn.CrossEntropyLoss(),
                        **{**sweep, "n_trials": 2})
    assert len(again.records) == 2


def test_resuming_with_another_model_evaluations_rungs_or_divergence_rule_is_refused(tmp_path):
    sweep = dict(n_trials=1, epochs=3, progress=False, storage=storage_url(tmp_path, "sqlite"),
                 study_name="s", confirm_seeds=0, range_test=False)
    autolr.tune(mlp(), DIGITS, **sweep)
    wider = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    for other, message in ((dict(model=wider), "n_params: stored 1210, now 2410"),
                           (dict(evals_per_epoch=4), "n_evals: stored 3, now 12"),
                           (dict(pruner="budgeted"), r"rungs: stored None, now \[1, 3\]"),
                           (dict(divergence_factor=2), "divergence_factor: stored 4.0, now 2.0")):
        with pytest.raises(AutoLRError, match=message):
            autolr.tune(**{"model": mlp(), "data": DIGITS, **sweep, **other})
    again = autolr.tune(mlp(), DIGITS, **{**sweep, "n_trials": 2}, divergence_factor=4)
    assert len(again.records) == 2  # the same settings, given by hand


def test_resuming_with_other_data_of_the_same_size_is_refused_and_a_full_study_says_so(
        tmp_path, caplog):
    # two model files of one name (a/model.py, b/model.py) shared the study 'model': the
    # second trained on in the first's study, and an edited data() too
    sweep = dict(n_trials=1, epochs=2, progress=False, storage=storage_url(tmp_path, "sqlite"),
                 study_name="s", confirm_seeds=0, range_test=False)
    X, y = DIGITS
    autolr.tune(mlp(), (X, y), **sweep)
    shuffled = np.random.default_rng(0).permutation(y)
    with pytest.raises(AutoLRError, match=r"data: other values than the stored sweep's "
                                          r"\(digest [0-9a-f]{16}, now [0-9a-f]{16}\)"):
        autolr.tune(mlp(), (X, shuffled), **sweep)
    # the same data again with the sweep done: nothing new runs, and the call says so
    with caplog.at_level("WARNING", logger="autolr"):
        again = autolr.tune(mlp(), (X, y), **sweep)
    assert len(again.records) == 1
    assert "study 's' holds 1 trial(s) already, n_trials=1: no new search trial runs; " \
           "a larger n_trials (--trials) extends the sweep" in caplog.text


def test_two_lambdas_are_two_losses_and_a_library_function_is_its_name():
    from autolr.metrics import loss_name

    first, second = (lambda o, t: (o - t).abs().mean()), (lambda o, t: (o - t).pow(2).mean())
    assert loss_name(first) != loss_name(second)
    # a comprehension's code object sat in the digest by its repr (an address, a line):
    # the same lambda in the next process named another loss, and its resume was refused
    once = lambda o, t: sum([(o - t).abs().mean() for _ in range(1)])  # noqa: E731

    again = lambda o, t: sum([(o - t).abs().mean() for _ in range(1)])  # noqa: E731
    other = lambda o, t: sum([(o - t).pow(2).mean() for _ in range(1)])  # noqa: E731
    assert loss_name(once) == loss_name(again) != loss_name(other)
    assert loss_name(torch.nn.functional.mse_loss) == "torch.nn.functional.mse_loss"
    weighted = [torch.nn.CrossEntropyLoss(weight=torch.tensor(w)) for w in ([1.0, 2.0],
                                                                           [1.0, 3.0])]
    assert loss_name(weighted[0]) != loss_name(weighted[1])


def test_a_study_autolr_did_not_make_is_refused_before_training(tmp_path, monkeypatch):
    url = storage_url(tmp_path, "sqlite")
    sweep = dict(n_trials=1, epochs=1, progress=False, storage=url, confirm_seeds=0,
                 range_test=False)

    def study(name: str, trials: int = 0, **kwargs) -> optuna.Study:
        made = optuna.create_study(storage=open_storage(url), study_name=name, **kwargs)
        made.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=trials)
        return made

    study("plain", trials=2)  # plain Optuna's, with trials autolr did not run
    with pytest.raises(AutoLRError, match=r"study 'plain' exists in this storage but was not "
                                          r"made by autolr .*--study NAME"):
        autolr.tune(mlp(), DIGITS, study_name="plain", **sweep)
    with pytest.raises(AutoLRError, match="not made by autolr .* cannot read it"):
        autolr.load(url, "plain")  # `autolr show` / `report`: no config in its trials
    study("maximized", direction="maximize")  # no trials, but it maximizes
    with pytest.raises(AutoLRError, match="direction: stored 'maximize', now 'minimize'"):
        autolr.tune(mlp(), DIGITS, study_name="maximized", **sweep)
    assert [len(optuna.load_study(study_name=name, storage=url).trials)
            for name in ("plain", "maximized")] == [2, 0]  # refused before a trial ran
    # still resumed: a study an autolr as old as the first kept (its metric and epochs),
    # an empty one (killed right after Optuna created it), one interrupted in trial 0
    old = study("old")
    old.set_user_attr("metric", "val_loss")
    old.set_user_attr("epochs", 1)
    study("empty")
    interrupt_at(monkeypatch, run=1)
    with pytest.raises(KeyboardInterrupt):
        autolr.tune(mlp(), DIGITS, study_name="interrupted", **sweep)
    monkeypatch.undo()
    for name in ("old", "empty", "interrupted"):
        assert len(autolr.tune(mlp(), DIGITS, study_name=name, **sweep).records) == 1


def test_the_only_autolr_sweep_in_a_file_is_read_beside_a_plain_optuna_study(tmp_path):
    url = storage_url(tmp_path, "sqlite")
    plain = optuna.create_study(storage=open_storage(url), study_name="plain")
    plain.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
    with pytest.raises(AutoLRError, match="holds no sweep yet"):
        autolr.load(url)  # plain Optuna's study is not a sweep
    autolr.tune(mlp(), DIGITS, n_trials=1, epochs=1, progress=False, storage=url,
                study_name="mine", confirm_seeds=0, range_test=False)
    assert autolr.load(url).study_name == "mine"  # no --study needed
    with pytest.raises(AutoLRError, match=r"no study 'other' .* it holds: 'mine'\.$"):
        autolr.load(url, "other")


def test_a_space_key_newer_than_the_stored_sweep_is_compared_with_its_default():
    from autolr.sweep import Sweep

    sweep = Sweep(space=SearchSpace(), run=None, n_train=100, n_evals=1, n_trials=1,
                  direction="minimize", metric="val_loss", epochs=1)
    stored = sweep.settings()
    del stored["space"]["schedule_params"]  # as an autolr from before it kept
    sweep.check_resumable("s", stored)  # the default: the same sweep
    narrowed = dataclasses.replace(
        sweep, space=SearchSpace(schedule_params={"one_cycle": {"pct_start": 0.3}}))
    with pytest.raises(AutoLRError, match=r"space\.schedule_params: stored \{\}"):
        narrowed.check_resumable("s", stored)


class _Storage:
    """A storage whose write lets a signal arrive in the middle of it."""

    def __init__(self, stop) -> None:
        self.stop, self.written = stop, []

    def set_trial_state_values(self, trial_id: int, state: str) -> None:
        self.stop.on_signal(signal.SIGTERM, None)  # SIGTERM lands mid-write
        self.written.append((trial_id, state))


def test_a_workers_sigterm_waits_out_a_storage_write_and_stops_the_trial_after_it():
    from autolr.backends.optuna import StopSafely

    stop = StopSafely()
    storage = stop.guard_storage(_Storage(stop))
    # outside training (Optuna writing a finished trial's state): the write completes and
    # the stop waits for the next safe point, the callback after the trial
    storage.set_trial_state_values(1, "COMPLETE")
    assert storage.written == [(1, "COMPLETE")] and stop.pending
    with pytest.raises(KeyboardInterrupt):
        stop.check(None, None)
    assert not stop.pending

    # while training: the write completes, then the trial stops
    def objective(trial) -> float:
        storage.set_trial_state_values(2, "intermediate")
        raise AssertionError("training went on after the write")

    with pytest.raises(KeyboardInterrupt):
        stop.guard_training(objective)(None)
    assert storage.written[-1] == (2, "intermediate") and not stop.training

    # while training, not writing: at once
    def training(trial) -> float:
        stop.on_signal(signal.SIGTERM, None)
        raise AssertionError("the signal did not stop training")

    with pytest.raises(KeyboardInterrupt):
        stop.guard_training(training)(None)

    # a signal that came between trials stops the next one before it trains
    stop.pending = True
    with pytest.raises(KeyboardInterrupt):
        stop.guard_training(training)(None)

    # raised at once, but into a garbage collector's callback, which prints and drops it
    # (QA: 4 of 20 Ctrl-Cs lost so, the sweep ran to its end and exited 0): kept pending
    def swallowed(trial) -> float:
        try:
            stop.on_signal(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass
        return 1.0

    stop.pending = False
    assert stop.guard_training(swallowed)(None) == 1.0
    with pytest.raises(KeyboardInterrupt):
        stop.check(None, None)  # Optuna's callback after the trial: the sweep stops


class _SlowStorage:
    """A storage whose write takes a while, with a real Ctrl-C landing in the middle."""

    def __init__(self) -> None:
        self.written: list[int] = []

    def set_trial_value(self, value: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # Python runs the handler here, mid-write
        self.written.append(value)


def test_ctrl_c_in_process_waits_out_a_storage_write_then_stops_the_sweep():
    # CLI Ctrl-C test, under load: a SIGINT inside a SQLite commit failed the trial as a
    # storage error and the sweep went on, or the process never exited
    from autolr.backends.optuna import StopSafely

    stop, before = StopSafely(), signal.getsignal(signal.SIGINT)
    storage = stop.guard_storage(_SlowStorage())
    trained_on = []

    def objective() -> None:
        storage.set_trial_value(1)
        trained_on.append("after the write")

    with pytest.raises(KeyboardInterrupt), stop.handling(signal.SIGINT):
        stop.guard_training(objective)()
    assert storage.written == [1] and trained_on == []  # the write whole, then stopped

    # outside training (Optuna between trials): the stop waits for the block's end
    went_on = []
    with pytest.raises(KeyboardInterrupt), stop.handling(signal.SIGINT):
        storage.set_trial_value(2)
        went_on.append(True)
    assert storage.written == [1, 2] and went_on == [True]
    assert signal.getsignal(signal.SIGINT) is before  # the handler given back


def _open_at(url: str, start, results) -> None:
    from autolr.storage import open_storage

    start.wait()
    try:
        open_storage(url)
        results.put("ok")
    except Exception as error:  # noqa: BLE001 - the test reports it
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_new_sqlite_file_at_once_all_open_it(tmp_path):
    # both make Optuna's tables: the loser failed on 'table studies already exists' or
    # the alembic_version row (two CLI sweeps started together on sqlite:///autolr.db)
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(3):
        url = f"sqlite:///{tmp_path}/race{round_}.db"
        start, results = context.Event(), context.Queue()
        opening = [context.Process(target=_open_at, args=(url, start, results))
                   for _ in range(4)]
        for process in opening:
            process.start()
        start.set()
        outcomes = [results.get(timeout=120) for _ in opening]
        for process in opening:
            process.join(timeout=60)
        assert outcomes == ["ok"] * 4, outcomes


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # study.ask() outside optimize
def test_a_call_that_ends_while_another_process_runs_trials_leaves_the_pick_to_it(
        tmp_path, caplog):
    url = storage_url(tmp_path, "sqlite")
    sweep = dict(epochs=1, progress=False, storage=url, study_name="s", range_test=False)
    autolr.tune(mlp(), DIGITS, n_trials=2, confirm_seeds=0, **sweep)
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    theirs = study.ask()  # a trial another live process (this test's parent) is running
    theirs.set_user_attr("owner", {**owner(), "pid": os.getppid()})
    with caplog.at_level("WARNING", logger="autolr"):
        result = autolr.tune(mlp(), DIGITS, n_trials=3, **sweep)  # 2 done + theirs: 3
    assert "another process is still running 1 trial(s)" in caplog.text
    assert not any(r.seed_values for r in result.records)  # no robust pick over a part
    assert result.ended is False and autolr.load(url, "s").ended is False


TOGETHER = textwrap.dedent("""
    import sys, time, torch
    from sklearn.datasets import load_digits
    import autolr
    X, y = load_digits(return_X_y=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    while time.time() < float(sys.argv[2]):  # both start at the same moment
        time.sleep(0.001)
    autolr.tune(model, (X / 16, y), n_trials=24, epochs=2, progress=False,
                storage=sys.argv[1], study_name="s", range_test=False, confirm_seeds=0)
""")


def test_two_calls_started_together_on_one_storage_draw_no_config_twice(tmp_path):
    # each process drew from one stream seeded by the sweep's seed: the two drew the same
    # configs, trial for trial, once past the space-filling start (2 of 24 were copies)
    url = storage_url(tmp_path, "sqlite")
    script = tmp_path / "together.py"
    script.write_text(TOGETHER)
    at = str(time.time() + 6)  # after both have imported torch
    calls = [subprocess.Popen([sys.executable, str(script), url, at]) for _ in range(2)]
    assert [call.wait(timeout=300) for call in calls] == [0, 0]
    records = autolr.load(url, "s").records
    owners = {t.user_attrs["owner"]["pid"] for t in optuna.load_study(
        study_name="s", storage=open_storage(url)).trials}
    # both calls ran trials of the sweep (started at the same moment, they may pass its
    # 24 by one: README)
    assert len(records) in (24, 25) and len(owners) == 2
    drawn = [json.dumps(r.params, sort_keys=True) for r in records]
    assert len(set(drawn)) == len(drawn), "a config was drawn twice"


def test_processes_taking_turns_on_one_study_draw_from_streams_of_their_own(monkeypatch):
    # the same, deterministic: two samplers of one seed (two processes) take turns on one
    # study; each process's first draws were the other's, config for config
    from autolr import storage
    from autolr.backends.optuna import make_sampler
    from autolr.space import SearchSpace

    space, study = SearchSpace(), optuna.create_study()
    samplers = {pid: make_sampler(space, 1000, seed=0, design_trials=0) for pid in (101, 102)}
    drawn = []
    for number in range(14):
        pid = 101 + number % 2
        monkeypatch.setattr(storage.os, "getpid", lambda pid=pid: pid)
        study.sampler = samplers[pid]
        trial = study.ask()
        study._storage.set_trial_user_attr(trial._trial_id, "owner", storage.owner())
        drawn.append(json.dumps(space.sample(trial, 1000).to_dict(), sort_keys=True))
        study.tell(trial, 1.0 + number % 5)
    assert len(set(drawn)) == len(drawn), "a config was drawn twice"
    # a process on its own keeps its one stream: the sweep repeats from its seed
    alone = [make_sampler(space, 1000, seed=0, design_trials=0) for _ in range(2)]
    firsts = []
    for sampler in alone:
        own = optuna.create_study(sampler=sampler)
        firsts.append([json.dumps(space.sample(own.ask(), 1000).to_dict(), sort_keys=True)
                       for _ in range(3)])
    assert firsts[0] == firsts[1]
