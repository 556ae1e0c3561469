"""Regression: tune an MLP on scikit-learn's diabetes data, optimising R².

    python examples/diabetes_regression.py [--trials 30] [--epochs 30] [--quick]

Float targets make autolr use mean squared error as the loss; `metric="r2"` picks the
config by validation R² (maximised) instead of the loss.
"""

from __future__ import annotations

import argparse
import logging

import torch
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

import autolr


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a few short trials (for tests)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 3, 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()  # standardised targets: one learning-rate scale fits all
    result = autolr.tune(make_model, (X, y), metric="r2", n_trials=args.trials,
                         epochs=args.epochs, progress=not args.quick)
    print(result.summary())
    print(f"\nbest validation R² = {result.best_value:.3f}")


if __name__ == "__main__":
    main()
