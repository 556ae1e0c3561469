"""Quickstart: tune a two-hidden-layer MLP on scikit-learn's digits, compare with the
default AdamW 1e-3 / constant / batch 32, and write the HTML report.

    python examples/quickstart.py [--trials 40] [--epochs 20] [--report autolr-report.html]
"""

from __future__ import annotations

import argparse
import logging

import torch
from sklearn.datasets import load_digits

import autolr


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--report", default="autolr-report.html")
    parser.add_argument("--quick", action="store_true", help="a few short trials (for tests)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 4, 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # a small MLP: one thread is fastest (see benchmarks/)

    X, y = load_digits(return_X_y=True)
    torch.manual_seed(0)
    result = autolr.tune(make_model(), (X / 16.0, y), n_trials=args.trials,
                         epochs=args.epochs, progress=not args.quick)
    print(result.summary())
    print("\nUse it in plain PyTorch:\n" + result.code())
    if hasattr(result, "report"):
        print(f"\nreport: {result.report(args.report)}")


if __name__ == "__main__":
    main()
