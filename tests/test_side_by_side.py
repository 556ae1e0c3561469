"""The robust pick's extra seeds side by side in forked processes (n_jobs > 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
import pytest
import torch
from processes import survivors

import autolr
from autolr import AutoLRError
from autolr.backends.optuna import ConfirmLeader, limit_torch_threads
from autolr.data import coerce_data
from autolr.metrics import default_loss, resolve_metric
from autolr.pick import RobustPick
from autolr.side_by_side import train_side_by_side
from autolr.space import SearchSpace, TrialConfig
from autolr.sweep import Sweep
from autolr.training import COMPLETE, DIVERGED, TrialOutcome, train_trial

CONFIG = TrialConfig(0.05, "cosine", batch_size=64)


def where_it_ran(config, reporter, seed_offset=0):
    """A run that tells its process id (in `reason`) and its seed offset (its value)."""
    return TrialOutcome(COMPLETE, reason=str(os.getpid()), values=[float(seed_offset)],
                        epochs_run=1.0, seconds=0.5, steps_run=10)


def test_each_run_trains_in_a_process_of_its_own_and_comes_back_in_order():
    outcomes = train_side_by_side(where_it_ran, CONFIG, [3, 1, 2], processes=3)
    assert [o.values for o in outcomes] == [[3.0], [1.0], [2.0]]
    pids = {o.reason for o in outcomes}
    assert len(pids) == 3 and str(os.getpid()) not in pids


def test_no_more_processes_at_once_than_asked():
    # two at a time: the third run waits for the first two (a new wave, a new process)
    outcomes = train_side_by_side(where_it_ran, CONFIG, [1, 2, 3], processes=2)
    assert [o.values for o in outcomes] == [[1.0], [2.0], [3.0]]
    assert len({o.reason for o in outcomes}) == 3
    with pytest.raises(ValueError, match="processes must be >= 1"):
        train_side_by_side(where_it_ran, CONFIG, [1], processes=0)


def test_a_run_that_raises_is_reported_with_its_traceback():
    def broken(config, reporter, seed_offset=0):
        if seed_offset == 2:
            raise RuntimeError("the model's forward failed")
        return where_it_ran(config, reporter, seed_offset)

    with pytest.raises(AutoLRError, match=r"seed offset 2 failed:[\s\S]*forward failed"):
        train_side_by_side(broken, CONFIG, [1, 2], processes=2)


def test_ctrl_c_in_a_child_stops_the_parent_as_ctrl_c():
    # the terminal's SIGINT reaches every process of the group: the sweep must end as
    # interrupted (its finished trials kept, a resume command printed), not as an error
    def interrupted(config, reporter, seed_offset=0):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_side_by_side(interrupted, CONFIG, [1, 2], processes=2)


def test_a_process_that_dies_is_reported_not_waited_for():
    def killed(config, reporter, seed_offset=0):
        os._exit(9)  # as the OOM killer would leave it: no outcome sent

    with pytest.raises(AutoLRError, match=r"seed offset 1 died in its process \(exit code 9\)"):
        train_side_by_side(killed, CONFIG, [1, 2], processes=2)


PARENT = """
import os, sys, time
from autolr.side_by_side import train_side_by_side
from autolr.space import TrialConfig
from autolr.training import TrialOutcome

def slow(config, reporter, seed_offset=0):
    # each child says who it is, then trains on; in one write (print writes the number and
    # the newline apart: two children's lines interleaved as "12 34" and a lone newline)
    sys.stdout.write(f"{os.getpid()}\\n")
    sys.stdout.flush()
    time.sleep(60)
    return TrialOutcome("complete", values=[0.0])

train_side_by_side(slow, TrialConfig(0.1), [1, 2], processes=2)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_children_stop_when_their_parent_is_killed(tmp_path):
    # SIGKILL gives the parent no time to stop them: they must not train on for nobody
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE,
                              text=True)
    try:
        children = [int(parent.stdout.readline()) for _ in range(2)]
    finally:
        parent.kill()
        parent.wait()
    assert not survivors(children, within=10), "the runs went on after their parent died"


# --- real training ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    data = coerce_data((X / 16.0, y), val_fraction=0.2, seed=0)
    metric = resolve_metric(None, data.task, None)

    def factory() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                   torch.nn.Linear(32, 10))

    def run(config, reporter, seed_offset=0):
        return train_trial(config, factory, data, epochs=3, loss_fn=default_loss(data.task),
                           metric=metric, reporter=reporter, seed=seed_offset)
    return run


