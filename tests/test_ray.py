"""The Ray backend's rules, without a cluster: optional import, early errors, the scheduler
for each pruner name, the stall stopper and the searcher fed synthetic results, and how a
Tune result turns into a TrialRecord. The cluster tests are in test_ray_cluster.py."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import autolr
from autolr import AutoLRError, SearchSpace
from autolr.backends.optuna import make_pruner
from autolr.sweep import Sweep

DATA = (np.random.default_rng(0).random((120, 4), dtype=np.float32),
        np.arange(120) % 2)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


def test_import_autolr_does_not_import_ray():
    done = run_python("""
        import sys, autolr
        assert "ray" not in sys.modules, "import autolr imported ray"
        """)
    assert done.returncode == 0, done.stderr


def test_backend_ray_without_ray_says_how_to_install_it():
    done = run_python("""
        import sys
        sys.modules["ray"] = None  # as if ray were not installed
        import numpy as np, torch, autolr
        X, y = np.random.rand(60, 4).astype("float32"), np.arange(60) % 2
        try:
            autolr.tune(torch.nn.Linear(4, 2), (X, y), backend="ray", n_trials=2, epochs=1,
                        progress=False)
        except autolr.AutoLRError as error:
            print(error)
        """)
    assert done.returncode == 0, done.stderr
    assert "pip install 'autolr[ray]'" in done.stdout


try:
    import ray

    from autolr.backends import ray as backend
except ImportError:  # the tests above still run: they are about ray missing
    ray = backend = None
needs_ray = pytest.mark.skipif(ray is None, reason="needs autolr[ray]")


def factory_with_a_lock():
    lock = threading.Lock()

    def factory() -> torch.nn.Module:
        with lock:  # a lock cannot go to another machine
            return torch.nn.Linear(4, 2)

    return factory


def model_with_an_open_file(tmp_path):
    model = torch.nn.Linear(4, 2)
    log = open(tmp_path / "log.txt", "w")  # held by the model, on purpose

    def hook(module, inputs, output) -> None:
        log.write("")

    model.register_forward_hook(hook)
    return model, log


@needs_ray
def test_a_model_that_cannot_be_serialized_fails_before_the_sweep(tmp_path):
    model, log = model_with_an_open_file(tmp_path)
    try:
        for bad in (factory_with_a_lock(), model):
            with pytest.raises(AutoLRError, match="(?i)cannot be sent to the Ray cluster.*"
                                                  "cannot pickle"):
                autolr.tune(bad, DATA, backend="ray", n_trials=2, epochs=1, progress=False)
    finally:
        log.close()
    assert not ray.is_initialized()  # it failed before connecting to any cluster


@needs_ray
@pytest.mark.parametrize("arguments, message", [
    ({"pruner": "asha-ish"}, "with backend=.ray., pruner must be one of auto, checked_halving"),
    ({"pruner": make_pruner("none", 4)}, "TrialScheduler"),
    ({"storage": "sqlite:///autolr.db"}, "storage is a directory"),
    ({"resources_per_trial": {"cpu": -1}}, "resources_per_trial must map"),
    ({"resources_per_trial": {"cpu": 0}}, "resources_per_trial must ask for some resource"),
    ({"max_concurrent": 0}, "max_concurrent must be None or an integer >= 1"),
])
def test_bad_ray_arguments_fail_before_connecting(arguments, message):
    with pytest.raises(AutoLRError, match=message):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, **arguments)
    assert not ray.is_initialized()


def closed_port(host: str = "127.0.0.2") -> int:
    """A port on `host` nobody listens at (bound, then released unlistened)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@needs_ray
def test_a_cluster_address_nobody_answers_at_fails_at_once(monkeypatch):
    # Ray itself retries such an address for ever (measured: still waiting after 40 s)
    address = f"127.0.0.2:{closed_port()}"
    for given in (address, f"ray://{address}"):
        with pytest.raises(AutoLRError, match=rf"cannot connect to the Ray cluster at "
                           rf"'{given}': nothing answers there .*ray start --head"):
            autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                        progress=False, ray_address=given)
    with pytest.raises(AutoLRError, match="not of the form 'host:port'"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, ray_address="headnode")
    monkeypatch.setenv("RAY_ADDRESS", address)  # ray.init() would read it and hang
    with pytest.raises(AutoLRError, match=rf"at '{address}' \(RAY_ADDRESS\): nothing answers"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False)
    assert not ray.is_initialized()


