"""Shared pieces of autolr's benchmarks: the workloads and side-by-side timing.

The machine a benchmark runs on is often shared and noisy, so every benchmark here runs
its contenders interleaved (A B C, then B C A, then C A B ...), repeats that several
times, and quotes medians; ratios are taken per round (contenders timed next to each
other) and their median is quoted, so slow drifts of the machine cancel out.

Workloads:
- sklearn digits (1797 x 64, X/16 as float32): a 64-128-128-10 MLP;
- MNIST-1D (4000 x 40, generated locally, never downloaded): a small 1-D CNN.
Both go through `autolr.data.coerce_data`, so every contender trains on the very same
train/validation split (autolr's default 80/20, seeded).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from autolr.data import TrainValData, coerce_data


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """sklearn digits as (X/16 float32, y int64): 1797 rows, 64 features, 10 classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y.astype(np.int64)


def mnist1d_arrays() -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D's 4000 training rows (40 features, 10 classes), generated locally."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # never get_dataset(): it tries the network
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


def digits() -> TrainValData:
    """digits split as autolr splits it by default: 1437 train rows, 360 validation."""
    return coerce_data(digits_arrays())


def mnist1d() -> TrainValData:
    """MNIST-1D split as autolr splits it by default: 3200 train rows, 800 validation."""
    return coerce_data(mnist1d_arrays())


def mlp() -> nn.Module:
    """The digits model: two hidden layers, 64-128-128-10."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


class CNN1d(nn.Module):
    """A small 1-D CNN for MNIST-1D: three convolutions (32 channels), one linear head."""

    def __init__(self, channels: int = 32, length: int = 40, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, padding=2), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(channels * (length // 4), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)).flatten(1))


@dataclass(frozen=True)
class Stats:
    """Medians over rounds of each contender's seconds and of the per-round ratios."""

    seconds: dict[str, float]  # contender -> median seconds
    ratios: dict[tuple[str, str], tuple[float, float, float]]  # (a, b) -> (q1, median, q3)
    rounds: int


def interleaved(contenders: Mapping[str, Callable[[], float]], rounds: int,
                ratios: Sequence[tuple[str, str]], warmup: bool = True) -> Stats:
    """Time each contender `rounds` times, rotating the order every round.

    A contender is a function returning the seconds it measured itself (so that its own
    setup can stay out of the timing). `ratios` lists the (a, b) pairs whose per-round
    ratio a/b is summarised as (lower quartile, median, upper quartile).
    """
    names = list(contenders)
    if warmup:  # first calls pay one-off costs (allocator, lazy imports, caches)
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(contenders[name]())
    summary = {(a, b): quartiles([x / y for x, y in zip(times[a], times[b], strict=True)])
               for a, b in ratios}
    return Stats({name: statistics.median(t) for name, t in times.items()}, summary, rounds)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(lower quartile, median, upper quartile); the median alone below three values."""
    if len(values) < 3:
        middle = statistics.median(values)
        return middle, middle, middle
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def timed(function: Callable[[], object]) -> float:
    """Seconds one call of `function` takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in (header, *rows):
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ratio_text(quartile: tuple[float, float, float]) -> str:
    """'1.02 [0.99-1.04]': the median ratio and its interquartile range over rounds."""
    q1, median, q3 = quartile
    return f"{median:.2f} [{q1:.2f}-{q3:.2f}]"
