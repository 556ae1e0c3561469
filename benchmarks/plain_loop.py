"""The training loop a user writes without autolr, for the live contenders.

Plain PyTorch: the learning rate set by hand every step from a nanoGPT-style `lr_at`
(linear warmup, then constant / cosine / step / one-cycle with torch's usual constants),
shuffled in-memory batches, a validation pass per epoch handed to a callback (Optuna's
`trial.report` + `should_prune`, or Ray's `tune.report`), and the only divergence check a
hand-written loop usually has: stop when the validation loss is no longer finite.
Seeded as autolr's loop is (weights from `torch.manual_seed(seed)`, shuffling from a
generator seeded alike), so that a config gets the same kind of run in both loops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from autolr.optimizers import make_optimizer
from benchmarks.tasks import Task


def lr_at(step: int, total: int, lr: float, schedule: str, warmup_fraction: float) -> float:
    """The learning rate at optimizer step `step` (0-based) of a `total`-step run."""
    warmup = min(round(warmup_fraction * total), total - 1)
    if step < warmup:  # linear ramp up to where the schedule starts
        return (step + 1) / (warmup + 1) * lr_at(0, total - warmup, lr, schedule, 0.0)
    step, total = step - warmup, total - warmup
    progress = step / total
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":  # x0.1 every third of training (torch StepLR style)
        return lr * 0.1 ** (step // max(1, round(0.33 * total)))
    if schedule == "one_cycle":  # OneCycleLR: cosine up from lr/25 for 30%, down to lr/25e4
        low, final = lr / 25, lr / 25 / 1e4
        if progress < 0.3:
            return low + (lr - low) * 0.5 * (1 - math.cos(math.pi * progress / 0.3))
        rest = (progress - 0.3) / 0.7
        return final + (lr - final) * 0.5 * (1 + math.cos(math.pi * rest))
    raise ValueError(f"the plain loop knows constant, cosine, step, one_cycle; got {schedule!r}")


@dataclass
class PlainRun:
    """What the plain loop returns: per-epoch validation losses, how it ended, its cost."""

    values: list[float] = field(default_factory=list)
    state: str = "complete"  # complete / stopped (by the callback) / diverged
    epochs: int = 0
    seconds: float = 0.0


def train(task: Task, params: dict, seed: int,
          on_epoch: Callable[[int, float], bool] | None = None) -> PlainRun:
    """Train `params` (lr, schedule, batch_size, warmup) on the task; `on_epoch(epoch,
    val_loss)` returns True to stop early (a pruner)."""
    started = time.perf_counter()
    data, loss_fn = task.data, task.loss_fn
    torch.manual_seed(seed)
    model = task.model_fn()
    optimizer = make_optimizer(task.optimizer, model.parameters(), params["lr"])
    generator = torch.Generator().manual_seed(seed)
    batch = params["batch_size"]
    per_epoch = -(-data.n_train // batch)
    total = per_epoch * task.epochs
    run, step = PlainRun(), 0
    for epoch in range(task.epochs):
        model.train()
        order = torch.randperm(data.n_train, generator=generator)
        X, y = data.X_train[order], data.y_train[order]
        for start in range(0, data.n_train, batch):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, params["lr"], params["schedule"],
                                    params.get("warmup", 0.0))
            loss = loss_fn(model(X[start:start + batch]), y[start:start + batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(data.X_val), data.y_val))
        run.epochs = epoch + 1
        if not math.isfinite(val_loss):
            run.state = "diverged"
            break
        run.values.append(val_loss)
        if on_epoch is not None and on_epoch(epoch, val_loss) and epoch + 1 < task.epochs:
            run.state = "stopped"
            break
    run.seconds = time.perf_counter() - started
    return run
