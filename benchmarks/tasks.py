"""The benchmark tasks: fixed data splits, models, epochs, and the grid each is searched on.

Every task splits its data once with autolr's own coercion (`autolr.data.coerce_data`,
seed 0: the split `autolr.tune(..., seed=0)` makes) and hands contenders that split as an
explicit ((X_train, y_train), (X_val, y_val)) pair, so that a sweep with any seed trains
and validates on the very same rows. The objective everywhere is the final validation
loss (cross-entropy, or MSE on standardised targets).

A task's `Grid` is the exhaustive oracle grid and also the search space of every
contender (`Task.space()`): learning rate (log-spaced) x schedule family (at its default
parameters) x warmup fraction x batch size, with one optimizer per task.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autolr.data import TrainValData, coerce_data
from autolr.metrics import default_loss, resolve_metric
from autolr.space import SearchSpace, TrialConfig


def log_grid(low_exponent: float, high_exponent: float, n: int) -> tuple[float, ...]:
    """`n` learning rates evenly spaced in log10 between 10**low and 10**high (rounded)."""
    step = (high_exponent - low_exponent) / (n - 1)
    return tuple(float(f"{10 ** (low_exponent + i * step):.4g}") for i in range(n))


@dataclass(frozen=True)
class Grid:
    """The oracle grid: every combination of these values is trained."""

    lrs: tuple[float, ...]
    schedules: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    warmups: tuple[float, ...] = (0.0,)

    def configs(self, optimizer: str) -> list[TrialConfig]:
        return [TrialConfig(lr=lr, schedule=schedule, warmup_fraction=warmup,
                            batch_size=batch, optimizer=optimizer)
                for schedule, batch, warmup, lr in itertools.product(
                    self.schedules, self.batch_sizes, self.warmups, self.lrs)]

    def snap(self, config: TrialConfig) -> str:
        """The key of the grid config nearest to `config`: learning rate nearest in log
        space, warmup nearest, schedule and batch size exact (their schedule parameters
        are ignored: the grid holds every family at its defaults)."""
        if config.schedule not in self.schedules or config.batch_size not in self.batch_sizes:
            raise ValueError(f"{config.schedule} / batch {config.batch_size} is not on the grid "
                             f"({self.schedules}, {self.batch_sizes}).")
        lr = min(self.lrs, key=lambda v: abs(math.log(v) - math.log(config.lr)))
        warmup = min(self.warmups, key=lambda v: abs(v - config.warmup_fraction))
        return config_key(lr, config.schedule, config.batch_size, warmup)

    @property
    def size(self) -> int:
        return len(self.lrs) * len(self.schedules) * len(self.batch_sizes) * len(self.warmups)


def config_key(lr: float, schedule: str, batch_size: int, warmup: float) -> str:
    """A grid config's name in the cache, e.g. 'one_cycle|b32|w0|lr0.1'."""
    return f"{schedule}|b{batch_size}|w{warmup:g}|lr{lr:g}"


def key_of(config: TrialConfig) -> str:
    return config_key(config.lr, config.schedule, config.batch_size, config.warmup_fraction)


@dataclass(frozen=True)
class Task:
    """One benchmark problem and the grid it is searched on."""

    name: str
    description: str
    epochs: int
    optimizer: str
    grid: Grid
    data_fn: Callable[[], TrainValData]
    model_fn: Callable[[], nn.Module]
    grid_seeds: int = 3  # training seeds every grid config is run with
    confirm_seeds: int = 7  # extra seeds for the configs that compete for the oracle

    @functools.cached_property
    def data(self) -> TrainValData:
        return self.data_fn()

    def raw_data(self) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                tuple[torch.Tensor, torch.Tensor]]:
        """The fixed split as autolr.tune / autolr.train accept it (used as given)."""
        d = self.data
        y_train, y_val = d.y_train, d.y_val
        return (d.X_train, y_train), (d.X_val, y_val)

    @property
    def loss_fn(self) -> nn.Module:
        return default_loss(self.data.task)

    @property
    def metric(self):
        return resolve_metric(None, self.data.task)

    def space(self) -> SearchSpace:
        """The grid's ranges as an autolr SearchSpace: what every contender searches."""
        g = self.grid
        return SearchSpace(lr=(min(g.lrs), max(g.lrs)), schedules=g.schedules,
                           warmup=(min(g.warmups), max(g.warmups)), batch_sizes=g.batch_sizes,
                           optimizers=(self.optimizer,), description=f"benchmark {self.name}")

    def configs(self) -> list[TrialConfig]:
        return self.grid.configs(self.optimizer)


