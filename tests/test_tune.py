"""autolr.tune and autolr.train end to end, on real data with a tiny model."""

from __future__ import annotations

import collections
import math
import os
import tempfile
import time

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

import autolr
from autolr import AutoLRError, TuneResult
from autolr.pruning import DIVERGENCE_PATIENCE

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def mlp(width: int = 32, out: int = 10, inputs: int = 64) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(inputs, width), torch.nn.ReLU(),
                               torch.nn.Linear(width, out))


QUICK = dict(n_trials=4, epochs=2, progress=False)


def test_tune_returns_a_usable_result(digits):
    result = autolr.tune(mlp(), digits, **QUICK)
    assert isinstance(result, TuneResult)
    assert len(result.records) == 4
    table = result.trials
    for column in ("state", "reason", "lr", "schedule", "warmup_fraction", "batch_size",
                   "final_value", "best_value", "curve", "epochs_run", "steps_run", "seconds"):
        assert column in table.columns
    best = result.best_record
    assert best.state == "complete"
    assert result.best_value == best.final_value == min(
        r.final_value for r in result.records if r.state == "complete")
    assert set(result.best_config) == {"lr", "schedule", "schedule_params", "warmup_fraction",
                                       "batch_size", "optimizer", "weight_decay"}
    # the default config ran, for comparison: last in so small a sweep (n_trials=4)
    assert [r.is_baseline for r in result.records] == [False, False, False, True]
    assert result.baseline.params["lr"] == 1e-3
    model = mlp()
    optimizer = result.make_optimizer(model)
    scheduler = result.make_scheduler(optimizer, steps_per_epoch=10, epochs=2)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(result.best_config["lr"])


def test_the_users_model_is_bit_identical_after_tune(digits):
    model = mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    autolr.tune(model, digits, **QUICK)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_every_trial_starts_from_the_same_weights(digits):
    """Two trials of one config give the same curve: same initial weights, same order."""
    space = {"lr": (1e-3, 1.0001e-3), "schedules": ["constant"], "batch_sizes": [32],
             "warmup": (0.0, 0.0)}
    result = autolr.tune(mlp(), digits, space=space, pruner="none", **QUICK)
    curves = {r.values for r in result.records}
    assert len(curves) == 1 or np.allclose(*list(curves)[:2], rtol=1e-3)


def test_a_model_factory_works(digits):
    result = autolr.tune(lambda: mlp(), digits, **QUICK)
    assert result.best_record is not None


def test_regression_is_inferred_from_float_targets():
    X, y = load_diabetes(return_X_y=True)
    result = autolr.tune(mlp(inputs=10, out=1), (X, (y - y.mean()) / y.std()),
                         metric="r2", **QUICK)
    assert result.direction == "maximize" and result.metric == "r2"
    assert result.best_value == max(r.final_value for r in result.records
                                    if r.state == "complete")


def test_large_learning_rates_diverge_early_and_never_win(digits):
    space = {"lr": (1e-3, 1e3), "schedules": ["constant"], "optimizers": ["sgd"],
             "batch_sizes": [64]}
    result = autolr.tune(mlp(), digits, space=space, n_trials=12, epochs=3, progress=False,
                         seed=1)
    diverged = [r for r in result.records if r.state == "diverged"]
    assert diverged, "lr up to 1e3 with SGD must blow up"
    per_epoch = math.ceil(len(digits[0]) * 0.8 / 64)
    for record in diverged:
        # NaN/inf stops at once, a finite blow-up DIVERGENCE_PATIENCE steps on: a blow-up
        # in the first epoch never trains through the second
        assert record.steps_run < per_epoch + DIVERGENCE_PATIENCE, "stopped soon after"
        assert record.params["lr"] > 0.1
    assert result.best_record.state == "complete"
    assert result.best_config["lr"] < min(r.params["lr"] for r in diverged)


def test_an_all_diverged_sweep_says_so_and_suggests_lower_rates(digits):
    space = {"lr": (1e3, 1e5), "schedules": ["constant"], "optimizers": ["sgd"]}
    result = autolr.tune(mlp(), digits, space=space, n_trials=3, epochs=2, progress=False)
    assert result.counts()["diverged"] == 3 and result.best_record is None
    with pytest.raises(AutoLRError, match="lower learning-rate range"):
        _ = result.best_config
    assert "no trial completed" in result.summary()


