"""How a sweep starts: anytime regret at small budgets, over many sweep seeds.

The first trials of a sweep decide what a small budget buys. This replays autolr with its
space-filling start (`autolr.design`), with TPE's own random start-up trials, with a
design for all ten start-up trials, and plain random search, on more sweep seeds than the
main replay (its 30 leave the 2-5 FTE medians at the mercy of a few lucky draws). The
robust pick is left out (it never runs below 8 FTE anyway): this scores the search.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence

from benchmarks import accounting
from benchmarks.contenders import RECIPES
from benchmarks.oracle import GridCache
from benchmarks.replay import run_sweep

RECIPE_NAMES = ("autolr", "autolr-random-start", "autolr-design10", "random")
BUDGETS = (1, 2, 3, 5, 7, 10, 14, 20)
WITHIN = 0.10  # "within 10% of the oracle": the share of sweeps there at each budget
BOOTSTRAP = 2000  # resamples of the sweep seeds behind each interval of `versus`


def measure(cache: GridCache, seeds: Iterable[int], recipes: Sequence[str] = RECIPE_NAMES,
            max_fte: float = 20.0, log: Callable[[str], None] = print,
            ) -> dict[str, list[dict[str, float | None]]]:
    """Per recipe, per sweep seed: the incumbent's regret at each of `BUDGETS` (None:
    nothing completed yet)."""
    means, oracle = cache.means(), cache.oracle()[1]
    found: dict[str, list[dict[str, float | None]]] = {}
    for name in recipes:
        recipe = dataclasses.replace(RECIPES[name], confirm_seeds=0)
        rows = []
        for seed in seeds:
            events = run_sweep(recipe, cache, seed, max_fte)
            points = accounting.trajectory(events, cache.task.epochs,
                                           lambda key: means[key] / oracle - 1.0)
            rows.append({str(b): _finite(accounting.regret_at(points, b))
                         for b in BUDGETS if b <= max_fte})
        found[name] = rows
        log(f"  {cache.task.name} start {name}: median regret @5 FTE "
            f"{_median(rows, '5'):+.1%}")
    return found


def markdown(found: Mapping[str, Sequence[Mapping[str, float | None]]]) -> str:
    budgets = [b for b in BUDGETS if all(str(b) in r for rows in found.values() for r in rows)]
    head = ["contender", *(f"@{b} FTE" for b in budgets)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows in found.items():
        cells = [f"{_median(rows, str(b)):+.0%} ({_share(rows, str(b)):.0%})" for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def versus(found: Mapping[str, Sequence[Mapping[str, float | None]]], name: str = "autolr",
           other: str = "random", level: float = 0.95, seed: int = 0,
           budgets: Sequence[str] = tuple(str(b) for b in BUDGETS),
           ) -> dict[str, tuple[float, float, float]]:
    """Per budget: `name`'s median regret minus `other`'s, in regret points, with a
    `level` bootstrap interval over the sweep seeds (each contender's sweeps resampled on
    their own). "Worse than random" is a claim about the interval, not about a median
    that 100 sweeps move by a few tenths of a point: an interval above 0 is a real loss,
    one that holds 0 is a tie. Budgets where either median is still infinite (nothing
    completed) are left out. `budgets`: the keys of each sweep's row to compare ("final":
    the pick a live sweep ended with)."""
    rng = random.Random(seed)
    mine, theirs = found[name], found[other]
    out: dict[str, tuple[float, float, float]] = {}
    for budget in budgets:
        if not all(budget in r for r in (*mine, *theirs)):
            continue
        diff = _median(mine, budget) - _median(theirs, budget)
        if not math.isfinite(diff):
            continue
        draws = sorted(_gap(_median(rng.choices(mine, k=len(mine)), budget),
                            _median(rng.choices(theirs, k=len(theirs)), budget))
                       for _ in range(BOOTSTRAP))
        tail = (1 - level) / 2
        low, high = draws[int(tail * BOOTSTRAP)], draws[int((1 - tail) * BOOTSTRAP) - 1]
        if math.isfinite(low) and math.isfinite(high):
            out[budget] = (diff, low, high)
    return out


def versus_line(found: Mapping[str, Sequence[Mapping[str, float | None]]],
                name: str = "autolr", other: str = "random",
                budgets: Sequence[str] = tuple(str(b) for b in BUDGETS)) -> str:
    """`versus` in words: one cell per budget, and where `name` is really behind."""
    if name not in found or other not in found:
        return ""
    gaps = versus(found, name, other, budgets=budgets)
    cells = [f"{_label(b)} {d * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]"
             for b, (d, lo, hi) in gaps.items()]
    behind = [_label(b) + (" FTE" if b[0].isdigit() else "")
              for b, (_, lo, _) in gaps.items() if lo > 0]
    verdict = (f"{name} is behind beyond the noise at {', '.join(behind)}" if behind
               else f"{name} is nowhere behind beyond the noise")
    return (f"{name} minus {other}, median regret in points, with a 95% bootstrap interval "
            f"over the sweep seeds: " + "; ".join(cells) + f". {verdict}.\n")


def _label(budget: str) -> str:
    return f"@{budget}" if budget[0].isdigit() else f"{budget} pick"


def _gap(mine: float, theirs: float) -> float:
    # a resample where neither has completed anything yet (inf - inf) is a tie
    return 0.0 if math.isinf(mine) and math.isinf(theirs) else mine - theirs


def _median(rows: Sequence[Mapping[str, float | None]], budget: str) -> float:
    return statistics.median(math.inf if r[budget] is None else r[budget] for r in rows)


def _share(rows: Sequence[Mapping[str, float | None]], budget: str) -> float:
    return sum(r[budget] is not None and r[budget] <= WITHIN for r in rows) / len(rows)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
