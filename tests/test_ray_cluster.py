"""The Ray backend on a real two-node Ray cluster on loopback: head on 127.0.0.2, worker on
127.0.0.3, every port free-picked, one temp dir per cluster. Each `ray start --block` runs
in a session of its own, and teardown kills exactly that session's processes, by PID.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
tune = pytest.importorskip("ray.tune")
torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

import autolr  # noqa: E402
from autolr.pruning import DIVERGENCE_PATIENCE  # noqa: E402

pytestmark = pytest.mark.slow
HEAD, WORKER = "127.0.0.2", "127.0.0.3"
RAY_BIN = str(Path(sys.executable).with_name("ray"))
ENV = {"RAY_AUTH_MODE": "disabled"}  # a private loopback cluster: no token files


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_range(host: str, size: int = 64) -> tuple[int, int]:
    """A block of free ports for a node's worker processes, below Linux's ephemeral range
    (32768 and up), where `free_port`'s picks come from: the two never overlap."""
    while True:
        low = random.randrange(20000, 32000 - size)
        try:
            for port in range(low, low + size):
                with socket.socket() as sock:
                    sock.bind((host, port))
            return low, low + size - 1
        except OSError:
            continue


def session_pids(leader: int) -> list[int]:
    """Live processes of the session that `leader` started (zombies left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == leader and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class LoopbackCluster:
    """Two Ray nodes on this machine. `kill_worker` and `stop` end only our processes."""

    def __init__(self) -> None:
        self.temp = tempfile.mkdtemp(prefix="alr", dir="/tmp")  # short: socket paths
        self.used: set[tuple[str, int]] = set()
        self.port = self._ports(HEAD, 1)[0]
        self.address = f"{HEAD}:{self.port}"
        self.head = self.worker = None

    def _ports(self, ip: str, n: int) -> list[int]:
        """n free ports on `ip`, distinct from each other and from those given before."""
        picked: list[int] = []
        while len(picked) < n:
            port = free_port(ip)
            if (ip, port) not in self.used:
                self.used.add((ip, port))
                picked.append(port)
        return picked

    def _node(self, ip: str, extra: list[str], log: str) -> subprocess.Popen:
        low, high = free_range(ip)
        ports = iter(self._ports(ip, 6))
        args = [RAY_BIN, "start", *extra, "--node-ip-address", ip, "--num-cpus", "1",
                "--disable-usage-stats", "--block", "--temp-dir", self.temp,
                "--object-store-memory", str(200 * 2**20),
                "--node-manager-port", str(next(ports)),
                "--object-manager-port", str(next(ports)),
                "--min-worker-port", str(low), "--max-worker-port", str(high),
                "--dashboard-agent-listen-port", str(next(ports)),
                "--dashboard-agent-grpc-port", str(next(ports)),
                "--runtime-env-agent-port", str(next(ports)),
                "--metrics-export-port", str(next(ports))]
        with open(os.path.join(self.temp, log), "w") as out:
            return subprocess.Popen(args, start_new_session=True, stdout=out,
                                    stderr=subprocess.STDOUT, env={**os.environ, **ENV})

    def start(self) -> float:
        started = time.perf_counter()
        self.head = self._node(HEAD, ["--head", "--port", str(self.port),
                                      "--include-dashboard=false", "--dashboard-host", HEAD,
                                      "--dashboard-port", str(self._ports(HEAD, 1)[0])],
                               "head.log")
        self._wait_for(1)
        self.start_worker()
        return time.perf_counter() - started

    def start_worker(self) -> None:
        self.worker = self._node(WORKER, ["--address", self.address], "worker.log")
        self._wait_for(2)

    def _wait_for(self, nodes: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.head, self.worker):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"a Ray node exited:\n{self._log_tails()}")
            status = subprocess.run([RAY_BIN, "status", "--address", self.address],
                                    capture_output=True, text=True, timeout=60,
                                    env={**os.environ, **ENV})
            if status.returncode == 0 and f"/{float(nodes)} CPU" in status.stdout:
                return
            time.sleep(0.5)
        raise TimeoutError(f"the Ray cluster did not reach {nodes} nodes; see {self.temp}")

    def _log_tails(self, lines: int = 15) -> str:
        """The end of each node's log (the folder is removed at teardown)."""
        tails = []
        for name in ("head.log", "worker.log"):
            path = Path(self.temp, name)
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                tails.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(tails)

    @staticmethod
    def kill(proc: subprocess.Popen | None) -> None:
        """SIGKILL every process of the session `proc` leads, by PID, and wait for them."""
        if proc is None:
            return
        for _ in range(50):
            pids = session_pids(proc.pid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        proc.wait(timeout=30)

    def kill_worker(self) -> None:
        self.kill(self.worker)

    def stop(self) -> None:
        self.kill(self.worker)
        self.kill(self.head)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    patch = pytest.MonkeyPatch()
    for key, value in ENV.items():
        patch.setenv(key, value)
    loopback = LoopbackCluster()
    try:
        loopback.startup_seconds = loopback.start()
        yield loopback
    finally:
        if ray.is_initialized():
            ray.shutdown()
        loopback.stop()
        patch.undo()
        assert not session_pids(loopback.head.pid) and not session_pids(loopback.worker.pid)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


SWEEP = dict(epochs=3, progress=False, backend="ray", seed=0)


def test_a_sweep_runs_on_both_nodes_and_can_be_extended(cluster, digits, tmp_path):
    print(f"cluster start-up: {cluster.startup_seconds:.1f} s")
    storage = tmp_path / "ray"
    result = autolr.tune(mlp(), digits, n_trials=8, ray_address=cluster.address,
                         storage=str(storage), study_name="digits", **SWEEP)
    records = result.records
    stepped = [r for r in records if r.steps_back_from is not None]  # the pick's, if due
    assert len(records) == 8 + len(stepped) and len(stepped) <= 1
    assert [r.number for r in records] == list(range(len(records)))
    assert {r.node for r in records} == {HEAD, WORKER}
    assert {r.state for r in records} <= {"complete", "pruned", "diverged"}
    # the default config: the last trial of a sweep this small (autolr's sampler)
    assert records[7].is_baseline and sum(r.is_baseline for r in records) == 1
    for r in records:
        assert len(r.values) == len(r.val_losses) == len(r.train_losses) >= 1
        assert r.steps_run > 0 and r.seconds > 0 and r.params["schedule"]
    assert result.best_record.state == "complete" and result.best_value < 1.0
    assert not result.trials.empty and "lr" in result.trials.columns
    saved = autolr.TuneResult.load(storage / "digits.autolr.json")
    assert [r.values for r in saved.records] == [r.values for r in records]
    assert autolr.load(storage).records == saved.records  # its only study, no Ray needed
    # the range test ran in the driver at the best config's batch size, and was kept
    assert result.range_test.batch_size == result.best_config["batch_size"]
    assert saved.range_test == result.range_test and saved.ended is True
    # what learning nothing scores is kept too (log 10 for 10 balanced classes)
    assert saved.chance == result.chance and result.chance["value"] == pytest.approx(2.3, abs=0.1)

    # more trials: the finished experiment stays, a second one goes on from its searcher
    more = autolr.tune(mlp(), digits, n_trials=11, ray_address=cluster.address,
                       storage=str(storage), study_name="digits", **SWEEP)
    # a step back in the first call counts towards the 11; one due only now comes after
    late = any(r.steps_back_from is not None for r in more.records) and not stepped
    assert [r.number for r in more.records] == list(range(11 + late))
    tune_part = lambda r: (r.number, r.params, r.values)  # noqa: E731 (the pick may add seeds)
    assert list(map(tune_part, more.records[:len(records)])) == list(map(tune_part, records))
    assert sum(r.is_baseline for r in more.records) == 1
    assert (storage / "digits.2").is_dir()
    # and a call with what is there already runs nothing
    again = autolr.tune(mlp(), digits, n_trials=11, ray_address=cluster.address,
                        storage=str(storage), study_name="digits", **SWEEP)
    assert again.records == more.records
    # another seed is another split: refused before any trial, as with the Optuna backend
    with pytest.raises(autolr.AutoLRError, match="seed: stored 0, now 1"):
        autolr.tune(mlp(), digits, n_trials=12, ray_address=cluster.address,
                    storage=str(storage), study_name="digits", **{**SWEEP, "seed": 1})


class Marked:
    """A model factory that leaves a file per trial start: trial id, node, time. It runs
    on the workers (this module is pickled by value: the workers cannot import it)."""

    def __init__(self, folder: str, pause: float = 0.0) -> None:
        self.folder, self.pause = folder, pause

    def __call__(self) -> torch.nn.Module:
        with warnings.catch_warnings():  # autolr probes the model on the driver too
            warnings.simplefilter("ignore")
            trial = tune.get_context().get_trial_id()
        node = ray.util.get_node_ip_address()
        Path(self.folder, f"{time.time_ns()}@{trial}@{node}").touch()
        time.sleep(self.pause)  # so that a kill lands while the trial runs
        return mlp()


def markers(folder: Path) -> list[tuple[str, str]]:
    """(trial id, node) of every trial start so far, in order."""
    return [tuple(p.name.split("@")[1:]) for p in sorted(folder.iterdir(),
                                                          key=lambda p: int(p.name.split("@")[0]))]


def test_killing_the_worker_node_mid_sweep_loses_no_trial(cluster, digits, tmp_path):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = tmp_path / "starts"
    folder.mkdir()
    killed: list[str] = []

    def kill_when_the_worker_runs_its_second_trial() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            on_worker = [trial for trial, node in markers(folder) if node == WORKER]
            if len(set(on_worker)) >= 2:  # its first trial is done, the second runs
                killed.append(on_worker[-1])
                cluster.kill_worker()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_when_the_worker_runs_its_second_trial)
    watcher.start()
    try:
        result = autolr.tune(Marked(str(folder), pause=1.0), digits, n_trials=6,
                             ray_address=cluster.address, storage=str(tmp_path / "ray"),
                             study_name="kill", pruner="none", **SWEEP)
    finally:
        watcher.join()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    try:
        assert killed, "the worker never ran two trials"
        records = result.records
        assert len(records) == 6 and sorted(r.number for r in records) == list(range(6))
        assert {r.state for r in records} == {"complete"}  # none failed, none lost
        assert WORKER in {r.node for r in records}  # finished there before the kill: kept
        starts = markers(folder)
        retried = [node for trial, node in starts if trial == killed[0]]
        assert retried[0] == WORKER and HEAD in retried[1:]  # interrupted, then run again
    finally:
        cluster.start_worker()  # leave a two-node cluster for the tests after this one