def test_a_trial_that_raises_is_failed_and_the_sweep_goes_on(digits):
    class FailsOnBigBatches(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def forward(self, x):
            if self.training and len(x) == 128:
                raise RuntimeError("out of memory (simulated)")
            return self.net(x)

    space = {"batch_sizes": [32, 128], "lr": (1e-3, 1e-2)}
    result = autolr.tune(FailsOnBigBatches(), digits, space=space, n_trials=8, epochs=1,
                         progress=False, seed=2)
    failed = [r for r in result.records if r.state == "failed"]
    assert failed and all(r.params["batch_size"] == 128 for r in failed)
    assert all("out of memory (simulated)" in r.reason for r in failed)
    assert len(result.records) == 8
    assert result.best_config["batch_size"] == 32


def test_storage_resumes_and_keeps_every_finished_trial(digits, tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    first = autolr.tune(mlp(), digits, storage=storage, study_name="s", **QUICK)
    more = autolr.tune(mlp(), digits, storage=storage, study_name="s", n_trials=6, epochs=2,
                       progress=False)
    assert len(more.records) == 6
    # the default config ran once, as the last of the first 4 trials: extending the sweep
    # (whose default-config trial would be trial 5) does not run it again
    assert [r.number for r in more.records if r.is_baseline] == [3]
    kept = {r.number: r.values for r in more.records}
    assert all(kept[r.number] == r.values for r in first.records)
    again = autolr.tune(mlp(), digits, storage=storage, study_name="s", n_trials=6, epochs=2,
                        progress=False)
    assert len(again.records) == 6  # already done: nothing more runs
    loaded = autolr.load(storage, "s")
    assert [r.values for r in loaded.records] == [r.values for r in more.records]


def test_two_worker_processes_share_the_sweep(digits, tmp_path):
    result = autolr.tune(mlp(), digits, n_jobs=2, n_trials=6, epochs=1, progress=False,
                         storage=str(tmp_path / "sweep.log"))
    numbers = [r.number for r in result.records]
    assert sorted(numbers) == list(range(6))
    assert len({(r.params["lr"], r.params["schedule"]) for r in result.records}) == 6


class FirstTrialSlow:
    """A model factory: the first trial a worker starts sleeps 3 s; every trial leaves a
    file named by its worker's pid."""

    def __init__(self, folder) -> None:
        self.folder, self.parent = folder, os.getpid()

    def __call__(self) -> torch.nn.Module:
        if os.getpid() != self.parent:  # the parent only probes the model
            (self.folder / f"{os.getpid()}-{time.time_ns()}").touch()
            try:
                (self.folder / "slow").touch(exist_ok=False)
                time.sleep(3.0)
            except FileExistsError:
                pass
        return mlp()


def test_a_worker_whose_trials_run_short_takes_more_of_them(digits, tmp_path):
    # each worker had a fixed share (3 of 6): one slow trial left the other idle
    folder = tmp_path / "starts"
    folder.mkdir()
    result = autolr.tune(FirstTrialSlow(folder), digits, n_jobs=2, n_trials=6, epochs=1,
                         progress=False, confirm_seeds=0, range_test=False, pruner="none")
    assert sorted(r.number for r in result.records) == list(range(6))
    per_worker = collections.Counter(p.name.split("-")[0] for p in folder.iterdir()
                                     if p.name != "slow")
    assert sum(per_worker.values()) == 6 and sorted(per_worker.values())[-1] >= 4


def test_worker_processes_without_a_storage_leave_no_journal_behind(digits, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts its folder
    result = autolr.tune(mlp(), digits, n_jobs=2, n_trials=4, epochs=1, progress=False,
                         confirm_seeds=0)
    assert len(result.records) == 4 and result.storage is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("autolr-")] == []


def test_a_scratch_journal_left_by_a_killed_sweep_is_removed_by_the_next(digits, tmp_path,
                                                                        monkeypatch):
    # kill -9 skips the removal: such folders piled up in /tmp (17 on one machine)
    import subprocess

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    orphan = tmp_path / f"autolr-scratch-{gone.pid}-x1"
    living = tmp_path / f"autolr-scratch-{os.getpid()}-x2"  # this process's: kept
    foreign = tmp_path / "autolr-notes"  # not a scratch folder: kept
    # its pid is gone here, but its journal changed lately: a live sweep in another PID
    # namespace sharing /tmp (a container) looks so; kept
    recent = tmp_path / f"autolr-scratch-{gone.pid}-x3"
    two_days_ago = time.time() - 2 * 24 * 3600
    for folder in (orphan, living, foreign, recent):
        folder.mkdir()
        (folder / "sweep.log").write_text("{}")
        if folder != recent:
            for path in (folder / "sweep.log", folder):
                os.utime(path, (two_days_ago, two_days_ago))
    autolr.tune(mlp(), digits, n_jobs=2, n_trials=2, epochs=1, progress=False,
                confirm_seeds=0, range_test=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("autolr-")) == \
        sorted([living.name, foreign.name, recent.name])


def test_save_and_load_round_trip(digits, tmp_path):
    result = autolr.tune(mlp(), digits, **QUICK)
    loaded = TuneResult.load(result.save(tmp_path / "result.json"))
    assert loaded.best_config == result.best_config
    assert loaded.best_value == result.best_value
    assert [r.values for r in loaded.records] == [r.values for r in result.records]


def test_train_trains_a_copy_with_the_same_loop(digits):
    model = mlp()
    before = [p.clone() for p in model.parameters()]
    trained, metrics = autolr.train(model, digits, {"lr": 1e-2, "schedule": "cosine"}, epochs=3)
    assert metrics["state"] == "complete" and len(metrics["values"]) == 3
    assert metrics["values"][-1] < metrics["values"][0]
    assert trained is not model
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_train_seeds_the_run_not_the_split_which_split_seed_chooses(digits):
    # seed also chose the 80/20 split: re-training the pick on fresh seeds scored it on
    # other validation rows (an easier draw looked 41% better than the sweep's number)
    model, frozen = mlp(), {"lr": 1e-12, "schedule": "constant"}  # the model's own weights

    def first_value(**seeds):
        return autolr.train(model, digits, frozen, epochs=1, **seeds).metrics["values"][0]

    assert first_value(seed=1) == first_value(seed=2) == first_value(seed=3, split_seed=0)
    assert first_value(seed=1, split_seed=5) != first_value(seed=1)
    with pytest.raises(AutoLRError, match="split_seed must be an integer >= 0"):
        autolr.train(model, digits, frozen, split_seed=-1)


# -- bad input: a clear autolr error before any training --------------------------------
@pytest.fixture
def no_training(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("training started before the input was validated")
    monkeypatch.setattr("autolr._tune.train_trial", forbidden)


X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_NAN = X_DIGITS.copy()
X_NAN[5, 3] = np.nan


def uncopyable() -> torch.nn.Module:
    model = mlp()
    model.lock = __import__("threading").Lock()  # deepcopy cannot copy a lock
    return model


@pytest.mark.parametrize("kwargs, message", [
    (dict(data=(np.zeros((0, 64)), np.zeros(0, dtype=int))), "empty"),
    (dict(data=(X_DIGITS, Y_DIGITS[:-1])), "same number of rows"),
    (dict(data=(X_NAN, Y_DIGITS)), "NaN or inf"),
    (dict(data=(X_DIGITS, Y_DIGITS - 1)), "0..C-1"),
    (dict(data=(X_DIGITS, Y_DIGITS + 5)), "labels must lie in 0..C-1"),
    (dict(model=mlp(out=3)), "output"),
    (dict(data=(X_DIGITS / 16, Y_DIGITS.astype(np.float32))),
     r"make its last layer output \(1,\), or, if y holds class labels, pass it as integers"),
    (dict(space={"lr": (0.0, 1.0)}), "0 < low < high"),
    (dict(space={"lr": (1e-2, 1e-3)}), "0 < low < high"),
    (dict(space={"lr": (1e-2, 1e-2)}), "0 < low < high"),
    (dict(space={"schedules": ["cosine", "cosin"]}), "valid schedules are: .*constant"),
    (dict(space="no-such-preset"), "valid presets are: .*default"),
    (dict(space={"batch_sizes": [4096, 8192]}), "larger than the .* training rows"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(n_trials=0), "n_trials must be an integer >= 1"),
    (dict(n_jobs=0), "n_jobs must be an integer >= 1"),
    (dict(model="mlp"), "torch.nn.Module or a zero-argument function"),
    (dict(model=uncopyable()), "cannot be copied .* zero-argument function"),
    (dict(model=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Softmax(1))),
     "no parameter to train; give it a layer with weights"),
    (dict(model=mlp().requires_grad_(False)),
     "all 4 of its parameters have requires_grad=False; unfreeze"),
    (dict(confirm_seeds=-1), "confirm_seeds must be an integer >= 0"),
    (dict(model=mlp(inputs=32)), r"batch of shape \(2, 64\)"),
    (dict(data=(X_DIGITS[:, 0], Y_DIGITS)), r"X is 1-D, .* pass X.reshape\(-1, 1\)"),
    (dict(model=mlp().double()), r"make its parameters torch.float32 \(model.float\(\)\)"),
    (dict(metric="accuracyy"), "valid metrics are"),
    (dict(metric="r2"), "needs a regression task"),
    (dict(pruner="medain"), "pruner must be one of"),
    (dict(loss="mse"), "loss must be a callable"),
    (dict(loss=torch.nn.CrossEntropyLoss),
     r"not its class: pass loss=torch.nn.CrossEntropyLoss\(\)"),
    (dict(timeout=-1), "timeout"),
    (dict(storage="not a url"), "database URL"),
    (dict(device="gpu0"), "device must be"),
    (dict(device="mps"), "device='mps' is not usable here"),
    (dict(val_fraction="0.2"), "val_fraction must be in"),
    (dict(divergence_factor=None), "divergence_factor must be a number > 1"),
    (dict(baseline="no"), "baseline must be True or False, but got baseline='no'"),
    (dict(device="meta"), "meta tensors hold no values"),
    (dict(model=lambda: "mlp"), "model factory must return a torch.nn.Module, but returned str"),
    (dict(model=(lambda shared: lambda: shared)(mlp())), "returned the same module object twice"),
    (dict(metric=lambda outputs, targets: (outputs.argmax(1) == targets).float(),
          direction="maximize"), r"must return one number .* returned \(360,\)"),
    (dict(metric=lambda outputs, targets: "0.5", direction="maximize"),
     r"must return one number .* returned str '0.5'"),  # float() read it (helper-40)
    (dict(data=((X_DIGITS * 16).astype(np.uint8), Y_DIGITS)),
     r"convert X \(e.g. X.astype\('float32'\) / 255\)"),
    (dict(max_concurrent=2), "max_concurrent is the Ray backend's; pass backend='ray'"),
    (dict(ray_address="127.0.0.2:6390", resources_per_trial={"cpu": 1}),
     "ray_address, resources_per_trial are the Ray backend's"),
    (dict(backend="ray", n_jobs=2), "n_jobs=2 sets the Optuna backend's .* max_concurrent"),
    (dict(seed=2**40), r"seed must be an integer from 0 to 2\*\*32 - 1"),
    (dict(direction="maximize"), "metric 'val_loss' is always minimized; drop direction"),
    (dict(evals_per_epoch=10**6), r"evals_per_epoch=1000000 is more than the 6 step\(s\) an "
                                  r"epoch has at batch size 256 \(1437 training rows\)"),
    (dict(val_fraction=0.9999), "leaves 0 to train on and 1797 to validate on"),
    (dict(timeout=True), "timeout is in seconds"),
    (dict(progress="no"), "progress must be True or False"),
    (dict(study_name=["a"]), "study_name must be a name such as 'digits'"),
    (dict(torch_threads=10**6), r"torch_threads=1000000 is more than this machine's"),
    (dict(space={"lr_reference_batch": 64}), "has no effect with lr_scaling='none'"),
    (dict(space={"schedules": ["one_cycle"], "schedule_params": {
        "one_cycle": {"pct_start": 1.0}}}), "pct_start is the share of the run spent rising"),
])
def test_bad_input_fails_before_training_and_names_the_fix(no_training, kwargs, message):
    call = dict(model=mlp(), data=(X_DIGITS / 16, Y_DIGITS), n_trials=2, epochs=1,
                progress=False)
    call.update(kwargs)
    with pytest.raises(AutoLRError, match=message):
        autolr.tune(call.pop("model"), call.pop("data"), **call)


def test_worker_processes_on_a_gpu_fail_before_training(no_training, monkeypatch):
    # forked workers cannot use CUDA once the parent moved the data there: say so up front
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(AutoLRError, match="n_jobs=2 forks worker processes.*n_jobs=1"):
        autolr.tune(mlp(), (X_DIGITS / 16, Y_DIGITS), n_jobs=2, device="cuda", progress=False)


def test_bad_input_does_not_touch_the_users_arrays(no_training):
    X, y = X_DIGITS.copy(), Y_DIGITS.copy()
    with pytest.raises(AutoLRError):
        autolr.tune(mlp(out=3), (X, y), n_trials=1, progress=False)
    assert np.array_equal(X, X_DIGITS) and np.array_equal(y, Y_DIGITS)


# -- the headline: a real sweep beats the default ---------------------------------------
@pytest.mark.slow
def test_a_40_trial_digits_sweep_beats_adamw_1e3_on_fresh_seeds(digits):
    def two_hidden_layers():
        return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(),
                                   torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                   torch.nn.Linear(128, 10))

    torch.manual_seed(0)
    result = autolr.tune(two_hidden_layers(), digits, n_trials=40, epochs=20, progress=False)
    searched = [r for r in result.records if r.steps_back_from is None]
    assert len(searched) == 40 and len(result.records) <= 41  # + the pick's step back, if any
    default = {"lr": 1e-3, "schedule": "constant", "batch_size": 32, "optimizer": "adamw"}
    tuned, baseline = [], []
    for seed in (11, 12, 13):  # fresh seeds: new initial weights and batch order
        tuned.append(autolr.train(two_hidden_layers, digits, result.best_config, epochs=20,
                                  seed=seed).metrics["final_value"])
        baseline.append(autolr.train(two_hidden_layers, digits, default, epochs=20,
                                     seed=seed).metrics["final_value"])
    print(f"tuned {tuned} mean {np.mean(tuned):.4f}; default {baseline} "
          f"mean {np.mean(baseline):.4f}; best {result.best_config}")
    assert np.mean(tuned) < np.mean(baseline)


def test_numpy_integers_are_integers():
    # a seed from numpy (a row of a results table, say) failed in every trial before
    result = autolr.tune(mlp(), (X_DIGITS / 16, Y_DIGITS), n_trials=1, epochs=np.int64(1),
                         seed=np.int64(3), progress=False, confirm_seeds=0, range_test=False)
    assert result.records[0].state == "complete"
    trained, metrics = autolr.train(mlp(), (X_DIGITS / 16, Y_DIGITS), {"lr": 1e-3},
                                    epochs=1, seed=np.int64(3))
    assert metrics["state"] == "complete"
    with pytest.raises(AutoLRError, match="batch_size=4096 is larger than the 1437 training"):
        autolr.train(mlp(), (X_DIGITS / 16, Y_DIGITS), {"lr": 1e-3, "batch_size": 4096})


def test_the_best_schedule_and_optimizer_say_what_they_need():
    record = autolr.TrialRecord(0, "complete", autolr.TrialConfig(1e-3).to_dict(),
                                values=(1.0, 0.5))
    result = TuneResult([record], epochs=2)
    optimizer = result.make_optimizer(mlp())
    for bad in ({"steps_per_epoch": 0, "epochs": 1}, {"steps_per_epoch": 2.5, "epochs": 1},
                {"steps_per_epoch": 10, "epochs": None}):
        with pytest.raises(AutoLRError, match="must be an integer >= 1"):
            result.make_scheduler(optimizer, **bad)
    for bad in (None, torch.nn.Sequential()):
        with pytest.raises(AutoLRError, match="make_optimizer needs the torch.nn.Module"):
            result.make_optimizer(bad)


def test_an_own_loss_may_read_outputs_shaped_unlike_the_targets():
    # a Gaussian negative log-likelihood: a mean and a log-variance per target (its loss
    # is below zero once the fit is good); refused by the shape check before
    X, y = load_diabetes(return_X_y=True)
    X, y = (X / X.std(0)).astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)

    def gaussian_nll(outputs, targets):
        mean, log_var = outputs[:, :1], outputs[:, 1:]  # targets are (batch, 1)
        return (0.5 * (log_var + (targets - mean) ** 2 / log_var.exp())).mean()

    def net():
        return torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(),
                                   torch.nn.Linear(16, 2))

    config = {"lr": 1e-2, "batch_size": 32}
    trained = autolr.train(net, (X, y), config, loss=gaussian_nll, epochs=3)
    assert trained.metrics["state"] == "complete"
    assert math.isfinite(trained.metrics["final_value"])
    with pytest.raises(AutoLRError, match=r"targets have shape \(2, 1\) .* output \(2, 2\)"):
        autolr.train(net, (X, y), config, loss=gaussian_nll, metric="mse", epochs=1)
    with pytest.raises(AutoLRError, match=r"make its last layer output \(1,\)"):
        autolr.train(net, (X, y), config, epochs=1)  # MSE would broadcast it


