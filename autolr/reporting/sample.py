"""A synthetic sweep, for previewing the report and testing it without any training.

The metric is a smooth bowl in log learning rate whose optimum follows the square-root
batch-size rule; learning rates far above it diverge.

>>> result = synthetic_result(n_trials=12, seed=1)
>>> len(result.records), result.counts()["complete"] > 0
(12, True)

`python -m autolr.reporting.sample report.html` writes the report of one.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Sequence

from autolr.range_test import RangeTest
from autolr.result import TrialRecord, TuneResult

N_TRAIN = 1000  # rows the synthetic model "trains" on: sets the steps per epoch


def _params(lr: float, schedule: str, batch: int, warmup: float) -> dict:
    return {"lr": lr, "schedule": schedule, "schedule_params": {}, "warmup_fraction": warmup,
            "batch_size": batch, "optimizer": "adamw", "weight_decay": 0.0}


def _trial(number: int, lr: float, schedule: str, batch: int, warmup: float, epochs: int,
           families: Sequence[str], rng: random.Random, baseline: bool = False) -> TrialRecord:
    per_epoch = -(-N_TRAIN // batch)
    best_lr = 0.01 * math.sqrt(batch / 32)  # the square-root rule, by construction
    distance = math.log10(lr / best_lr)
    final = (0.05 + 0.08 * distance**2 + 0.01 * families.index(schedule)
             + 0.005 * rng.random())
    curve = [final + (2.3 - final) * math.exp(-(e + 1) / 2.5) for e in range(epochs)]
    params = _params(lr, schedule, batch, warmup)
    if lr > 30 * best_lr:  # blows up within the first epoch or two
        steps = max(1, int(per_epoch * rng.uniform(0.2, 1.8)))
        n = steps // per_epoch
        return TrialRecord(number, "diverged", params, "loss became nan at step "
                           f"{steps - 1}", tuple(curve[:n]), tuple(v * 0.9 for v in curve[:n]),
                           tuple(curve[:n]), round(steps / per_epoch, 4), steps,
                           steps * 1e-3, baseline)
    ran = epochs if final < 0.2 or baseline else max(1, epochs // 2)
    state = "complete" if ran == epochs else "pruned"
    return TrialRecord(number, state, params, None if state == "complete" else "stalled",
                       tuple(curve[:ran]), tuple(v * 0.8 for v in curve[:ran]),
                       tuple(curve[:ran]), float(ran), ran * per_epoch,
                       ran * per_epoch * 1e-3, baseline)


def synthetic_result(*, n_trials: int = 40, seed: int = 0, epochs: int = 10,
                     families: Sequence[str] = ("constant", "cosine", "linear", "one_cycle"),
                     batch_sizes: Sequence[int] = (16, 32, 64, 128), n_failed: int = 1,
                     lr_range: tuple[float, float] = (1e-5, 1.0),
                     study_name: str | None = "synthetic") -> TuneResult:
    """A TuneResult of `n_trials` made-up trials (the first one the default config)."""
    rng = random.Random(seed)
    families = list(families)
    records = []
    if "constant" in families and 32 in batch_sizes:
        records.append(_trial(0, 1e-3, "constant", 32, 0.0, epochs, families, rng, True))
    while len(records) < n_trials - n_failed:
        lr = 10 ** rng.uniform(*map(math.log10, lr_range))
        records.append(_trial(len(records), lr, rng.choice(families), rng.choice(batch_sizes),
                              rng.choice((0.0, 0.05, 0.1)), epochs, families, rng))
    for _ in range(n_failed):
        records.append(TrialRecord(len(records), "failed", _params(
            1e-3, families[0], batch_sizes[0], 0.0), "RuntimeError: CUDA out of memory"))
    result = TuneResult(records, metric="val_loss", direction="minimize", epochs=epochs,
                        study_name=study_name)
    if result.best_record is not None:
        result.range_test = _range_test(result.best_record.config.batch_size)
    return result


def _range_test(batch: int, steps: int = 100) -> RangeTest:
    """A made-up range test: flat, falling towards 3x the bowl's optimum, then blowing up
    (4x its best) at 30x the optimum, where the synthetic trials diverge."""
    best_lr = 0.01 * math.sqrt(batch / 32)
    lrs, losses = [], []
    for step in range(steps):
        lr = 1e-7 * 1e8 ** (step / (steps - 1))
        x = math.log10(lr / (3 * best_lr))
        loss = 2.3 - 1.6 / (1 + math.exp(-3 * (x + 1))) + (9.0 * x**2 if x > 0 else 0.0)
        lrs.append(lr)
        losses.append(loss)
        if loss > 4 * min(losses):
            break
    per_epoch = -(-N_TRAIN // batch)
    blew_up = len(lrs) < steps
    return RangeTest(tuple(lrs), tuple(losses), batch, "adamw", len(lrs) / per_epoch,
                     len(lrs) * 1e-3, "diverged" if blew_up else "end", 0.0,
                     "factor" if blew_up else "end", lrs[-1])


if __name__ == "__main__":  # python -m autolr.reporting.sample out.html
    print(synthetic_result().report(sys.argv[1] if len(sys.argv) > 1 else "report.html"))
