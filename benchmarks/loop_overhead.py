"""What autolr's training loop costs over the loop a careful user would write.

Three contenders train the same model from the same initial weights, on the same split,
with the same batch size, AdamW at lr 1e-3 (no weight decay), a constant schedule and
one validation pass per epoch:

- autolr:     `autolr.training.train_trial` (the loop every trial of a sweep runs: the
              schedule's lr set every step, the divergence monitor fed every step);
- bare:       a hand-written torch loop: randperm per epoch, index slicing, zero_grad /
              backward / step, loss.item() per step;
- dataloader: the same loop fed by `DataLoader(TensorDataset(X, y), shuffle=True)`
              (num_workers=0: the data is already in memory).

autolr and bare draw the same permutation each epoch (one generator, same seed), so they
train on identical batches and end at the same validation loss (the check table shows
it). The DataLoader draws its permutations differently from the same seed (a base seed
per epoch, and RandomSampler draws one extra permutation per epoch), so it does the same
number of steps on other batches and ends at a nearby loss.
Each call runs the full training, timed from building the model to the last validation;
the contenders run interleaved with their order rotated every round, and the table
quotes the median seconds per epoch and the median of the per-round ratios with their
interquartile range in brackets. autolr/bare is the overhead of autolr's loop (the
target is <= 1.05); dataloader/autolr > 1 means autolr's in-memory batching is faster
than a DataLoader's.

    python -m benchmarks.loop_overhead            # about a minute
    python -m benchmarks.loop_overhead --quick    # a few seconds: a smoke run
    python -m benchmarks.loop_overhead --profile  # also cProfile autolr vs bare
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autolr.data import TrainValData
from autolr.metrics import METRICS
from autolr.space import TrialConfig
from autolr.training import train_trial
from benchmarks import CNN1d, digits, interleaved, mlp, mnist1d, ratio_text, table, timed

LR, SEED = 1e-3, 0
TARGET = 1.05  # autolr/bare at most this
CONTENDERS = ("autolr", "bare", "dataloader")


@dataclass(frozen=True)
class Case:
    """One workload: a model factory trained on a split with one batch size."""

    label: str
    data: TrainValData
    factory: Callable[[], nn.Module]
    batch_size: int
    epochs: int


def autolr_loop(case: Case) -> float:
    """autolr's loop; returns the last validation loss."""
    config = TrialConfig(lr=LR, batch_size=case.batch_size)
    outcome = train_trial(config, case.factory, case.data, epochs=case.epochs,
                          loss_fn=nn.CrossEntropyLoss(), metric=METRICS["val_loss"], seed=SEED)
    return outcome.val_losses[-1]


def bare_loop(case: Case) -> float:
    """The loop a careful user writes; returns the last validation loss."""
    torch.manual_seed(SEED)
    model = case.factory()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(SEED)
    X, y = case.data.X_train, case.data.y_train
    val_loss = float("nan")
    for _ in range(case.epochs):
        model.train()
        order = torch.randperm(len(X), generator=generator)
        running = 0.0
        for start in range(0, len(X), case.batch_size):
            index = order[start:start + case.batch_size]
            loss = loss_fn(model(X[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
        val_loss = validate(model, case.data, loss_fn)
    return val_loss


def dataloader_loop(case: Case) -> float:
    """The same loop fed by a shuffling DataLoader; returns the last validation loss."""
    torch.manual_seed(SEED)
    model = case.factory()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(case.data.X_train, case.data.y_train),
                        batch_size=case.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(SEED))
    val_loss = float("nan")
    for _ in range(case.epochs):
        model.train()
        running = 0.0
        for inputs, targets in loader:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += loss.item()
        val_loss = validate(model, case.data, loss_fn)
    return val_loss


@torch.no_grad()
def validate(model: nn.Module, data: TrainValData, loss_fn: Callable) -> float:
    """One validation pass over the whole validation set."""
    model.eval()
    return float(loss_fn(model(data.X_val), data.y_val))


LOOPS: dict[str, Callable[[Case], float]] = {
    "autolr": autolr_loop, "bare": bare_loop, "dataloader": dataloader_loop}


def cases(quick: bool) -> list[Case]:
    """Digits MLP at batch 32 and 128, MNIST-1D CNN at batch 32."""
    epochs = 2 if quick else 10
    on_digits, on_mnist1d = digits(), mnist1d()
    return [
        Case("digits MLP, batch 32", on_digits, mlp, 32, epochs),
        Case("digits MLP, batch 128", on_digits, mlp, 128, epochs),
        Case("MNIST-1D CNN, batch 32", on_mnist1d, CNN1d, 32, 1 if quick else 4),
    ]


def measure(case: Case, rounds: int) -> tuple[list[str], dict[str, float]]:
    """One table row for `case`, and the last validation loss of each contender."""
    final: dict[str, float] = {}

    def contender(name: str) -> Callable[[], float]:
        def run() -> float:
            return timed(lambda: final.__setitem__(name, LOOPS[name](case))) / case.epochs
        return run

    stats = interleaved({name: contender(name) for name in CONTENDERS}, rounds,
                        ratios=[("autolr", "bare"), ("dataloader", "autolr")])
    row = [case.label, str(-(-case.data.n_train // case.batch_size))]
    row += [f"{stats.seconds[name] * 1000:.1f}" for name in CONTENDERS]
    row += [ratio_text(stats.ratios["autolr", "bare"]),
            ratio_text(stats.ratios["dataloader", "autolr"])]
    return row, final


def profile(case: Case, top: int) -> None:
    """cProfile autolr's loop and the bare loop on `case`: the top functions by own time
    of each, then every function of autolr's own that the loop called."""
    for name, restrict in (("autolr", top), ("bare", top), ("autolr", r"/autolr/")):
        profiler = cProfile.Profile()
        profiler.runcall(LOOPS[name], case)
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print(f"\n--- cProfile: {name} loop, {case.label}, {case.epochs} epochs, "
              f"{stats.total_tt:.3f} s in all; "  # type: ignore[attr-defined]
              f"{'top by own time' if restrict == top else 'autolr functions only'} ---")
        stats.sort_stats("tottime").print_stats(restrict)
        print(out.getvalue().split("ncalls", 1)[-1].join(["   ncalls", ""]).rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run, in seconds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per case (default 9, 3 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile autolr's loop and the bare loop")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    rows, checks = [], []
    all_cases = cases(args.quick)
    for case in all_cases:
        row, final = measure(case, rounds)
        rows.append(row)
        checks.append([case.label] + [f"{final[name]:.6f}" for name in CONTENDERS])
    print(f"Loop overhead: median ms per epoch over {rounds} interleaved rounds (torch "
          f"threads {args.threads}; load average {load:.2f} before, {os.getloadavg()[0]:.2f} "
          f"after); ratios: median [interquartile range] per round\n")
    header = ["case", "steps/epoch", "autolr ms", "bare ms", "dataloader ms",
              "autolr/bare", "dataloader/autolr"]
    print(table(header, rows))
    print("\nSame work check, last validation loss of each contender:\n")
    print(table(["case", *CONTENDERS], checks))
    worst = max(float(row[5].split()[0]) for row in rows)
    verdict = "met" if worst <= TARGET else "NOT met"
    print(f"\nautolr/bare target <= {TARGET}: {verdict} (worst case median {worst:.2f})")
    if args.profile:
        profile(all_cases[0], top=18)


if __name__ == "__main__":
    main()