def test_an_own_loss_may_read_one_logit_for_two_integer_classes():
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)

    def bce(outputs, targets):  # one logit a row, integer 0/1 labels
        return torch.nn.functional.binary_cross_entropy_with_logits(
            outputs.squeeze(1), targets.float())

    def accuracy(outputs, targets):
        return ((outputs.squeeze(1) > 0).long() == targets).float().mean()

    config = {"lr": 1e-2, "batch_size": 32}
    trained = autolr.train(torch.nn.Linear(30, 1), (X, y), config, loss=bce, epochs=3,
                           metric=accuracy, direction="maximize")
    assert trained.metrics["final_value"] > 0.9
    with pytest.raises(AutoLRError, match=r"C >= 2, but it output shape \(2, 1\).*metric "
                                          r"'accuracy' reads C logits a row"):
        autolr.train(torch.nn.Linear(30, 1), (X, y), config, loss=bce, metric="accuracy")
    with pytest.raises(AutoLRError, match=r"C >= 2, but it output shape \(2, 1\).*for one "
                                          r"logit a row, pass a loss of your own"):
        autolr.train(torch.nn.Linear(30, 1), (X, y), config)  # cross-entropy needs C logits


class Tagger(torch.nn.Module):
    """A label per token: embeddings of token ids, (batch, C, tokens) logits."""

    def __init__(self, classes_last: bool = False) -> None:
        super().__init__()
        self.embed, self.out = torch.nn.Embedding(20, 16), torch.nn.Linear(16, 4)
        self.classes_last = classes_last

    def forward(self, tokens):
        logits = self.out(torch.relu(self.embed(tokens)))  # (batch, tokens, C)
        return logits if self.classes_last else logits.movedim(-1, 1)


