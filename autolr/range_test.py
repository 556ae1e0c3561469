"""The learning-rate range test (Smith's "LR finder") and its classic suggestions.

autolr runs one after a sweep, at the tuned config's batch size and optimizer, so the
report can put what an LR finder would have suggested beside the optimum the sweep
found (they often disagree by 3x to 1000x: see benchmarks/RESULTS.md). It is not used to
narrow the search: measured as a prior it cut the optimum out on one benchmark task.

The test trains a fresh model for up to `steps` steps while the learning rate grows
exponentially from `start` to `end`, smooths the training loss with a bias-corrected
exponential moving average (beta 0.98), and stops once the smoothed loss passes 4x its
best or is not finite, as the fastai / Lightning / torch-lr-finder finders do.
Suggestions, on the smoothed curve:
- steepest: where the loss falls fastest per log-step of learning rate (the first 10
  and last 5 points are skipped: too noisy to judge);
- valley: the middle of the longest decreasing run of the curve (a decreasing
  subsequence), which sits further from the blow-up;
- minimum / 10: a tenth of the learning rate at the lowest smoothed loss.

>>> test = RangeTest(lrs=(1e-3, 1e-2, 1e-1), losses=(2.0, 1.0, 5.0), batch_size=32,
...                  optimizer="sgd", epochs=0.1, seconds=0.01, stopped="diverged")
>>> test.min_tenth()
0.001
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from autolr.data import TrainValData, epoch_batches, has_batchnorm, steps_per_epoch
from autolr.optimizers import make_optimizer
from autolr.pruning import LossSize, blow_up_limit

SKIP_START, SKIP_END = 10, 5
#: The finders' defaults: 100 steps from 1e-7 to 10, smoothing 0.98, stop at 4x the best.
STEPS, START, END, BETA, FACTOR = 100, 1e-7, 10.0, 0.98, 4.0
SUGGESTIONS = ("steepest", "valley", "min_tenth")


@dataclass(frozen=True)
class RangeTest:
    """The smoothed loss curve of one range test, what stopped it and what it cost."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # smoothed training loss at each step
    batch_size: int
    optimizer: str
    epochs: float
    seconds: float
    stopped: str  # "diverged" (loss blew up or was not finite) or "end" (reached `end`)
    weight_decay: float = 0.0

    def steepest(self) -> float:
        """The learning rate at the most negative slope d loss / d log(lr), up to the
        lowest loss: past it, a slope is the way down from a spike, not training."""
        lowest = int(np.argmin(self.losses))
        end = min(len(self.lrs) - SKIP_END, lowest + 1)
        if end - SKIP_START < 2:
            return self.min_tenth()  # too short a curve to judge a slope
        x = np.log10(self.lrs[SKIP_START:end])
        y = np.asarray(self.losses[SKIP_START:end])
        return float(10 ** x[int(np.argmin(np.gradient(y, x)))])

    def valley(self) -> float:
        """The middle (in log lr) of the longest decreasing subsequence of the curve."""
        losses, n = self.losses, len(self.losses)
        length, previous = [1] * n, [-1] * n
        for i in range(n):  # O(n^2) longest decreasing subsequence: n is ~100
            for j in range(i):
                if losses[j] > losses[i] and length[j] + 1 > length[i]:
                    length[i], previous[i] = length[j] + 1, j
        end = int(np.argmax(length))
        first = end
        while previous[first] != -1:
            first = previous[first]
        return float(math.sqrt(self.lrs[first] * self.lrs[end]))

    def min_tenth(self) -> float:
        """A tenth of the learning rate at the lowest smoothed loss."""
        return self.lrs[int(np.argmin(self.losses))] / 10

    def suggestions(self) -> dict[str, float]:
        """Each classic suggestion by name; none for a test that blew up at once."""
        if len(self.lrs) < 2:
            return {}
        return {name: getattr(self, name)() for name in SUGGESTIONS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RangeTest:
        raw = dict(raw)
        raw["lrs"], raw["losses"] = tuple(raw["lrs"]), tuple(raw["losses"])
        return cls(**raw)


def range_test(model_factory: Callable[[], torch.nn.Module], data: TrainValData,
               loss_fn: Callable, *, optimizer: str, batch_size: int, weight_decay: float = 0.0,
               seed: int = 0, start: float = START, end: float = END, steps: int = STEPS,
               beta: float = BETA, factor: float = FACTOR) -> RangeTest:
    """Run one range test; `model_factory` gives a fresh model (never trained in place)."""
    if not (0 < start < end and steps >= 2):
        raise ValueError(f"a range test needs 0 < start < end and steps >= 2, but got "
                         f"{start=}, {end=}, {steps=}.")
    began = time.perf_counter()
    torch.manual_seed(seed)
    model = model_factory()
    model.train()
    opt = make_optimizer(optimizer, model.parameters(), start, weight_decay)
    generator = torch.Generator().manual_seed(seed)
    ratio = (end / start) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, best, stopped, size = 0.0, math.inf, "end", LossSize()
    batches = iter(())
    for step in range(steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:  # a new epoch of shuffled batches
            batches = epoch_batches(data.X_train, data.y_train, batch_size, generator,
                                    avoid_single_row=has_batchnorm(model))
            inputs, targets = next(batches)
        lr = start * ratio**step
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            stopped = "diverged"
            break
        size.add(value)
        average = beta * average + (1 - beta) * value
        smoothed = average / (1 - beta ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > blow_up_limit(best, losses[0], factor, size=size):
            stopped = "diverged"
            break
    epochs = len(lrs) / steps_per_epoch(data.n_train, batch_size)
    return RangeTest(tuple(lrs), tuple(losses), batch_size, optimizer, epochs,
                     time.perf_counter() - began, stopped, weight_decay)