DRIVER = """
import sys, time
import torch
from sklearn.datasets import load_digits
import autolr

def model():
    time.sleep(0.5)  # trials long enough to be caught running
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

X, y = load_digits(return_X_y=True)
autolr.tune(model, (X / 16, y), n_trials=10, epochs=3, progress=False, backend="ray", seed=0,
            ray_address=sys.argv[1], storage=sys.argv[2], study_name="resume")
"""


def saved_trials(path: Path) -> dict[int, dict]:
    """The finished trials in the experiment state saved at `path` (their records)."""
    try:
        trials = tune.ExperimentAnalysis(str(path)).trials
    except Exception:  # not written yet
        return {}
    payloads = [json.loads(t.last_result["autolr"]) for t in trials
                if t.status == "TERMINATED" and "autolr" in (t.last_result or {})]
    return {p["number"]: p for p in payloads}


def test_a_killed_driver_resumes_where_it_stopped(cluster, digits, tmp_path):
    script, storage = tmp_path / "driver.py", tmp_path / "ray"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), cluster.address, str(storage)],
                              start_new_session=True, env={**os.environ, **ENV})
    try:
        deadline = time.monotonic() + 180
        while len(saved_trials(storage / "resume")) < 2 and time.monotonic() < deadline:
            assert driver.poll() is None, "the driver ended before it was killed"
            time.sleep(0.2)
    finally:
        LoopbackCluster.kill(driver)  # SIGKILL: no chance to save anything on the way out
    finished = saved_trials(storage / "resume")
    assert 2 <= len(finished) < 10
    # the sweep so far can be read, shown and reported on, without resuming it
    partial = autolr.load(str(storage), "resume")
    assert partial.records and len(partial.records) < 10
    for record in partial.records:
        assert record.state in ("complete", "pruned", "diverged")
        if record.number in finished:
            assert list(record.values) == finished[record.number]["values"]

    result = autolr.tune(mlp(), digits, n_trials=10, ray_address=cluster.address,
                         storage=str(storage), study_name="resume", **SWEEP)
    records = {r.number: r for r in result.records}
    for ended in partial.records:  # not trained again, though Tune's own state lagged
        again = records[ended.number]
        assert (again.state, again.values, again.seconds, again.node) == (
            ended.state, ended.values, ended.seconds, ended.node)
    stepped = [r for r in records.values() if r.steps_back_from is not None]
    assert sorted(records) == list(range(10 + len(stepped))) and len(stepped) <= 1
    assert all(r.state != "failed" for r in records.values())
    for number, payload in finished.items():  # no finished trial lost, none run again
        assert list(records[number].values) == payload["values"]
        assert records[number].params == payload["params"]
    assert sum(r.is_baseline for r in records.values()) == 1