# ---- data -------------------------------------------------------------------------------

def _digits() -> TrainValData:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return coerce_data(((X / 16.0).astype(np.float32), y.astype(np.int64)), seed=0)


def _mnist1d() -> TrainValData:
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())  # offline; get_dataset() tries the network first
    return coerce_data((raw["x"].astype(np.float32), raw["y"].astype(np.int64)), seed=0)


def _diabetes() -> TrainValData:
    """X and y standardised with the training rows' statistics (no validation leak)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    split = coerce_data((X.astype(np.float32), y.astype(np.float32)), seed=0)
    mean, std = split.X_train.mean(0), split.X_train.std(0)
    y_mean, y_std = split.y_train.mean(), split.y_train.std()
    return coerce_data((((split.X_train - mean) / std, (split.y_train - y_mean) / y_std),
                        ((split.X_val - mean) / std, (split.y_val - y_mean) / y_std)))


def _tiny() -> TrainValData:
    """A digits subset (400 rows) for the --quick mode and the tests."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return coerce_data(((X[:400] / 16.0).astype(np.float32), y[:400].astype(np.int64)), seed=0)


# ---- models -----------------------------------------------------------------------------

def digits_mlp() -> nn.Module:
    """64-128-128-10 MLP."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def diabetes_mlp() -> nn.Module:
    """10-64-64-1 MLP (as examples/diabetes_regression.py)."""
    return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1))


def tiny_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


class PaperCNN(nn.Module):
    """The MNIST-1D paper's CNN: three stride-2 convolutions of 25 channels, a linear head
    (length 40 -> 19 -> 10 -> 5; 125 features)."""

    def __init__(self, channels: int = 25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(channels * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)).flatten(1))


# ---- the tasks ----------------------------------------------------------------------------

_FAMILIES = ("constant", "cosine", "step", "one_cycle")
_BATCHES = (32, 64, 128, 256)

TASKS: dict[str, Task] = {
    "digits": Task(
        "digits", "sklearn digits (1437 train / 360 val), MLP 64-128-128-10, SGD momentum",
        epochs=20, optimizer="sgd",
        grid=Grid(log_grid(-3, 0, 13), _FAMILIES, _BATCHES, (0.0, 0.1)),
        data_fn=_digits, model_fn=digits_mlp, grid_seeds=4),
    "diabetes": Task(
        "diabetes", "sklearn diabetes (353 train / 89 val), standardised X and y, "
        "MLP 10-64-64-1, AdamW", epochs=30, optimizer="adamw",
        grid=Grid(log_grid(-5, -1, 13), _FAMILIES, _BATCHES, (0.0, 0.1)),
        data_fn=_diabetes, model_fn=diabetes_mlp, grid_seeds=5),
    "mnist1d": Task(
        "mnist1d", "MNIST-1D (3200 train / 800 val), the paper's CNN, SGD momentum",
        epochs=20, optimizer="sgd",
        grid=Grid(log_grid(-3, 0, 13), _FAMILIES, _BATCHES, (0.0,)),
        data_fn=_mnist1d, model_fn=PaperCNN, grid_seeds=3, confirm_seeds=5),
    # --quick / tests: seconds, not minutes
    "tiny": Task(
        "tiny", "digits subset (320 train / 80 val), MLP 64-32-10, SGD momentum, 4 epochs",
        epochs=4, optimizer="sgd",
        grid=Grid((0.01, 0.1, 1.0), ("constant", "cosine"), (32, 64), (0.0,)),
        data_fn=_tiny, model_fn=tiny_mlp, grid_seeds=2, confirm_seeds=1),
}


def get(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}.") from None
