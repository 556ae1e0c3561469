"""How autolr cuts an epoch of in-memory tensors into shuffled batches, against the other
ways: the data path alone, no model.

- epoch copy:  one gather of the whole training set an epoch, then views (autolr's path
               for narrow rows, up to `autolr.data.WHOLE_EPOCH_GATHER_BYTES`);
- per batch:   a gather per batch from the permutation (autolr's path above it);
- autolr:      `autolr.data.epoch_batches`, which picks one of the two by size;
- dataloader:  `DataLoader(TensorDataset(X, y), shuffle=True)` (num_workers=0).

Each is timed over whole epochs (every batch touched: `.sum()` of its rows), interleaved
with the order rotated each round; the table quotes median microseconds per batch and
the extra memory an epoch holds (the copy). Shapes: digits-sized rows, MNIST-sized rows,
CIFAR-sized rows.

    python -m benchmarks.batching            # about a minute
    python -m benchmarks.batching --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from autolr.data import WHOLE_EPOCH_GATHER_BYTES, WHOLE_EPOCH_GATHER_ROW_BYTES, epoch_batches

SHAPES = {"digits 1437x64": (1437, 64), "tabular 100000x20": (100000, 20),
          "tabular 10000x200": (10000, 200), "MNIST-sized 4000x784": (4000, 784),
          "MNIST 60000x784": (60000, 784), "CIFAR 50000x3072": (50000, 3072)}
Batches = Callable[[torch.Tensor, torch.Tensor, int, torch.Generator],
                   Iterator[tuple[torch.Tensor, torch.Tensor]]]


def epoch_copy(X, y, batch_size, generator):
    order = torch.randperm(len(X), generator=generator)
    X, y = X[order], y[order]
    for start in range(0, len(X), batch_size):
        yield X[start:start + batch_size], y[start:start + batch_size]


def per_batch(X, y, batch_size, generator):
    order = torch.randperm(len(X), generator=generator)
    for start in range(0, len(X), batch_size):
        rows = order[start:start + batch_size]
        yield X[rows], y[rows]


def dataloader(X, y, batch_size, generator):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y),
                                         batch_size=batch_size, shuffle=True,
                                         generator=generator)
    yield from loader


CONTENDERS: dict[str, Batches] = {"epoch copy": epoch_copy, "per batch": per_batch,
                                  "autolr": epoch_batches, "dataloader": dataloader}


def us_per_batch(batches: Batches, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    generator = torch.Generator().manual_seed(0)
    started, n = time.perf_counter(), 0
    for inputs, _targets in batches(X, y, batch_size, generator):
        inputs.sum()  # touch the rows, as a forward pass would
        n += 1
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="one round, smaller data")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rounds = 1 if args.quick else args.rounds
    print(f"autolr copies the epoch up to {WHOLE_EPOCH_GATHER_BYTES / 2**20:g} MiB of rows "
          f"of up to {WHOLE_EPOCH_GATHER_ROW_BYTES} bytes; batch "
          f"{args.batch_size}; median us per batch over {rounds} interleaved rounds\n")
    print("| data | MiB | extra MiB an epoch (copy) | "
          + " | ".join(CONTENDERS) + " |")
    print("|---|---|---|" + "---|" * len(CONTENDERS))
    for name, (rows, features) in SHAPES.items():
        rows = min(rows, 2000) if args.quick else rows
        X, y = torch.randn(rows, features), torch.randint(0, 10, (rows,))
        times: dict[str, list[float]] = {k: [] for k in CONTENDERS}
        names = list(CONTENDERS)
        for round_ in range(rounds):
            for key in names[round_ % len(names):] + names[:round_ % len(names)]:
                times[key].append(us_per_batch(CONTENDERS[key], X, y, args.batch_size))
        size = (X.nbytes + y.nbytes) / 2**20
        narrow = (X.nbytes + y.nbytes) / rows <= WHOLE_EPOCH_GATHER_ROW_BYTES
        copied = size if narrow and X.nbytes + y.nbytes <= WHOLE_EPOCH_GATHER_BYTES else 0.0
        print(f"| {name} | {size:.1f} | autolr {copied:.1f}, epoch copy {size:.1f} | "
              + " | ".join(f"{statistics.median(times[k]):.1f}" for k in CONTENDERS) + " |")


if __name__ == "__main__":
    main()