class Starts:
    """A model factory that leaves a file per call, named by process: run on the workers
    for each trial and each of the pick's extra runs (pickled by value, as Marked)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self) -> torch.nn.Module:
        Path(self.folder, f"{os.getpid()}@{time.time_ns()}").touch()
        return mlp()


def test_the_robust_pick_runs_on_the_cluster_and_a_resume_keeps_it(cluster, digits,
                                                                   tmp_path):
    from ray import cloudpickle

    folder, storage = tmp_path / "starts", tmp_path / "ray"
    folder.mkdir()
    settings = dict(n_trials=8, epochs=2, pruner="none", space={"lr": (1e-3, 3e-2)},
                    ray_address=cluster.address, storage=str(storage), study_name="pick",
                    progress=False, backend="ray", seed=0)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        result = autolr.tune(Starts(str(folder)), digits, **settings)
        again = autolr.tune(Starts(str(folder)), digits, **settings)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    best = result.best_record
    # confirmed on 2 extra seeds, then trained on 1 held-out seed: the value told
    assert len(best.seed_values) == 3 and best.holdout_values
    assert result.best_value == best.holdout_values[0] and result.best_std > 0
    assert "held-out seed" in result.summary()
    extra_runs = sum(r.extra_epochs for r in result.records) / 2  # 2 epochs a run
    assert extra_runs >= 3 and extra_runs == int(extra_runs)
    # the extra runs trained on the workers, not in the driver (which only probes)
    on_workers = [p for p in folder.iterdir() if int(p.name.split("@")[0]) != os.getpid()]
    assert len(on_workers) == len(result.records) + extra_runs  # a step back: a trial
    saved = autolr.TuneResult.load(storage / "pick.autolr.json")
    assert saved.best_record == best and saved.best_value == result.best_value
    # a second call finds them logged: the same records, nothing trained again on workers
    assert again.records == result.records
    assert len([p for p in folder.iterdir()
                if int(p.name.split("@")[0]) != os.getpid()]) == len(on_workers)


def test_the_step_back_is_a_trial_of_the_sweep_that_resume_and_extension_keep(
        cluster, digits, tmp_path, monkeypatch):
    # whether a step back is due is the pick's rule (test_robust); here it is forced, on
    # the best run, to see what Ray does with it: a Tune trial, unpruned, whose number
    # the searcher hands out, and which a resume and an extension keep
    import autolr.pick
    from autolr.result import complete_records

    def forced(records, direction):
        best = min(complete_records(records), key=lambda r: r.final_value)
        forced.best = best
        return best, best.params["lr"] / 1.65

    monkeypatch.setattr(autolr.pick, "step_back", forced)
    storage = tmp_path / "ray"
    settings = dict(epochs=2, pruner="none", space={"lr": (1e-3, 3e-2)},
                    ray_address=cluster.address, storage=str(storage), study_name="back",
                    progress=False, backend="ray", seed=0, range_test=False)
    result = autolr.tune(mlp(), digits, n_trials=8, **settings)
    numbers = [r.number for r in result.records]
    assert numbers == list(range(9))  # the searcher numbered the twin: trial 8
    twin = result.records[8]
    assert twin.steps_back_from == forced.best.number and twin.state == "complete"
    assert twin.params["lr"] == pytest.approx(forced.best.params["lr"] / 1.65)
    assert {k: v for k, v in twin.params.items() if k != "lr"} == {
        k: v for k, v in forced.best.params.items() if k != "lr"}
    assert twin.epochs_run == pytest.approx(2.0)  # unpruned: trained to the end
    assert twin.node in {HEAD, WORKER} and (storage / "back.2").is_dir()
    # a second call: the same records, no second step back, no new experiment
    again = autolr.tune(mlp(), digits, n_trials=8, **settings)
    assert again.records == result.records and not (storage / "back.3").exists()
    # extended: the twin counts as a trial (as with Optuna); numbering goes on after it
    more = autolr.tune(mlp(), digits, n_trials=10, **settings)
    assert [r.number for r in more.records] == list(range(10))
    assert [r.steps_back_from is not None for r in more.records].count(True) == 1


def test_a_model_no_node_can_import_fails_before_any_trial(cluster, digits, tmp_path,
                                                           monkeypatch):
    # the class's module is on the driver's path only: cloudpickle sends it by reference,
    # and neither node can import it
    (tmp_path / "driver_only_model.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(torch.nn.Linear(64, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from driver_only_model import Net

    storage = tmp_path / "ray"
    with pytest.raises(autolr.AutoLRError, match=r"cannot be loaded on 2 of 2 Ray nodes "
                       r"\(127\.0\.0\.[23]: ModuleNotFoundError: No module named "
                       r"'driver_only_model'; 127\.0\.0\.[23]: .*py_modules"):
        autolr.tune(Net, digits, n_trials=20, ray_address=cluster.address,
                    storage=str(storage), study_name="hidden", **SWEEP)
    assert not (storage / "hidden").exists()  # Tune never started: no trial ran
    # nor were its settings kept: a call with other ones (the fix made) is no resume
    assert not (storage / "hidden.settings.json").exists()


MODEL_FILE = """
import torch
from sklearn.datasets import load_digits


