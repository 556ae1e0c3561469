"""The learning-rate range test (Smith's "LR finder") and its classic suggestions.

autolr runs one after a sweep, at the tuned config's batch size and optimizer, so the
report can put what an LR finder would have suggested beside the optimum the sweep
found (they often disagree by 3x to 1000x: see benchmarks/RESULTS.md). It is not used to
narrow the search: measured as a prior it cut the optimum out on one benchmark task.

The test trains a fresh model for up to `steps` steps while the learning rate grows
exponentially from `start` to `end`, smooths the training loss with a bias-corrected
exponential moving average (beta 0.98), and stops once the smoothed loss passes 4x its
best or is not finite, as the fastai / Lightning / torch-lr-finder finders do (a loss
that goes below zero, where 4x its best means nothing, is measured by its size instead:
`autolr.pruning.blow_up_limit`). With per-position labels, a batch that is all padding
(-100) has no loss: it is skipped, as the training loop skips it, and takes no step.

Suggestions are taken, as fastai's and torch-lr-finder's are, on the smoothed curve
without its first 10 and last 5 points (too noisy to judge: the judged part), and only
on a curve whose judged part has at least `MIN_JUDGED` points and falls (its lowest
loss at least `MIN_FALL_STEPS` points after its first):
- steepest: where the loss falls fastest per log-step of learning rate, up to the
  judged part's lowest loss (past it, a slope is the way down from a spike);
- valley: fastai's `valley`: on the judged part, the longest decreasing subsequence of
  the losses (not necessarily contiguous), of length L ending at index `end`, is read as
  the "valley" [start, end] with start = end - L; the suggestion is the learning rate at
  start + int((end - start) / 3) + int((end - start) / 6), about half way down it
  (as fastai, start may be -1, one before the judged part, when the subsequence begins
  at its first point; an index that would still fall before it is taken at that point);
- min_tenth: fastai's `minimum`, a tenth of the learning rate at the judged part's
  lowest loss (none when that lies below the lowest learning rate the test tried).
A suggestion that cannot be judged is left out of `suggestions()`; `why_not` says why.

>>> lrs = tuple(10 ** (-6 + i / 10) for i in range(40))
>>> losses = tuple(2.0 - i / 30 if i < 30 else 1.0 + (i - 30) for i in range(40))
>>> test = RangeTest(lrs, losses, batch_size=32, optimizer="sgd", epochs=0.1,
...                  seconds=0.01, stopped="diverged", cause="factor")
>>> [f"{test.suggestions()[name]:.3g}" for name in SUGGESTIONS]
['1e-05', '7.94e-05', '0.0001']
>>> short = RangeTest(lrs[:20], losses[:20], 32, "sgd", 0.05, 0.01, "diverged")
>>> short.suggestions(), short.why_not("valley")[:41]
({}, 'the curve has 20 points, too few to judge')
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from autolr.data import (
    CLASSIFICATION,
    IGNORED_LABEL,
    TrainValData,
    epoch_batches,
    has_batchnorm,
    steps_per_epoch,
)
from autolr.optimizers import make_optimizer
from autolr.pruning import LossSize, blow_up_limit

#: fastai (num_it // 10 of its 100 steps) and torch-lr-finder skip the first 10 and the
#: last 5 points of the curve before they suggest anything.
SKIP_START, SKIP_END = 10, 5
#: judged points (after the skips) a curve needs before it suggests anything
MIN_JUDGED = 10
MIN_POINTS = SKIP_START + MIN_JUDGED + SKIP_END
#: the judged part "falls" when its lowest loss comes at least this many points after its
#: first: else there is no way down to take a slope or a valley from. How far it falls is
#: not judged here (MNIST-1D's CNN falls under 1% in a range test and still has a slope);
#: the report says when the curve is nearly flat
MIN_FALL_STEPS = 2
#: The finders' defaults: 100 steps from 1e-7 to 10, smoothing 0.98, stop at 4x the best.
STEPS, START, END, BETA, FACTOR = 100, 1e-7, 10.0, 0.98, 4.0
SUGGESTIONS = ("steepest", "valley", "min_tenth")
#: why a test stopped (`RangeTest.cause`): the smoothed loss passed `factor` x its best;
#: a loss below zero rose past its best by (factor - 1) x its size; the loss was NaN or
#: infinite; it reached `end`; every batch of an epoch was padding
CAUSES = ("factor", "size", "not_finite", "end", "padding")


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
    # why it stopped (one of CAUSES); None in results saved before it was recorded
    cause: str | None = None
    stop_lr: float | None = None  # the learning rate of the step that stopped it
    factor: float = FACTOR  # the blow-up multiple it stopped at
    skipped: int = 0  # all-padding batches skipped (no loss, no step)

    def judged(self) -> tuple[int, int]:
        """The [first, stop) indices of the points the suggestions are taken on."""
        return SKIP_START, max(SKIP_START, len(self.losses) - SKIP_END)

    def _lowest(self) -> int:
        first, stop = self.judged()
        return first + int(np.argmin(self.losses[first:stop]))

    def fall(self) -> float | None:
        """How far the judged part's lowest loss is below its first, as a share of the
        loss's size there (max of the two, in absolute value); None on a short curve."""
        if len(self.losses) < MIN_POINTS:
            return None
        first, low = self.losses[SKIP_START], self.losses[self._lowest()]
        return (first - low) / max(abs(first), abs(low), 1e-12)

    def why_not(self, name: str) -> str | None:
        """Why suggestion `name` is left out, in words; None when it is given."""
        if name not in SUGGESTIONS:
            raise ValueError(f"unknown suggestion {name!r}; choose from {SUGGESTIONS}")
        n = len(self.losses)
        if not all(math.isfinite(loss) for loss in self.losses):  # a stored or built curve
            return "the curve holds a loss that is not finite"
        if n < MIN_POINTS:
            return (f"the curve has {n} points, too few to judge: a suggestion needs "
                    f"{MIN_POINTS} (the finders skip its first {SKIP_START} and last "
                    f"{SKIP_END})")
        lowest, fall = self._lowest(), self.fall()
        if lowest - SKIP_START < MIN_FALL_STEPS or fall is None or fall <= 0:
            return ("the smoothed loss did not fall over the judged part of the curve "
                    f"(its lowest point comes {lowest - SKIP_START} "
                    f"step{'' if lowest - SKIP_START == 1 else 's'} after its first)")
        if name == "min_tenth" and self.lrs[lowest] / 10 < self.lrs[0]:
            return (f"a tenth of the lr at the lowest loss ({self.lrs[lowest] / 10:.3g}) is "
                    f"below the lowest lr the test tried ({self.lrs[0]:.3g})")
        return None

    def steepest(self) -> float | None:
        """The learning rate at the most negative slope d loss / d log(lr) of the judged
        part, up to its lowest loss: past it, a slope is the way down from a spike, not
        training. None when it cannot be judged (`why_not`)."""
        if self.why_not("steepest"):
            return None
        # as the slope's x reads it, so the value is what it always was to the last bit
        return float(10 ** np.log10(self.lrs[SKIP_START + self._steepest_index()]))

    def _steepest_index(self) -> int:
        """Where `steepest` lies, counted from the first judged point."""
        first, end = SKIP_START, self._lowest() + 1
        x = np.log10(self.lrs[first:end])
        y = np.asarray(self.losses[first:end])
        return int(np.argmin(np.gradient(y, x)))

    def steepest_at_start(self) -> bool:
        """Whether `steepest` is the first judged point: the loss fell fastest where the
        judged curve begins, so the steepest slope may lie lower still, among the points
        the finders skip."""
        return self.steepest() is not None and self._steepest_index() == 0

    def valley(self) -> float | None:
        """fastai's valley on the judged part (see the module's docstring); None when it
        cannot be judged."""
        if self.why_not("valley"):
            return None
        first, stop = self.judged()
        losses = self.losses[first:stop]
        n = len(losses)
        length = [1] * n  # the longest decreasing subsequence ending at each point
        for i in range(1, n):  # O(n^2): n is ~100
            for j in range(i):
                if losses[i] < losses[j] and length[i] < length[j] + 1:
                    length[i] = length[j] + 1
        end = int(np.argmax(length))  # the first point where the longest one ends
        start = end - length[end]
        index = start + int((end - start) / 3) + int((end - start) / 3 / 2)
        return self.lrs[first + max(0, index)]

    def min_tenth(self) -> float | None:
        """fastai's minimum: a tenth of the learning rate at the judged part's lowest
        smoothed loss; None when it cannot be judged."""
        if self.why_not("min_tenth"):
            return None
        return self.lrs[self._lowest()] / 10

    def suggestions(self) -> dict[str, float]:
        """Each classic suggestion that can be judged, by name (none for a short curve)."""
        found = {name: getattr(self, name)() for name in SUGGESTIONS}
        return {name: lr for name, lr in found.items() if lr is not None}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RangeTest:
        """Reads what `to_dict` wrote, also before `cause` and the fields after it were
        recorded (they take their defaults)."""
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
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
    # per-position labels: a batch of padding only has no loss (its mean is NaN); it is
    # skipped and the learning rate waits for the next batch, as the training loop does
    padded = data.task == CLASSIFICATION and data.y_train.ndim > 1
    lrs: list[float] = []
    losses: list[float] = []
    average, best, size = 0.0, math.inf, LossSize()
    cause, stop_lr, skipped, drawn = "end", None, 0, 0
    batches, learned = iter(()), True
    while len(lrs) < steps:
        try:
            inputs, targets = next(batches)
        except StopIteration:  # a new epoch of shuffled batches
            if not learned:  # a whole epoch of padding: cannot happen with coerce_data
                cause = "padding"
                break
            batches = epoch_batches(data.X_train, data.y_train, batch_size, generator,
                                    avoid_single_row=has_batchnorm(model))
            inputs, targets = next(batches)
            learned = False
        drawn += 1
        if padded and bool((targets == IGNORED_LABEL).all()):
            skipped += 1
            continue
        learned = True
        step = len(lrs)
        lr = start * ratio**step
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_fn(model(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            cause, stop_lr = "not_finite", lr
            break
        size.add(value)
        average = beta * average + (1 - beta) * value
        smoothed = average / (1 - beta ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > blow_up_limit(best, losses[0], factor, size=size):
            # blow_up_limit takes a multiple of the best unless the loss went to or below
            # zero, where it measures the rise by the loss's size
            cause = "size" if size.below_zero or best <= 0 else "factor"
            stop_lr = lr
            break
    if cause == "end":
        stop_lr = lrs[-1] if lrs else None
    epochs = drawn / steps_per_epoch(data.n_train, batch_size)
    return RangeTest(tuple(lrs), tuple(losses), batch_size, optimizer, epochs,
                     time.perf_counter() - began, "end" if cause == "end" else "diverged",
                     weight_decay, cause, stop_lr, factor, skipped)
