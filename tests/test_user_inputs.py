"""What the user gives is theirs: nothing of it is changed, trials do not leak into each
other through it, and one seed gives one sweep whatever else the process drew."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import autolr
from autolr.errors import AutoLRError, InvalidModelError


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    return X, y


class ShiftsItsInput(torch.nn.Module):
    """Edits its input in place, as some preprocessing layers do."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.sub_(0.5))


def test_a_model_that_edits_its_input_in_place_changes_neither_the_users_arrays_nor_scores(
        rows):
    # the validation passes handed the model views of the stored validation set: it
    # drifted by -0.5 a pass (and an explicit split's float32 arrays are the user's own)
    X, y = rows
    X_train, X_val = X[:90].copy(), X[90:].copy()
    before = X_val.copy(), X_train.copy()
    data = ((X_train, y[:90]), (X_val, y[90:]))
    model = ShiftsItsInput()
    first = autolr.train(model, data, {"lr": 1e-2}, epochs=3).metrics
    assert np.array_equal(X_val, before[0]) and np.array_equal(X_train, before[1])
    again = autolr.train(model, data, {"lr": 1e-2}, epochs=3).metrics
    assert first["values"] == again["values"]
    # the last pass scored the validation rows as given (with the drift: 1.0 below them)
    trained = autolr.train(model, data, {"lr": 1e-2}, epochs=3).model
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(trained(torch.tensor(X_val)),
                                                 torch.tensor(y[90:]))
    assert first["values"][-1] == pytest.approx(float(loss), rel=1e-6)


class Augmented(torch.utils.data.Dataset):
    """Adds fresh noise to each item it gives, as torchvision's random transforms do."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X, self.y = torch.tensor(X), torch.tensor(y)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: int):
        noise = 0.3 * torch.randn_like(self.X[index]) + 0.1 * np.random.randn()
        return self.X[index] + noise, self.y[index]


def test_a_dataset_that_augments_at_random_is_read_alike_for_one_seed(rows):
    # it was read before anything was seeded: the caller's earlier draws changed the data,
    # so the same seed gave another sweep (and a best_value autolr.train could not repeat)
    X, y = rows
    model = torch.nn.Linear(6, 2)
    first = autolr.train(model, Augmented(X, y), {"lr": 1e-2}, epochs=2).metrics["values"]
    torch.rand(5)  # the caller's own draws in between...
    np.random.rand(3)
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    second = autolr.train(model, Augmented(X, y), {"lr": 1e-2}, epochs=2).metrics["values"]
    assert first == second
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # ...go on untouched
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_a_factory_that_reuses_a_trained_module_is_refused_but_a_frozen_one_may_be_shared(
        rows):
    X, y = rows
    backbone = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU())
    weights = backbone[0].weight.detach().clone()
    with pytest.raises(InvalidModelError, match=r"builds share 2 tensor\(s\) that training "
                                                r"changes \(0.0.weight, 0.0.bias\).*"
                                                r"copy.deepcopy"):
        autolr.train(lambda: torch.nn.Sequential(backbone, torch.nn.Linear(8, 2)), (X, y),
                     {"lr": 1e-2}, epochs=1)
    assert torch.equal(backbone[0].weight, weights)
    normed = torch.nn.BatchNorm1d(6).requires_grad_(False)  # frozen, but its statistics move
    with pytest.raises(InvalidModelError, match="running_mean"):
        autolr.train(lambda: torch.nn.Sequential(normed, torch.nn.Linear(6, 2)), (X, y),
                     {"lr": 1e-2}, epochs=1)
    backbone.requires_grad_(False)  # a frozen feature extractor: shared, never changed
    trained = autolr.train(lambda: torch.nn.Sequential(backbone, torch.nn.Linear(8, 2)),
                           (X, y), {"lr": 1e-2}, epochs=1)
    assert trained.metrics["state"] == "complete" and torch.equal(backbone[0].weight, weights)


class Standardize(torch.nn.Module):
    """Constant buffers, shared by every build: training never changes them."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def test_constant_buffers_and_lazy_layers_a_factory_builds_are_not_sharing(rows):
    X, y = rows
    mean, std = torch.tensor(X.mean(0)), torch.tensor(X.std(0))
    standardized = autolr.train(
        lambda: torch.nn.Sequential(Standardize(mean, std), torch.nn.Linear(6, 2)), (X, y),
        {"lr": 1e-2}, epochs=1)
    assert standardized.metrics["state"] == "complete"
    lazy = autolr.train(lambda: torch.nn.Sequential(torch.nn.LazyLinear(8), torch.nn.ReLU(),
                                                    torch.nn.Linear(8, 2)),
                        (X, y), {"lr": 1e-2}, epochs=1)  # no memory until its first forward
    assert lazy.metrics["state"] == "complete"