def test_a_label_per_token_with_padding_tunes_end_to_end():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 20, size=(300, 12))
    tags = tokens % 4  # each token's tag follows from the token
    tags[:, 9:] = -100  # padding: cross-entropy and accuracy leave it out
    result = autolr.tune(Tagger(), (tokens, tags), metric="accuracy", n_trials=4, epochs=3,
                         progress=False, confirm_seeds=0, range_test=False)
    assert result.best_value > 0.9  # chance is 0.25
    trained = autolr.train(Tagger(), (tokens, tags), result.best_config, epochs=3)
    predicted = trained.model(torch.from_numpy(tokens[:5])).argmax(1)
    assert (predicted[:, :9] == torch.from_numpy(tags[:5, :9])).float().mean() > 0.9
    with pytest.raises(AutoLRError, match=r"one per position of \(12,\), so the model must "
                                          r"output \(batch, C, 12\) logits .* return "
                                          r"logits.movedim\(-1, 1\)"):
        autolr.tune(Tagger(classes_last=True), (tokens, tags), n_trials=1, progress=False)
    # rows of padding only first: their loss (before any step) is NaN, the set's is not
    first_padded = tags.copy()
    first_padded[:5] = -100
    assert autolr.train(Tagger(), (tokens, first_padded), {"lr": 1e-2},
                        epochs=1).metrics["state"] == "complete"
    # a batch of padding only is no divergence, at a batch size that makes some
    padded = tags.copy()
    padded[::2] = -100
    trained = autolr.train(Tagger(), (tokens, padded), {"lr": 1e-3, "batch_size": 2},
                           epochs=1)
    assert trained.metrics["state"] == "complete"
    # a one-tag-a-sentence task is no one-hot y; a one-hot y is named as such
    one_tag = np.zeros((300, 12), dtype=int)
    one_tag[np.arange(300), tokens[:, 0] % 12] = 1
    assert autolr.train(Tagger(), (tokens, one_tag), {"lr": 1e-2},
                        epochs=1).metrics["state"] == "complete"
    with pytest.raises(AutoLRError, match=r"one-hot encoded .* pass the class indices, "
                                          r"y.argmax\(1\)"):
        autolr.train(torch.nn.Linear(12, 12), (tokens.astype(np.float32), one_tag),
                     {"lr": 1e-2}, epochs=1)