def serve_once(answer: bytes) -> tuple[str, threading.Thread]:
    """A one-connection server on loopback that answers `answer` to what it is sent."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(1)

    def serve() -> None:
        with server:
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"127.0.0.2:{server.getsockname()[1]}", thread


@needs_ray
def test_an_address_where_something_other_than_ray_answers_fails_at_once():
    # a web server (the dashboard's port, say): Ray would retry it for ever
    address, server = serve_once(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    with pytest.raises(AutoLRError, match=r"something answers there, but not a Ray "
                                          r"cluster's head \(its GCS port"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, ray_address=address)
    server.join(timeout=10)
    assert not ray.is_initialized()
    # an HTTP/2 server's first frame, SETTINGS, as Ray's gRPC servers send it: let through
    address, server = serve_once(bytes([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]))
    assert backend._unreachable(address) is None
    server.join(timeout=10)


@needs_ray
def test_a_storage_that_is_a_file_fails_before_connecting(tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("mine")
    for storage in (file, file / "ray"):
        with pytest.raises(AutoLRError, match=f"cannot write the Ray sweep \\(storage is a "
                                              f"directory\\) to '{storage}': '{file}' is a "
                                              "file, not a folder"):
            autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                        progress=False, storage=str(storage))
    (tmp_path / "study").write_text("mine")  # where the experiment folder goes
    with pytest.raises(AutoLRError, match="holds a file named 'study', where the sweep's "
                                          "experiment folder goes; choose another study_name"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, storage=str(tmp_path), study_name="study")
    assert file.read_text() == "mine" and not ray.is_initialized()
    assert not (tmp_path / "study.settings.json").exists()


@needs_ray
def test_resuming_with_other_settings_fails_before_connecting(tmp_path):
    # what a first call stored (Sweep.settings): 96 train rows, seed 0, 2 epochs
    stored = {"metric": "val_loss", "epochs": 2, "seed": 0, "n_train": 96}
    (tmp_path / "s.settings.json").write_text(json.dumps(stored))
    for change, message in (({"seed": 1}, "seed: stored 0, now 1"),
                            ({"epochs": 3}, "epochs: stored 2, now 3")):
        with pytest.raises(AutoLRError, match=message):
            autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2,
                        progress=False, storage=str(tmp_path), study_name="s",
                        **{"epochs": 2, "seed": 0, **change})
    assert not ray.is_initialized()


@needs_ray
def test_each_pruner_name_is_one_of_tunes_schedulers():
    from ray.tune import schedulers

    from autolr.checked_halving import CheckedHalvingPruner
    from autolr.pruning import DecayAwareMedianPruner

    for name in ("auto", "checked_halving"):  # autolr's own, judged on the driver
        own = backend.make_scheduler(name, 20, "min")
        assert isinstance(own.pruning.pruner, CheckedHalvingPruner)
        assert own.pruning.pruner.n_evals == 20
    median = backend.make_scheduler("decay_median", 20, "max")
    assert type(median.pruning.pruner) is DecayAwareMedianPruner
    assert isinstance(backend.make_scheduler("successive_halving", 20, "min"),
                      schedulers.AsyncHyperBandScheduler)
    assert isinstance(backend.make_scheduler("hyperband", 20, "max"),
                      schedulers.AsyncHyperBandScheduler)
    assert isinstance(backend.make_scheduler("median", 20, "min"), schedulers.MedianStoppingRule)
    assert isinstance(backend.make_scheduler("none", 20, "min"), schedulers.FIFOScheduler)
    own = schedulers.ASHAScheduler(max_t=5)
    assert backend.make_scheduler(own, 20, "min") is own


def result(state: str, values: list[float], number: int = 0, **extra) -> dict:
    payload = {"number": number, "state": state, "params": {}, "reason": extra.pop("reason", None),
               "values": values, "train_losses": values, "val_losses": values,
               "epochs_run": len(values), "steps_run": 10 * len(values), "seconds": 1.0,
               "is_baseline": False, "node": "127.0.0.2"}
    return {"value": values[-1] if values else math.nan, "training_iteration": len(values),
            backend._PAYLOAD: json.dumps(payload), **extra}


@needs_ray
def test_the_stall_stopper_cuts_a_flat_trial_only_behind_the_leader():
    stopper = backend._StallStopper(patience=2, min_delta=1e-3, mode="min", leader=None)
    flat = [1.0, 0.5, 0.5, 0.5]
    assert not stopper("a", result(backend.RUNNING, flat))  # no leader yet: nothing to trail
    assert not stopper("b", result("complete", [0.9, 0.6, 0.4, 0.3]))
    assert stopper.leader == 0.3
    assert stopper("a", result(backend.RUNNING, flat))  # flat and behind: cut
    # ...but never on an evaluation that ended in warmup (the loop's word for it)
    assert not stopper("a", result(backend.RUNNING, flat, **{backend.UNJUDGED: True}))
    assert not stopper("c", result(backend.RUNNING, [1.0, 0.2, 0.2, 0.2]))  # flat, but leads
    assert not stopper("d", result(backend.RUNNING, [1.0, 0.9, 0.8, 0.7]))  # still learning
    assert not stopper("e", result("diverged", [1.0, math.nan]))
    maximize = backend._StallStopper(patience=2, min_delta=1e-3, mode="max", leader=0.9)
    assert maximize("f", result(backend.RUNNING, [0.5, 0.8, 0.8, 0.8]))
    assert not maximize("g", result(backend.RUNNING, [0.5, 0.95, 0.95, 0.95]))


@needs_ray
def test_autolrs_ray_pruners_keep_a_warmup_evaluation_without_judging_it():
    scheduler = backend.make_scheduler("auto", 4, "min")
    judged = []
    scheduler.pruning.report = lambda record: judged.append(record["number"]) or True
    warming = result(backend.RUNNING, [2.0], number=7, **{backend.UNJUDGED: True})
    assert scheduler.on_trial_result(None, None, warming) == scheduler.CONTINUE
    assert judged == [] and 7 in scheduler.pruning.view.trials  # a reference for others
    after = result(backend.RUNNING, [2.0, 1.9], number=7, **{backend.UNJUDGED: False})
    assert scheduler.on_trial_result(None, None, after) == scheduler.STOP and judged == [7]


@needs_ray
def test_tunes_own_schedulers_never_see_a_warmup_evaluation_or_the_default_config():
    from types import SimpleNamespace

    asha = backend.make_scheduler("successive_halving", 20, "min")  # rungs at 2 and 8 evals
    leader, warming = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
    for trial in (leader, warming):
        asha.on_trial_add(None, trial)
    assert asha.on_trial_result(None, leader, result(backend.RUNNING, [1.0, 1.0])) == "CONTINUE"
    # a trial still in warmup at the rung, far behind: Tune's ASHA alone would cut it there
    for evals in (1, 2, 3):
        report = result(backend.RUNNING, [5.0] * evals, **{backend.UNJUDGED: True})
        assert asha.on_trial_result(None, warming, report) == "CONTINUE"
    # its first report past warmup is filed at the rung it passed, and judged there
    assert asha.on_trial_result(None, warming, result(backend.RUNNING, [5.0] * 3 + [0.9])) \
        == "CONTINUE"
    behind = SimpleNamespace(trial_id="c")
    asha.on_trial_add(None, behind)
    assert asha.on_trial_result(None, behind, result(backend.RUNNING, [3.0, 3.0])) == "STOP"

    median = backend.make_scheduler("median", 4, "min")
    assert median.on_trial_result(None, object(), result(
        backend.RUNNING, [9.0] * 3, **{backend.UNJUDGED: True})) == "CONTINUE"
    assert not median._results  # not even kept for other trials' medians
    # nor the default config's trial, which the report compares with as a whole run
    default = SimpleNamespace(trial_id="d")
    asha.on_trial_add(None, default)
    report = result(backend.RUNNING, [3.0, 3.0])
    payload = json.loads(report[backend._PAYLOAD])
    report[backend._PAYLOAD] = json.dumps({**payload, "is_baseline": True})
    assert asha.on_trial_result(None, default, report) == "CONTINUE"


def sweep(n_evals: int = 4) -> Sweep:
    return Sweep(space=SearchSpace(schedules=("constant", "cosine")), run=lambda c, r: None,
                 n_train=100, n_evals=n_evals, n_trials=4, direction="minimize",
                 metric="val_loss", epochs=n_evals)


@needs_ray
def test_the_searcher_tells_optuna_how_each_trial_ended():
    import optuna

    searcher = backend._Search(backend._Space(sweep().space, 100), metric="value", mode="min",
                               sampler=optuna.samplers.TPESampler(seed=0))
    configs = {name: searcher.suggest(name) for name in "abcd"}
    assert [c[backend._NUMBER] for c in configs.values()] == [0, 1, 2, 3]
    assert {"lr", "schedule", "batch_size"} <= set(configs["a"])
    for name, values in (("a", [1.0, 0.5]), ("b", [1.0]), ("c", [1.0, math.nan])):
        for step, value in enumerate(values, 1):
            searcher.on_trial_result(name, {"value": value, "training_iteration": step})
    searcher.on_trial_complete("a", result("complete", [1.0, 0.5]))
    searcher.on_trial_complete("b", result(backend.RUNNING, [1.0]))  # stopped by ASHA
    searcher.on_trial_complete("c", result("diverged", [1.0, math.nan]))
    searcher.on_trial_complete("d", result("failed", [], reason="ValueError: no"))
    states = [t.state for t in searcher._ot_study.trials]
    State = optuna.trial.TrialState
    assert states == [State.COMPLETE, State.PRUNED, State.PRUNED, State.FAIL]
    assert math.isnan(searcher._ot_study.trials[2].intermediate_values[2])  # TPE: worst


@needs_ray
def test_a_trial_run_again_reports_its_steps_again_without_a_warning(recwarn):
    # a resume runs an interrupted trial from scratch under its Tune id: steps 1, 2 again
    import optuna

    searcher = backend._Search(backend._Space(sweep().space, 100), metric="value", mode="min",
                               sampler=optuna.samplers.TPESampler(seed=0))
    searcher.suggest("a")
    for values in ([1.0, 0.8], [0.9, 0.7, 0.5]):
        for step, value in enumerate(values, 1):
            searcher.on_trial_result("a", {"value": value, "training_iteration": step})
    assert searcher._ot_study.trials[0].intermediate_values == {1: 1.0, 2: 0.8, 3: 0.5}
    assert not [w for w in recwarn if "already reported" in str(w.message)]


@needs_ray
def test_the_ray_searcher_starts_from_the_same_design_as_the_optuna_backend():
    from autolr.backends.optuna import DESIGN_TRIALS
    from autolr.design import startup_design

    swept = sweep()
    run = backend._Run(swept, None, "auto", "min", 2, "/tmp")
    searcher = run.searcher(None)
    configs = [searcher.suggest(f"t{i}") for i in range(DESIGN_TRIALS)]
    design = startup_design(swept.space, swept.n_train, DESIGN_TRIALS, swept.seed)
    assert [c["lr"] for c in configs] == pytest.approx([p["lr"] for p in design])
    assert [c["schedule"] for c in configs] == [p["schedule"] for p in design]


@needs_ray
def test_tune_results_become_trial_records(tmp_path):
    run = backend._Run(sweep(), None, "successive_halving", "min", 1, str(tmp_path))
    done = run.record(result("complete", [1.0, 0.5, 0.4, 0.3], number=3), {}, None)
    assert done.state == "complete" and done.number == 3 and done.values == (1.0, 0.5, 0.4, 0.3)
    cut = run.record(result(backend.RUNNING, [1.0, 0.9]), {}, None)
    assert cut.state == "pruned" and cut.reason == "pruned by AsyncHyperBandScheduler"
    # autolr's own pruner says why from its log, which outlives the driver
    own = backend._Run(sweep(), None, "auto", "min", 1, str(tmp_path))
    own.cuts_log = tmp_path / "s.cuts.jsonl"
    own.cuts_log.write_text('{"number": 0, "reason": "behind the median of 5"}\n')
    cut = own.record(result(backend.RUNNING, [1.0, 0.9]), {}, None)
    assert cut.state == "pruned" and cut.reason == "behind the median of 5"
    unlogged = own.record(result(backend.RUNNING, [1.0, 0.9], number=1), {}, None)
    assert unlogged.reason == "pruned by CheckedHalvingPruner"
    flat = run.record(result(backend.RUNNING, [1.0, 0.5, 0.5, 0.5]), {}, None)
    assert flat.state == "pruned" and flat.reason.startswith("stalled: ")
    diverged = run.record(result("diverged", [1.0, math.nan], reason="loss became nan"), {}, None)
    assert diverged.state == "diverged" and diverged.reason == "loss became nan"
    lost = run.record({}, {backend._NUMBER: 5}, RuntimeError("Traceback...\nnode died\n"))
    assert lost.state == "failed" and lost.reason == "interrupted: node died"
    assert lost.number == 5 and not backend._counts(lost) and backend._counts(done)
    assert run.record({}, {backend._NUMBER: 6}, None) is None  # never started
    # the pick's step back that Tune gave up on stays one: the pick does not step back again
    twin = run.record({}, {backend._NUMBER: 7, backend._STEPS_BACK: 3}, RuntimeError("died"))
    assert twin.state == "failed" and twin.steps_back_from == 3


def test_the_ray_pick_logs_its_runs_and_a_resume_trains_none_again(tmp_path):
    # trial 1 (0.3) is a lucky draw: on its extra seeds it is 0.7, so trial 2 (0.35) is
    # confirmed next, wins on its mean and is trained on one held-out seed (0.38)
    from autolr.backends.ray_pick import RayPick
    from autolr.result import TrialRecord, TuneResult
    from autolr.space import TrialConfig
    from autolr.training import COMPLETE, TrialOutcome

    def run(config, reporter, seed_offset=0):
        run.calls.append((config.lr, seed_offset))
        steady = config.lr > 0.02  # trial 1's config is 0.7 on every other seed
        final = {0.02: 0.7, 0.03: 0.35, 0.04: 0.2}[config.lr] + steady * 0.01 * seed_offset
        return TrialOutcome(COMPLETE, values=[1.0, final], epochs_run=2.0, seconds=0.5)

    run.calls = []
    run_many = lambda config, offsets: [run(config, None, k) for k in offsets]  # noqa: E731
    swept = dataclasses.replace(sweep(n_evals=2), run=run, confirm_seeds=2)
    tuned = [TrialRecord(n, "complete", TrialConfig(lr).to_dict(), values=(1.0, value),
                         epochs_run=6.0) for n, lr, value in
             ((0, 0.01, 0.5), (1, 0.02, 0.3), (2, 0.03, 0.35))]
    log = tmp_path / "s.pick.jsonl"
    pick = RayPick(swept, tuned, log, run_many)
    pick.settle(None)
    records = pick.records(None)
    assert run.calls == [(0.02, 1), (0.02, 2), (0.03, 1), (0.03, 2), (0.03, 3)]
    assert records[1].seed_values == (0.3, 0.7, 0.7) and not records[1].holdout_values
    assert records[2].seed_values == pytest.approx((0.35, 0.36, 0.37))
    assert records[2].holdout_values == pytest.approx((0.38,))
    assert records[2].extra_epochs == 6.0 and records[2].extra_seconds == 1.5
    result = TuneResult(records)
    assert result.best_record.number == 2 and result.best_value == pytest.approx(0.38)
    assert tuned[2].seed_values == ()  # the records handed in are not changed
    assert len(log.read_text().splitlines()) == 3  # each config's runs, as they finished

    # a resume (or a killed driver) reads them back, past a line a kill cut short
    with open(log, "a") as out:
        out.write('{"number": 0, "field": "seed_va')
    again = RayPick(swept, tuned, log, run_many)
    again.settle(None)
    assert again.records(None) == records and len(run.calls) == 5  # nothing trained again
    # an extended sweep: its new leader is confirmed and held out, and logged after the
    # cut line, where the next resume reads it
    extended = [*tuned, TrialRecord(3, "complete", TrialConfig(0.04).to_dict(),
                                    values=(1.0, 0.2), epochs_run=6.0)]
    more = RayPick(swept, extended, log, run_many)
    more.settle(None)
    assert run.calls[5:] == [(0.04, 1), (0.04, 2), (0.04, 3)]
    assert more.records(None)[:3] == records
    assert RayPick(swept, extended, log, run_many).records(None) == more.records(None)


def test_the_ray_pick_runs_a_configs_seeds_side_by_side_and_counts_them_all(tmp_path):
    # Ray trains seeds 1 and 2 at once: seed 1 diverges, so the config is out as if run
    # one after the other, but seed 2's run was paid for and counts
    from autolr.backends.ray_pick import RayPick
    from autolr.result import TrialRecord
    from autolr.space import TrialConfig
    from autolr.training import COMPLETE, DIVERGED, TrialOutcome

    batches = []

    def run_many(config, offsets):
        batches.append(offsets)
        return [TrialOutcome(DIVERGED if k == 1 else COMPLETE, values=[1.0, 0.3],
                             epochs_run=2.0 - (k == 1), seconds=1.0) for k in offsets]

    swept = dataclasses.replace(sweep(n_evals=2), confirm_seeds=2)
    tuned = [TrialRecord(0, "complete", TrialConfig(0.01).to_dict(), values=(1.0, 0.2),
                         epochs_run=20.0)]
    pick = RayPick(swept, tuned, tmp_path / "s.pick.jsonl", run_many)
    pick.settle(None)
    (record,) = pick.records(None)
    assert batches == [[1, 2]]  # one batch: side by side; nothing left to hold out
    assert record.state == "diverged" and record.reason.startswith("diverged on extra seed 1")
    assert record.seed_values == (0.2,) and record.extra_epochs == 3.0


def test_the_ray_pick_steps_back_once_as_a_trial_of_the_sweep(tmp_path):
    # lr 0.2 diverged; trial 1 (lr 0.15, 0.1) sits within 1.5x of it and diverges on any
    # other seed; below the edge the config finishes near 0.15. The pick has the backend
    # train it at 0.2 / 1.65 (a Tune trial: `train`), then confirms and holds out that.
    from autolr.backends.ray_pick import RayPick
    from autolr.result import TrialRecord, TuneResult
    from autolr.robust import EDGE_MARGIN, STEP_BACK_ROOM
    from autolr.space import TrialConfig
    from autolr.training import COMPLETE, DIVERGED, TrialOutcome

    def run_many(config, offsets):
        return [TrialOutcome(DIVERGED if config.lr >= 0.13 else COMPLETE,
                             values=[1.0, 0.15 + 0.01 * k], epochs_run=2.0) for k in offsets]

    swept = dataclasses.replace(sweep(n_evals=2), confirm_seeds=2,
                                space=SearchSpace(lr=(1e-3, 1.0), schedules=("constant",)))
    tuned = [TrialRecord(n, state, TrialConfig(lr).to_dict(), values=(1.0, value),
                         epochs_run=6.0) for n, state, lr, value in
             ((0, "diverged", 0.2, math.nan), (1, "complete", 0.15, 0.1),
              (2, "complete", 0.02, 0.5))]
    trained = []

    def twin(params, from_number):  # the trial Tune gives back
        config = swept.space.config_from_params(params, swept.n_train)
        return TrialRecord(3, "complete", config.to_dict(), values=(1.0, 0.15),
                           epochs_run=2.0, steps_back_from=from_number)

    def train(params, from_number):
        trained.append((params, from_number))
        return [twin(params, from_number)]

    log = tmp_path / "s.pick.jsonl"
    pick = RayPick(swept, tuned, log, run_many, train)
    pick.settle(None)
    stepped = 0.2 / (EDGE_MARGIN * STEP_BACK_ROOM)
    assert len(trained) == 1 and trained[0][1] == 1
    assert trained[0][0]["lr"] == pytest.approx(stepped)
    result = TuneResult(pick.records(None))
    assert [r.number for r in result.records] == [0, 1, 2, 3]
    assert result.best_record.number == 3 and result.best_record.steps_back_from == 1
    assert result.best_record.seed_values == pytest.approx((0.15, 0.16, 0.17))
    assert result.best_value == pytest.approx(0.18)  # its held-out seed
    assert "trial 3 trained its config again at lr 0.121 (a step back)" in result.summary()
    # a resume reads the twin back from Tune with the rest: no second step back
    again = RayPick(swept, [*tuned, twin(*trained[0])], log, run_many, train)
    again.settle(None)
    assert len(trained) == 1 and again.records(None) == pick.records(None)


@pytest.mark.parametrize("given, options", [
    (None, {"num_cpus": 1, "num_gpus": 0.0}),
    ({"CPU": 2, "GPU": 0.5}, {"num_cpus": 2, "num_gpus": 0.5}),
    ({"cpu": 1, "memory": 2**30, "tpu": 1}, {"num_cpus": 1, "num_gpus": 0.0,
                                             "memory": 2**30, "resources": {"tpu": 1}}),
])
def test_the_picks_extra_runs_ask_ray_for_a_trials_resources(given, options):
    from autolr.backends.ray import _check_resources, _task_options

    assert _task_options(_check_resources(given)) == options


@pytest.mark.parametrize("given, fits", [
    (None, [False, True, True, False]),
    ({"cpu": 2}, [False, False, True, False]),
    ({"cpu": 1, "gpu": 1}, [False, False, False, False]),
    ({"cpu": 0, "tpu": 1}, [False, False, False, True]),
])
def test_the_load_check_asks_only_nodes_with_room_for_a_trial(given, fits):
    # a head started with --num-cpus 0 never runs a trial: its answer must not stop a sweep
    from autolr.backends.ray import _check_resources
    from autolr.backends.ray_nodes import _fits

    nodes = [{"Resources": {"memory": 8e9}}, {"Resources": {"CPU": 1.0}},
             {"Resources": {"CPU": 4.0, "memory": 8e9}}, {"Resources": {"tpu": 1.0}}]
    assert [_fits(node, _check_resources(given)) for node in nodes] == fits


@needs_ray
def test_the_benchmarks_ray_contender_runs_two_trials_at_once_on_a_local_ray():
    # in a process of its own: a local Ray started in this one leaves its settings here
    # (token authentication), and the cluster tests' driver, this process, would keep them
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import ray
        from benchmarks import accounting, live, tasks

        real_tune, asked = live.autolr.tune, []

        def tune(*args, **kwargs):  # the real sweep, and what it was asked for
            asked.append((kwargs.get("backend"), kwargs.get("max_concurrent")))
            return real_tune(*args, **kwargs)

        live.autolr.tune = tune
        try:
            sweep = live.run("autolr-ray2", tasks.get("tiny"), 0, 8.0)
            assert ray.cluster_resources()["CPU"] >= live.AT_ONCE  # its own local Ray
        finally:
            ray.shutdown()  # the local Ray it started: its own processes only
        assert sweep.fte >= (8 - accounting.pick_reserve(2)) * tasks.get("tiny").epochs
        assert set(asked) == {("ray", live.AT_ONCE)}, asked
        print("ran", len(sweep.events), "trials")
        """)], capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ran")