class TemperedLoss(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.log_t = torch.nn.Parameter(torch.zeros(()))

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(outputs / self.log_t.exp(), targets)


def test_a_loss_with_trainable_parameters_is_refused_before_training(rows):
    # the optimizer holds the model's parameters: the temperature never moved, and its
    # .grad piled up across trials in the user's loss
    X, y = rows
    loss = TemperedLoss()
    with pytest.raises(AutoLRError, match=r"trainable parameters \(log_t\).*"
                                          r"loss.requires_grad_\(False\)"):
        autolr.tune(torch.nn.Linear(6, 2), (X, y), loss=loss, n_trials=2, epochs=1,
                    progress=False)
    assert loss.log_t.grad is None
    frozen = TemperedLoss().requires_grad_(False)
    assert autolr.train(torch.nn.Linear(6, 2), (X, y), {"lr": 1e-2}, loss=frozen,
                        epochs=1).metrics["state"] == "complete"


def test_a_run_at_the_largest_sweep_seed_plus_its_extra_seeds_can_be_retrained(rows):
    # the robust pick trains at seed + 1..3: autolr.train refused those past 2**32 - 1
    X, y = rows
    top = 2**32 - 1
    trained = autolr.train(torch.nn.Linear(6, 2), (X, y), {"lr": 1e-2}, seed=top + 3,
                           split_seed=top, epochs=1)
    assert trained.metrics["state"] == "complete"
    with pytest.raises(AutoLRError, match=r"split_seed must be an integer from 0 to 2\*\*32"):
        autolr.train(torch.nn.Linear(6, 2), (X, y), {"lr": 1e-2}, split_seed=top + 1)


def test_a_model_factory_that_raises_is_named_with_where_it_raised(rows):
    X, y = rows

    def build() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(6, 2), undefined_layer())  # noqa: F821

    with pytest.raises(InvalidModelError, match=r"raised NameError\(.*\) at .*test_user_inputs"
                                                r"\.py:\d+ \(in build\)\.$"):
        autolr.train(build, (X, y), {"lr": 1e-2}, epochs=1)
    with pytest.raises(InvalidModelError, match=r"raised TypeError\(.*\); it must build an "
                                                r"nn.Module with no arguments") as refused:
        autolr.train(lambda width: torch.nn.Linear(6, width), (X, y), {"lr": 1e-2}, epochs=1)
    assert "training.py" not in str(refused.value)  # the call failed in autolr: no place


class ReturnsMore(torch.nn.Module):
    """Returns its logits with something else, as many models do (a tuple, or a dict)."""

    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.linear, self.as_dict = torch.nn.Linear(6, 2), as_dict

    def forward(self, x: torch.Tensor):
        logits = self.linear(x)
        return {"hidden": x, "logits": logits} if self.as_dict else (logits, x)


def test_a_model_returning_a_tuple_or_a_dict_is_told_how_to_wrap_it(rows):
    X, y = rows
    with pytest.raises(InvalidModelError, match=r"returned a tuple of 2; wrap it in a module "
                                                r"whose forward .* `return self.model\(x\)\[0\]`"):
        autolr.tune(ReturnsMore(as_dict=False), (X, y), n_trials=1, epochs=1, progress=False)
    with pytest.raises(InvalidModelError, match=r"returned a dict with keys \['hidden', 'logits'"
                                                r"\];.* `return self.model\(x\)\['logits'\]`"):
        autolr.tune(ReturnsMore(as_dict=True), (X, y), n_trials=1, epochs=1, progress=False)


class FixedBatch(torch.nn.Module):
    """Takes batches of 32 rows only (a batch size written into a reshape)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).reshape(32, 2) if len(x) != 2 else self.linear(x)


def test_a_row_the_model_cannot_take_is_found_before_the_sweep(rows):
    # the probe tried two rows: a token id beyond the vocabulary in one row of 300 failed
    # every trial instead (helper-40)
    ids = np.random.default_rng(0).integers(0, 17, size=(300, 8))
    ids[150, 3] = 40
    labels = np.arange(300) % 3
    embedding = torch.nn.Sequential(torch.nn.Embedding(17, 4), torch.nn.Flatten(),
                                    torch.nn.Linear(32, 3))
    with pytest.raises(InvalidModelError, match=r"forward failed on (training|validation) row "
                                                r"\d+ \(of \d+, counted after the split\), though"
                                                r" it took the first two: IndexError"):
        autolr.tune(embedding, (ids, labels), n_trials=1, epochs=1, progress=False)
    X, y = rows
    with pytest.raises(InvalidModelError, match=r"as one batch of \d+, no one row to blame: "
                                                r"RuntimeError.*any batch size"):
        autolr.tune(FixedBatch(), (X, y), n_trials=1, epochs=1, progress=False)


def test_a_one_row_training_set_under_batchnorm_is_told_to_give_more_rows():
    # it said to make the model accept inputs of shape (batch, 4): the shape was fine
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    y = X[:, :1].copy()
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 1))
    with pytest.raises(InvalidModelError, match="the training set has one row, and the model "
                                                "holds BatchNorm.*give more training rows"):
        autolr.tune(model, ((X[:1], y[:1]), (X[1:], y[1:])), n_trials=1, epochs=1,
                    progress=False)
