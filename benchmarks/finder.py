"""Could an LR range test centre or bound the search? Its suggestions against the oracle.

For each task and grid batch size: range tests on a few seeds (`lr_finder.range_test`,
the task's optimizer), their median suggestions (steepest, valley, minimum / 10; each
over the tests where it could be judged, `RangeTest.why_not`) and the lr where the test
blew up, against the oracle's best learning rate at that batch size (the grid config
with the best seed mean, any schedule). A prior that centres the lr range on a
suggestion with +-`WINDOW` decades keeps the optimum only if the suggestion is within
that factor of it; one that caps the range at the blow-up lr only narrows the search if
the blow-up comes below the space's top.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence

from autolr.range_test import SUGGESTIONS
from benchmarks.lr_finder import range_test
from benchmarks.oracle import GridCache

WINDOW = 1.5  # decades either side of a suggestion: a 3-decade prior
LABELS = {"steepest": "steepest", "valley": "valley", "min_tenth": "min / 10"}


def best_lr_per_batch(cache: GridCache) -> dict[int, tuple[float, float]]:
    """batch size -> (lr, seed mean) of its best grid config."""
    best: dict[int, tuple[float, float]] = {}
    for key, mean in cache.means().items():
        _schedule, batch, _warmup, lr = key.split("|")
        size, rate = int(batch[1:]), float(lr[2:])
        if size not in best or mean < best[size][1]:
            best[size] = (rate, mean)
    return best


def measure(cache: GridCache, seeds: Iterable[int], log: Callable[[str], None] = print,
            ) -> list[dict]:
    """One row per batch size: median suggestions, blow-up lr and cost, and the optimum."""
    best = best_lr_per_batch(cache)
    rows = []
    for batch in cache.task.grid.batch_sizes:
        tests = [range_test(cache.task, batch_size=batch, seed=seed) for seed in seeds]
        given = [t.suggestions() for t in tests]
        picks = {name: statistics.median(found) if (found := [s[name] for s in given
                                                              if name in s]) else None
                 for name in SUGGESTIONS}
        rows.append({"batch_size": batch, "best_lr": best[batch][0], **picks,
                     "judged": {name: sum(name in s for s in given) for name in SUGGESTIONS},
                     "blowup_lr": statistics.median(t.lrs[-1] for t in tests),
                     "blew_up": sum(t.stopped == "diverged" for t in tests),
                     "tests": len(tests),
                     "epochs": statistics.median(t.epochs for t in tests)})
        log(f"  {cache.task.name} b{batch}: best lr {best[batch][0]:.3g}; " + ", ".join(
            f"{name} {picks[name]:.3g}" if picks[name] is not None else f"{name} none"
            for name in SUGGESTIONS))
    return rows


def markdown(rows: Sequence[Mapping], *, task_epochs: int, space_top: float) -> str:
    """The table for RESULTS.md: each suggestion as a factor of the optimum (with how many
    of the tests could judge it, when not all)."""
    head = ["batch", "best lr (oracle)", *(f"{LABELS[n]} (× best)" for n in SUGGESTIONS),
            "blow-up lr", "caps the space?", "cost (FTE)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["batch_size"]), f"{row['best_lr']:.3g}"]
        for name in SUGGESTIONS:
            judged = row.get("judged", {}).get(name, row["tests"])
            if row[name] is None:
                cells.append(f"none (0/{row['tests']} judged)")
                continue
            ratio = row[name] / row["best_lr"]
            inside = abs(math.log10(ratio)) <= WINDOW
            cells.append(f"{row[name]:.3g} ({ratio:.2g}×){'' if inside else ' ✗'}"
                         + ("" if judged == row["tests"] else f" ({judged}/{row['tests']} judged)"))
        cells += [f"{row['blowup_lr']:.3g} ({row['blew_up']}/{row['tests']} blew up)",
                  "yes" if row["blowup_lr"] < space_top else "no",
                  f"{row['epochs'] / task_epochs:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
