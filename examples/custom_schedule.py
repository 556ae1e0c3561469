"""Register your own schedule and let autolr search it beside the built-in ones.

    python examples/custom_schedule.py [--quick]

A schedule is a pure function `multiplier(step, total_steps, **params) -> float`; the
parameters it lists in `params` are searched, the warmup wrapper works with it, and the
result hands it back through the same LambdaLR adapter as any built-in schedule.
"""

from __future__ import annotations

import argparse
import logging

import torch
from sklearn.datasets import load_digits

import autolr
from autolr import schedules
from autolr.dims import Float


def hold_then_decay(step: int, total_steps: int, *, hold: float = 0.5,
                    final_fraction: float = 0.01) -> float:
    """Hold the base rate for `hold` of training, then decay geometrically."""
    progress = step / total_steps
    if progress < hold:
        return 1.0
    return final_fraction ** ((progress - hold) / (1.0 - hold))


schedules.register("hold_then_decay", hold_then_decay, overwrite=True,
                   params={"hold": Float(0.2, 0.8), "final_fraction": Float(1e-3, 0.1, log=True)},
                   description="constant, then geometric decay")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short trials (for tests)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    trials, epochs = (3, 1) if args.quick else (30, 15)

    X, y = load_digits(return_X_y=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    space = {"schedules": ["hold_then_decay", "cosine", "constant"], "lr": (1e-4, 1e-1)}
    result = autolr.tune(model, (X / 16, y), space=space, n_trials=trials, epochs=epochs,
                         progress=not args.quick)
    print(result.summary())
    customs = [r for r in result.records if r.params.get("schedule") == "hold_then_decay"]
    print(f"\n{len(customs)} of {len(result.records)} trials tried hold_then_decay")
    print(result.code())


if __name__ == "__main__":
    main()