@needs_ray
def test_tunes_own_restore_hint_is_not_shown_beside_autolrs(caplog):
    # calling autolr again resumes; Tuner.restore by hand would lose its pruner and pick
    import logging

    tune_log = logging.getLogger("ray.tune.tune")
    with backend._tune_env(), caplog.at_level(logging.WARNING, "ray.tune.tune"):
        tune_log.warning("Experiment has been interrupted, but the most recent state was "
                         "saved.\nResume experiment with: Tuner.restore(path=...)")
        tune_log.warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune "
                         "run. ... Press CTRL+C (or send SIGINT/SIGKILL/SIGTERM) to skip. ")
        tune_log.warning("something else")
    tune_log.warning("Experiment has been interrupted (outside autolr)")
    assert [r.getMessage() for r in caplog.records] == [
        "stopping: Ray saves the sweep's state once more (Ctrl-C again skips that; every "
        "trial that ended is kept either way)",
        "something else", "Experiment has been interrupted (outside autolr)"]


@needs_ray
def test_around_tunes_fit_sigterm_acts_as_ctrl_c_and_tunes_handler_is_removed_after():
    import os
    import signal

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    caught = []
    with backend._fit_signals():
        # Tune's fit installs a SIGINT handler that ends the run gracefully, and leaves it
        signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stopping the job
    assert caught == [signal.SIGINT]
    # after it: the handlers from before, so the next Ctrl-C (in the pick) is not swallowed
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@needs_ray
def test_a_resumed_trial_that_ended_before_the_kill_reports_that_end(tmp_path, monkeypatch):
    # Tune's own state lags: a trial the saved result shows ended may come back running
    reported = []
    monkeypatch.setattr(backend.tune, "report", reported.append)
    ended = backend.TrialRecord(3, "pruned", {"lr": 0.01}, reason="pruned at 2 of 4",
                                values=(1.0, 0.9), seconds=1.5, node="127.0.0.3")
    autolr.TuneResult([ended, backend.TrialRecord(4, "failed", reason="interrupted: gone")],
                      ).save(tmp_path / "s.autolr.json")
    finished = backend._ended_trials(tmp_path / "s.autolr.json")
    assert list(finished) == [3]  # the interrupted one runs again
    backend._train({backend._NUMBER: 3}, stored=[None], threads=1, ended=finished)
    # each evaluation again, one a step (ASHA files each at its own rung), with its end
    assert [r["value"] for r in reported] == [1.0, 0.9]
    run = backend._Run(sweep(), None, "auto", "min", 1, str(tmp_path))
    assert all(run.record(r, {backend._NUMBER: 3}, None) == ended for r in reported)
    reported.clear()  # a diverged one: its NaN last, as it ended
    diverged = {**finished[3], "state": "diverged", "values": [1.0]}
    backend._train({backend._NUMBER: 3}, stored=[None], threads=1, ended={3: diverged})
    assert reported[0]["value"] == 1.0 and math.isnan(reported[1]["value"])
    assert backend._ended_trials(tmp_path / "missing.autolr.json") == {}