class Net(torch.nn.Sequential):  # defined in the file: no node can import it by name
    def __init__(self):
        super().__init__(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def model():
    torch.manual_seed(0)
    return Net()


def data():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y
"""


def test_the_cli_runs_a_model_file_on_the_cluster(cluster, tmp_path):
    # the file's module is no package the nodes can import: its code goes by value
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "digits_net.py").write_text(MODEL_FILE)
    autolr_cli = str(Path(sys.executable).with_name("autolr"))
    done = subprocess.run(
        [autolr_cli, "tune", str(tmp_path / "code" / "digits_net.py"), "--backend", "ray",
         "--ray-address", cluster.address, "--storage", str(tmp_path / "ray"),
         "--trials", "3", "--epochs", "1", "--quiet", "--no-range-test"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr[-3000:]
    result = autolr.load(str(tmp_path / "ray"), "digits_net")
    assert len(result.records) >= 3 and result.best_record is not None


def test_sigterm_stops_a_cli_sweep_on_the_cluster_as_ctrl_c_does(cluster, tmp_path):
    # ray.init replaces the CLI's SIGTERM handler with a bare exit: no word, exit 15
    (tmp_path / "digits_net.py").write_text(MODEL_FILE)
    command = [str(Path(sys.executable).with_name("autolr")), "tune", "digits_net.py",
               "--backend", "ray", "--ray-address", cluster.address, "--storage",
               str(tmp_path / "ray"), "--trials", "40", "--epochs", "20", "--quiet",
               "--no-range-test"]
    sweep = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **ENV}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    saved = tmp_path / "ray" / "digits_net.autolr.json"
    try:
        deadline = time.monotonic() + 180
        while not saved.is_file() and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.2)
        assert saved.is_file(), "no trial ended"
        sweep.send_signal(signal.SIGTERM)  # to the driver alone, as a scheduler does
        _, err = sweep.communicate(timeout=120)
    finally:
        LoopbackCluster.kill(sweep)
    assert sweep.returncode == 130, err[-3000:]
    assert "autolr: interrupted; every finished trial is kept" in err
    assert "SIGTERM received" not in err and "Tuner.restore" not in err
    kept = autolr.load(str(tmp_path / "ray"), "digits_net")
    assert 1 <= len(kept.records) < 40 and kept.ended is False  # the report says so


def test_a_timeout_starts_no_new_trial_and_lets_the_running_ones_finish(cluster, digits,
                                                                         tmp_path, caplog):
    # Tune's own time budget stopped running trials mid-run, recorded as pruned, and the
    # sweep's best could be lost so; as on the Optuna backend, the running ones finish
    from ray import cloudpickle

    folder = tmp_path / "starts"
    folder.mkdir()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="autolr"):
            result = autolr.tune(Marked(str(folder), pause=3.0), digits, n_trials=30,
                                 timeout=8.0, pruner="none", confirm_seeds=0,
                                 range_test=False, ray_address=cluster.address, **SWEEP)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    records = result.records
    assert 1 <= len(records) < 30 and time.monotonic() - started < 120
    # every trial that started on a worker ran to its end: none cut, none lost
    on_workers = {trial for trial, node in markers(folder) if trial != "None"}
    assert len(on_workers) == len(records)
    assert {r.state for r in records} == {"complete"}
    assert all(r.epochs_run == SWEEP["epochs"] for r in records)
    assert result.best_record is not None
    assert any(f"the sweep holds {len(records)} of its 30 trials" in m for m in caplog.messages)
    assert result.cut_short == (f"the timeout (8 s) stopped the sweep after {len(records)} "
                                "of its 30 trials")


def test_resources_no_node_has_fail_before_any_trial(cluster, digits, tmp_path):
    # Tune would wait for a node with a GPU for ever, saying nothing
    storage = tmp_path / "ray"
    started = time.monotonic()
    with pytest.raises(autolr.AutoLRError, match=r"no node of the Ray cluster has the "
                       r"resources a trial asks for \(cpu 1, gpu 1\); its nodes have cpu 1.*; "
                       r"cpu 1.*Ask for less with resources_per_trial"):
        autolr.tune(mlp, digits, n_trials=4, ray_address=cluster.address,
                    storage=str(storage), study_name="gpu",
                    resources_per_trial={"cpu": 1, "gpu": 1}, **SWEEP)
    assert time.monotonic() - started < 60
    assert not (storage / "gpu").exists() and not (storage / "gpu.settings.json").exists()


def test_diverged_trials_stop_at_once_and_never_win(cluster, digits):
    result = autolr.tune(mlp(), digits, n_trials=3, space={"lr": (50.0, 500.0)},
                         ray_address=cluster.address, **SWEEP)
    assert [r.state for r in result.records] == ["diverged"] * 3
    for record in result.records:  # stopped within the patience (or at the run's end if
        # shorter: 18 steps at batch 256), and says why
        per_epoch = math.ceil(len(digits[0]) * 0.8 / record.params["batch_size"])
        assert record.steps_run <= per_epoch + DIVERGENCE_PATIENCE and record.reason
    assert result.best_record is None and "no trial completed" in result.summary()


def test_a_metric_to_maximize(cluster, digits):
    result = autolr.tune(mlp(), digits, n_trials=4, metric="accuracy", pruner="none",
                         ray_address=cluster.address, **SWEEP)
    finals = [r.final_value for r in result.records if r.state == "complete"]
    assert result.direction == "maximize" and result.best_value == max(finals) > 0.5


def test_one_trial_at_a_time_the_cluster_prunes_as_the_optuna_backend(cluster, digits):
    # the default pruner (checked halving) judged on the driver from the trials' reports:
    # the same trials cut at the same evaluations, for the same reasons
    settings = dict(n_trials=30, epochs=9, seed=0, progress=False, confirm_seeds=0,
                    range_test=False)
    on_ray = autolr.tune(mlp(), digits, backend="ray", ray_address=cluster.address,
                         max_concurrent=1, **settings)
    in_process = autolr.tune(mlp(), digits, **settings)

    def trials(result):
        return [(r.number, r.params, r.state, len(r.values), r.reason) for r in result.records]

    assert trials(on_ray) == trials(in_process)
    reasons = [r.reason or "" for r in on_ray.records if r.state == "pruned"]
    assert any("checked halving" in why for why in reasons)
    assert any(why.startswith("behind the median") for why in reasons)
    assert on_ray.best_value == pytest.approx(in_process.best_value)