def test_integer_targets_a_model_reads_as_numbers_are_named_as_maybe_not_labels():
    # integer y is classification; a model that outputs y's own shape most likely wanted
    # numbers (regression) or several 0/1 labels a row: the message names both fixes
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    counts = rng.integers(0, 50, size=60)
    with pytest.raises(AutoLRError, match=r"numbers to predict \(regression\), pass it as "
                                          r"floats, y.astype\('float32'\)\.$"):
        autolr.train(torch.nn.Linear(4, 1), (X, counts), {"lr": 1e-2}, epochs=1)
    multi_hot = rng.integers(0, 2, size=(60, 3))
    with pytest.raises(AutoLRError, match=r"multi-hot\) as floats with "
                                          r"loss=torch.nn.BCEWithLogitsLoss\(\)"):
        autolr.train(torch.nn.Linear(4, 3), (X, multi_hot), {"lr": 1e-2}, epochs=1)
    # ...and that fix trains
    trained = autolr.train(torch.nn.Linear(4, 3), (X, multi_hot.astype(np.float32)),
                           {"lr": 1e-2}, epochs=1, loss=torch.nn.BCEWithLogitsLoss())
    assert trained.metrics["state"] == "complete"


def test_batchnorm_with_batches_of_one_row_is_refused_before_training():
    # BatchNorm cannot train on one row: every trial failed ("Expected more than 1 value
    # per channel"); at 2, an odd train set ends each epoch on one row
    def bn_net():
        return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.BatchNorm1d(16),
                                   torch.nn.ReLU(), torch.nn.Linear(16, 10))

    odd = ((X_DIGITS[:41] / 16).astype(np.float32), Y_DIGITS[:41]), \
        ((X_DIGITS[41:61] / 16).astype(np.float32), Y_DIGITS[41:61])
    for size, where in ((1, "every batch"), (2, r"the last batch of each epoch \(41 ")):
        with pytest.raises(AutoLRError, match=rf"BatchNorm.*batch_size={size} {where}"):
            autolr.tune(bn_net, odd, space={"batch_sizes": [size, 8]}, n_trials=1, epochs=1,
                        progress=False)
        with pytest.raises(AutoLRError, match="use batch sizes of 3 or more"):
            autolr.train(bn_net, odd, {"lr": 0.01, "batch_size": size}, epochs=1)
    even = (odd[0][0][:40], odd[0][1][:40]), odd[1]
    _, metrics = autolr.train(bn_net, even, {"lr": 0.01, "batch_size": 2}, epochs=1)
    assert metrics["state"] == "complete"
    _, metrics = autolr.train(mlp(), odd, {"lr": 0.01, "batch_size": 1}, epochs=1)
    assert metrics["state"] == "complete"  # no BatchNorm: one row is a batch like any