@needs_ray
def test_ctrl_c_on_a_ray_sweep_without_storage_hands_over_its_finished_trials(tmp_path,
                                                                              monkeypatch):
    # its temporary folder was removed, and the finished trials with it
    import types

    stopped = [types.SimpleNamespace(status="TERMINATED"), types.SimpleNamespace(status="PENDING")]
    monkeypatch.setattr(backend.tune, "ExperimentAnalysis",
                        lambda path: types.SimpleNamespace(trials=stopped))
    tuner = types.SimpleNamespace(fit=lambda: types.SimpleNamespace(experiment_path="x"))
    done = backend.TrialRecord(0, "complete", {"lr": 0.01}, values=(1.0, 0.5))
    in_memory = backend._Run(sweep(), None, "auto", "min", 1, str(tmp_path))
    with pytest.raises(autolr.SweepInterrupted) as interrupted:
        in_memory.fit(tuner, [done], progress=False)
    assert interrupted.value.records == [done]
    stored = backend._Run(sweep(), None, "auto", "min", 1, str(tmp_path), keep=lambda r: None)
    with pytest.raises(KeyboardInterrupt) as plain:  # kept in its storage: resumed later
        stored.fit(tuner, [done], progress=False)
    assert not isinstance(plain.value, autolr.SweepInterrupted)