def sweep_of(run) -> Sweep:
    return Sweep(space=SearchSpace(), run=run, n_train=1437, n_evals=3, n_trials=1,
                 direction="minimize", metric="val_loss", epochs=3, confirm_seeds=2)


def test_side_by_side_seeds_train_exactly_as_one_after_the_other(digits_run):
    sweep = sweep_of(digits_run)
    with limit_torch_threads(sweep.torch_threads):  # as in a sweep: sums in the same order
        alone = RobustPick(sweep).seed_runs(CONFIG, range(1, 3))
    together = ConfirmLeader(sweep, processes=2).seed_runs(CONFIG, range(1, 3))
    assert len(together.values) == 2 and together.diverged_on is None
    assert together.values == alone.values  # same seeds, same loop: the same numbers
    assert together.epochs_run == alone.epochs_run == 6.0
    assert together.steps_run == alone.steps_run


def test_a_divergence_side_by_side_is_judged_as_one_after_the_other_but_all_is_counted():
    def second_diverges(config, reporter, seed_offset=0):
        if seed_offset == 1:
            return TrialOutcome(DIVERGED, "loss became nan", values=[1.0, float("nan")],
                                epochs_run=0.5, seconds=0.2, steps_run=5)
        return where_it_ran(config, reporter, seed_offset)

    runs = ConfirmLeader(sweep_of(second_diverges), processes=2).seed_runs(CONFIG, range(1, 3))
    assert runs.diverged_on == 1 and runs.values == ()  # seed 2 is not read: as in order
    assert runs.epochs_run == 1.5 and runs.steps_run == 15  # but it trained: it costs


def test_one_process_or_one_seed_trains_in_this_process():
    # a forked child's append never reaches this process's list: the list tells where
    # each run trained
    for processes, offsets, here in ((1, range(1, 3), 2), (2, range(1, 2), 1),
                                     (2, range(1, 3), 0)):
        trained_here = []

        def run(config, reporter, seed_offset=0, trained_here=trained_here):
            trained_here.append(seed_offset)
            return where_it_ran(config, reporter, seed_offset)

        runs = ConfirmLeader(sweep_of(run), processes=processes).seed_runs(CONFIG, offsets)
        assert runs.values == tuple(float(k) for k in offsets)
        assert len(trained_here) == here


def test_the_benchmark_runs_and_checks_both_give_the_same_values(capsys):
    from benchmarks import pick_side_by_side

    assert pick_side_by_side.main(["--quick"]) == 0
    assert "after / side by side:" in capsys.readouterr().out


def test_a_two_worker_sweep_confirms_its_pick_side_by_side(digits, mlp, tmp_path, monkeypatch):
    calls = []
    real = autolr.backends.optuna.train_side_by_side

    def spy(run, config, offsets, processes, threads=1):
        calls.append((list(offsets), processes, threads))
        return real(run, config, offsets, processes, threads)

    monkeypatch.setattr(autolr.backends.optuna, "train_side_by_side", spy)
    # enough full runs for the pick to run (robust.MIN_SPEND_RATIO)
    result = autolr.tune(mlp, digits, n_jobs=2, n_trials=12, epochs=2, pruner="none",
                         progress=False, storage=str(tmp_path / "sweep.log"), range_test=False)
    assert calls and all(c == ([1, 2], 2, 1) for c in calls)
    best = result.best_record
    assert len(best.seed_values) == 3 and len(best.holdout_values) == 1
    study = optuna.load_study(study_name="autolr", storage=autolr.storage.open_storage(
        str(tmp_path / "sweep.log")))
    confirms = [t for t in study.get_trials() if "confirms" in t.user_attrs]
    assert len(confirms) == len(calls)  # every side-by-side round is kept in the storage


class _SignalledWhileForking:
    """A process whose start() gets SIGTERM where Python drops the handler's raise: in a
    callback of its own (as the fork's at-fork callbacks are), printed and swallowed."""

    def start(self) -> None:
        import weakref

        class Victim:
            pass

        def callback() -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # the handler runs here, and its raise goes nowhere
                pass

        victim = Victim()
        weakref.finalize(victim, callback)
        del victim


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_that_comes_while_a_child_forks_is_not_lost():
    from autolr.storage import sigterm_as_interrupt, start_child

    with sigterm_as_interrupt():
        _SignalledWhileForking().start()  # plainly: dropped, the sweep would go on
        with pytest.raises(KeyboardInterrupt):
            start_child(_SignalledWhileForking())
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers as they were