def test_the_callers_torch_random_stream_goes_on_as_if_nothing_ran():
    data = (X_DIGITS[:300] / 16, Y_DIGITS[:300])
    model = mlp()
    torch.manual_seed(12345)
    expected = torch.rand(3)
    torch.manual_seed(12345)
    autolr.tune(model, data, n_trials=2, epochs=1, progress=False, confirm_seeds=0,
                range_test=False)
    trained, _ = autolr.train(model, data, {"lr": 0.01}, epochs=1)
    assert torch.equal(torch.rand(3), expected)  # the trials' seeding is not left behind
    assert not trained.training and model.training  # eval mode, as it was measured


def test_a_timeout_that_cuts_the_sweep_short_says_so(digits, caplog, tmp_path):
    storage = str(tmp_path / "cut.log")
    with caplog.at_level("WARNING", logger="autolr"):
        result = autolr.tune(mlp(), digits, n_trials=500, epochs=1, timeout=0.5,
                             progress=False, confirm_seeds=0, range_test=False,
                             storage=storage)
    ran = len(result.records)
    assert 1 <= ran < 500
    assert f"timeout (0.5 s): the sweep holds {ran} of its 500 trials" in caplog.text
    # and so do the result, a report and `show` from the storage, later: '3 trials' read
    # as a whole sweep
    said = f"The timeout (0.5 s) stopped the sweep after {ran} of its 500 trials."
    stored = autolr.load(storage)
    assert said in result.summary() and said in stored.summary()
    assert said in stored.report(tmp_path / "r.html").read_text(encoding="utf-8")
    saved = TuneResult.load(result.save(tmp_path / "r.json"))
    assert saved.cut_short == result.cut_short
    # a later call that runs them all clears it
    again = autolr.tune(mlp(), digits, n_trials=ran, epochs=1, progress=False,
                        confirm_seeds=0, range_test=False, storage=storage)
    assert again.cut_short is None and autolr.load(storage).cut_short is None


