"""Whether the best learning rate sits at an end of the range the sweep searched: then the
optimum may lie beyond it, and a sweep over a range reaching further would find out. At
the top, a learning rate that diverged at or above the best one bounds it instead (the
cliff is there, not the range's end), and no warning is given.

>>> space = {"lr": [1e-4, 1e-2], "lr_scaling": "none", "lr_reference_batch": 256}
>>> best = {"lr": 9e-3, "batch_size": 32, "optimizer": "adamw"}
>>> print(range_edge(best, [], space).split("; ")[1])
search a range reaching higher, lr=(0.0001, 0.1) (in a .toml space, lr = [0.0001, 0.1])
>>> range_edge({"lr": 1e-3, "batch_size": 32, "optimizer": "adamw"}, [], space) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from autolr.space import _LR_SCALING_EXPONENTS

#: how close to an end of the searched range (in decades) the best learning rate must be
#: to be said to sit at it: a factor of 1.8
EDGE_DECADES = 0.25
#: a range narrower than this (decades) is every trial's edge: no warning
MIN_SPAN_DECADES = 2 * EDGE_DECADES


def range_edge(best: Mapping[str, Any], diverged: Iterable[Mapping[str, Any]],
               lr_space: Mapping[str, Any] | None) -> str | None:
    """A warning when `best` (a config's params) has its learning rate within
    `EDGE_DECADES` of an end of `lr_space`'s range (a space's lr, lr_scaling and
    lr_reference_batch: the range is of the searched value), else None. `diverged`: the
    params of the trials that diverged; one with the best's optimizer at or above its
    learning rate bounds it from above."""
    if not lr_space or "lr" not in lr_space:
        return None
    low, high = (float(v) for v in lr_space["lr"])
    if not (0 < low < high) or math.log10(high / low) < MIN_SPAN_DECADES:
        return None

    scaling = str(lr_space.get("lr_scaling", "none"))
    reference = float(lr_space.get("lr_reference_batch") or 1)

    def searched(params: Mapping[str, Any]) -> float:  # as `SearchSpace.lr_factor` scales
        batch = float(params.get("batch_size", reference))
        return float(params["lr"]) / (batch / reference) ** _LR_SCALING_EXPONENTS.get(scaling, 0)

    lr = searched(best)
    what = ("the best learning rate" if scaling == "none"
            else f"the best learning rate at the reference batch {reference:g}")
    if math.log10(high / lr) <= EDGE_DECADES:
        optimizer = best.get("optimizer")
        if any(p.get("optimizer") == optimizer and searched(p) >= lr for p in diverged):
            return None
        return (f"{what}, {lr:.3g}, lies within a quarter decade of the top of the range "
                f"searched ({high:g}), and no trial at or above it diverged: the optimum may "
                "lie higher; search a range reaching higher, " + _range_words(low, high * 10))
    if math.log10(lr / low) <= EDGE_DECADES:
        return (f"{what}, {lr:.3g}, lies within a quarter decade of the bottom of the range "
                f"searched ({low:g}): the optimum may lie lower; search a range reaching "
                "lower, " + _range_words(low / 10, high))
    return None


def _range_words(low: float, high: float) -> str:
    return f"lr=({low:g}, {high:g}) (in a .toml space, lr = [{low:g}, {high:g}])"