@needs_ray
def test_a_second_driver_on_a_running_sweep_is_refused_before_connecting(tmp_path):
    # it would restore the same Tune run and train its unfinished trials twice
    import os
    import socket

    driver = tmp_path / "s.driver.json"
    driver.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    with pytest.raises(AutoLRError, match=rf"study 's' is being run by process "
                                          rf"{os.getppid()} on .*choose another study_name"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, storage=str(tmp_path), study_name="s")
    assert not ray.is_initialized() and driver.exists()  # still the other driver's
    # a driver that died on this host: its file is taken over (and the sweep goes on to
    # connect, here to an address nobody answers at) and let go when the call ends
    driver.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 1}))
    with pytest.raises(AutoLRError, match="nothing answers there"):
        autolr.tune(torch.nn.Linear(4, 2), DATA, backend="ray", n_trials=2, epochs=1,
                    progress=False, storage=str(tmp_path), study_name="s",
                    ray_address=f"127.0.0.2:{closed_port()}")
    assert not driver.exists()


@needs_ray
def test_no_address_starts_a_ray_of_its_own_not_the_one_a_stale_file_names(monkeypatch):
    # ray.init() joins the cluster /tmp/ray/ray_current_cluster names, if any: a stale one
    # (its head gone) was retried for ever, though None means a local Ray
    asked = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **options: asked.append(options["address"]))
    backend._connect(None)
    backend._connect("auto")  # joining the machine's running cluster is what "auto" asks
    assert asked == ["local", "auto"]


@needs_ray
def test_a_ray_address_that_is_not_text_is_refused_before_connecting():
    with pytest.raises(AutoLRError, match=r"ray_address must be None, 'auto' or 'host:port' "
                                          r".* but got 6395"):
        backend.run_ray(sweep(), address=6395)


@needs_ray
def test_past_the_timeout_the_searcher_starts_no_trial_and_stops_none(monkeypatch):
    import time

    # Tune's own time budget stopped running trials mid-run, recorded as pruned; the
    # searcher's FINISHED lets them end and starts no more
    searcher = object.__new__(backend._Search)  # suggest() looks at nothing else here
    monkeypatch.setattr(backend._Search, "deadline", time.monotonic() - 1.0)
    assert searcher.suggest("t") == backend._Search.FINISHED
    assert "deadline" not in vars(searcher)  # not saved with the experiment
    run = backend._Run(dataclasses.replace(sweep(), timeout=60.0), None, "none", "min", 1,
                       "/nonexistent")
    assert 59.0 < run.deadline - time.monotonic() <= 60.0