def test_a_stored_sweep_without_a_study_name_is_named_autolr_in_its_result(digits, tmp_path):
    storage = str(tmp_path / "s.log")
    result = autolr.tune(mlp(), digits, n_trials=1, epochs=1, progress=False,
                         range_test=False, storage=storage)
    assert result.study_name == "autolr" == autolr.load(storage).study_name


def test_a_step_back_counted_towards_n_trials_is_not_a_timeout_cut(digits, tmp_path):
    # on Optuna a step back counts towards n_trials once a later call extends the sweep:
    # an extension with a timeout that cut nothing was flagged cut short, for good
    import optuna

    storage = str(tmp_path / "sb.log")
    settings = dict(epochs=1, progress=False, confirm_seeds=0, range_test=False,
                    storage=storage, study_name="s")
    autolr.tune(mlp(), digits, n_trials=3, **settings)
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    first = study.trials[0]  # stored as the pick stores its step back
    study.add_trial(optuna.trial.create_trial(
        params=first.params, distributions=first.distributions, value=first.value,
        user_attrs={**first.user_attrs, "steps_back": first.number}))
    result = autolr.tune(mlp(), digits, n_trials=5, timeout=1000, **settings)
    assert sum(r.steps_back_from is not None for r in result.records) == 1
    assert len(result.records) == 5 and result.cut_short is None


