"""Tune a digits MLP with autolr's Ray backend: the same search, on a Ray cluster.

    python examples/ray_cluster.py --address HEAD_IP:6379 --storage /shared/autolr
    python examples/ray_cluster.py --quick          # no --address: a local Ray

It starts no cluster: start one first (`ray start --head` on one machine, `ray start
--address HEAD_IP:6379` on the others) and pass its address. Run the same command again to
resume an interrupted sweep (the storage must be a directory every node can reach); run it
with more --trials to extend a finished one.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from sklearn.datasets import load_digits

import autolr


def model() -> torch.nn.Module:
    # defined in the script, so Ray sends it to the workers by value: nothing to install
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 10))


def main(argv: list[str] | None = None) -> autolr.TuneResult:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="Ray cluster address (host:port, auto)")
    parser.add_argument("--storage", default=None, help="experiment directory (none: temporary)")
    parser.add_argument("--study", default="ray-digits", help="experiment name")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="8 trials of 3 epochs")
    parser.add_argument("--report", default=None, metavar="OUT.html")
    args = parser.parse_args(argv)
    trials, epochs = (8, 3) if args.quick else (args.trials, args.epochs)

    X, y = load_digits(return_X_y=True)
    result = autolr.tune(model, (X / 16.0, y), backend="ray", ray_address=args.address,
                         storage=args.storage, study_name=args.study, n_trials=trials,
                         epochs=epochs, seed=0)
    print(result.summary())
    print("trials per node:", dict(Counter(r.node for r in result.records)))
    if args.report:
        print("report:", result.report(args.report))
    return result


if __name__ == "__main__":
    main()
