"""A learning-rate range test (Smith's "LR finder") and its two classic suggestions.

The test trains a fresh model for up to `steps` steps while the learning rate grows
exponentially from `start` to `end`, records the training loss of each step, smooths it
with a bias-corrected exponential moving average (beta 0.98), and stops early once the
smoothed loss exceeds 4x its best (or is not finite), as the fastai / Lightning /
torch-lr-finder finders do. Suggestions, computed on the smoothed curve:
- steepest: the learning rate where the loss falls fastest per log-step of learning
  rate (the first 10 and last 5 points are skipped: too noisy to judge);
- valley: the middle of the longest decreasing run of the curve (a decreasing
  subsequence, not necessarily contiguous), which sits further from the blow-up.
The cost is the steps run, counted in epochs of the chosen batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from autolr.data import epoch_batches, steps_per_epoch
from autolr.optimizers import make_optimizer
from benchmarks.tasks import Task

SKIP_START, SKIP_END = 10, 5


@dataclass(frozen=True)
class RangeTest:
    """The curve of one range test and what it costs."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed
    epochs: float
    seconds: float

    def steepest(self) -> float:
        return steepest(self.lrs, self.losses)

    def valley(self) -> float:
        return valley(self.lrs, self.losses)


def range_test(task: Task, *, batch_size: int = 32, seed: int = 0, start: float = 1e-6,
               end: float = 10.0, steps: int = 100, beta: float = 0.98,
               factor: float = 4.0) -> RangeTest:
    import time

    began = time.perf_counter()
    data, loss_fn = task.data, task.loss_fn
    torch.manual_seed(seed)
    model = task.model_fn()
    model.train()
    optimizer = make_optimizer(task.optimizer, model.parameters(), start)
    generator = torch.Generator().manual_seed(seed)
    ratio = (end / start) ** (1 / (steps - 1))
    lrs, losses, average, best = [], [], 0.0, math.inf
    batches = iter(())
    for step in range(steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:  # a new epoch of shuffled batches
            batches = epoch_batches(data.X_train, data.y_train, batch_size, generator)
            inputs, targets = next(batches)
        lr = start * ratio**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        average = beta * average + (1 - beta) * value
        smoothed = average / (1 - beta ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > factor * best:
            break
    epochs = len(lrs) / steps_per_epoch(data.n_train, batch_size)
    return RangeTest(tuple(lrs), tuple(losses), epochs, time.perf_counter() - began)


def steepest(lrs: tuple[float, ...], losses: tuple[float, ...]) -> float:
    """The learning rate at the most negative slope d loss / d log(lr)."""
    if len(lrs) < SKIP_START + SKIP_END + 2:
        return lrs[int(np.argmin(losses))] / 10  # too short a curve: fall back to min/10
    x = np.log10(lrs[SKIP_START:-SKIP_END])
    y = np.asarray(losses[SKIP_START:-SKIP_END])
    return float(10 ** x[int(np.argmin(np.gradient(y, x)))])


def valley(lrs: tuple[float, ...], losses: tuple[float, ...]) -> float:
    """The middle (in log lr) of the longest decreasing subsequence of the curve."""
    n = len(losses)
    length, previous = [1] * n, [-1] * n
    for i in range(n):  # O(n^2) longest decreasing subsequence: n is ~100
        for j in range(i):
            if losses[j] > losses[i] and length[j] + 1 > length[i]:
                length[i], previous[i] = length[j] + 1, j
    end = int(np.argmax(length))
    first = end
    while previous[first] != -1:
        first = previous[first]
    return float(math.sqrt(lrs[first] * lrs[end]))