def test_own_losses_that_cannot_train_are_refused_before_training(no_training):
    # each passed the two-row check and then failed every trial (or trained on nothing)
    X, y = load_digits(return_X_y=True)
    data = (X / 16, y)
    five = lambda: torch.nn.Linear(64, 5)  # noqa: E731 - labels go up to 9
    cases = [
        (five, torch.nn.CrossEntropyLoss(label_smoothing=0.1), "C >= 10"),
        (mlp, lambda o, t: float(torch.nn.functional.cross_entropy(o, t)), "not a tensor"),
        (mlp, lambda o, t: torch.nn.functional.cross_entropy(o, t).detach(), "no gradient"),
        (mlp, torch.nn.CrossEntropyLoss(reduction="none"), "not one number; reduce it"),
    ]
    for model, loss, message in cases:
        with pytest.raises(AutoLRError, match=message):
            autolr.tune(model, data, loss=loss, n_trials=1, epochs=1, progress=False)
    with pytest.raises(AutoLRError, match="every label is 3: one class"):
        autolr.tune(mlp, (X / 16, np.full(len(X), 3)), n_trials=1, progress=False)


def test_a_batch_output_against_column_targets_is_refused_or_warned(no_training, caplog):
    # (batch,) against (batch, 1): an own MSE trained on every (output, target) pair
    X, y = load_diabetes(return_X_y=True)
    flat = lambda: torch.nn.Sequential(torch.nn.Linear(10, 1), torch.nn.Flatten(0))  # noqa: E731
    with pytest.raises(AutoLRError, match=r"broadcasts to \(batch, batch\) .* drop a "
                                          r"\.squeeze\(\)"):
        autolr.tune(flat, (X, y), n_trials=1, progress=False)
    with caplog.at_level("WARNING", logger="autolr"):
        autolr.tune(flat, (X, y), loss=torch.nn.MSELoss(), n_trials=1, epochs=1,
                    progress=False, confirm_seeds=0, range_test=False)
    assert "if your loss squeezes the targets itself, ignore this" in caplog.text
