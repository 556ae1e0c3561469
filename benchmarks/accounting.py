"""Compute and regret accounting over a sweep's trials, as pure functions.

A sweep is the list of its trials in the order they finished (`Event`s). Compute is
counted in full-training equivalents, FTE = epochs run / the task's epochs (a pruned
trial costs the epochs it ran), and in seconds. After each trial the sweep recommends
its incumbent: the complete trial with the lowest observed final validation loss (as
`TuneResult.best_record`: pruned and diverged trials never qualify; a re-run on more seeds
revises a config's observed value). The regret at a
budget of B FTE is that of the incumbent after the last trial finished within B:
true(incumbent) / oracle - 1, where `true` is the config's seed mean (never the single,
possibly lucky, value the sweep saw). Before any trial completed, the regret is inf.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autolr.robust import HOLDOUT_SEEDS

BUDGETS = (2, 5, 10, 20)  # FTE at which the table quotes regret
CURVE = (1, 1.5, 2, 3, 4, 5, 7, 10, 14, 20, 28, 40)  # and the plot (a superset)
TOLERANCE = 0.05  # "within 5% of the oracle"
# runs of autolr's robust pick beyond its confirmation and held-out seeds that a sweep
# reserves from its budget: the step back (robust.step_back), which fires in many sweeps
STEP_BACK_RUNS = 1


def pick_reserve(extra_seeds: int) -> int:
    """Full runs an autolr sweep leaves out of its budget for the robust pick with
    `extra_seeds` extra seeds (none without a pick): one confirmation, the held-out
    seeds and the step back. Its later rounds, when they run, cost more."""
    return extra_seeds + HOLDOUT_SEEDS + STEP_BACK_RUNS if extra_seeds else 0


COUNTED = ("complete", "rerun")  # events whose value can make a config the incumbent
PICK = "pick"  # the sweep's own final recommendation (TuneResult.best_record), and its value


@dataclass(frozen=True)
class Event:
    """One finished trial: which config (a grid key or any id), how it ended, its cost,
    and the final validation loss the sweep observed (None unless complete). A "rerun"
    event (the config trained again on another seed) carries the sweep's revised
    estimate for that config, e.g. the mean of the seeds it saw, which replaces the
    earlier one when choosing the incumbent. A "pick" event (no cost) is the config the
    sweep ended up recommending and the value it reported for it: the incumbent from
    then on, whatever the lowest value seen."""

    key: str
    state: str
    epochs: float
    seconds: float
    value: float | None = None


@dataclass(frozen=True)
class Point:
    """The sweep's state after one more trial finished."""

    fte: float
    seconds: float
    incumbent: str | None
    regret: float
    estimate: float = math.nan  # the value the sweep reports for its incumbent


def trajectory(events: Sequence[Event], epochs: int,
               regret_of: Callable[[str], float]) -> list[Point]:
    """Cumulative compute and the incumbent's regret after each trial."""
    points, fte, seconds = [], 0.0, 0.0
    observed: dict[str, float] = {}  # key -> its latest estimate (a re-run may revise it)
    best_key = None
    for event in events:
        fte += event.epochs / epochs
        seconds += event.seconds
        if (event.state in COUNTED and event.value is not None
                and math.isfinite(event.value)):
            observed[event.key] = event.value
            best_key = min(observed, key=observed.get)
        elif event.state == PICK and event.value is not None:
            observed[event.key] = event.value
            best_key = event.key
        regret = regret_of(best_key) if best_key is not None else math.inf
        estimate = observed[best_key] if best_key is not None else math.nan
        points.append(Point(fte, seconds, best_key, regret, estimate))
    return points


def regret_at(points: Sequence[Point], budget: float) -> float:
    """Regret of the incumbent after the last trial that finished within `budget` FTE."""
    regret = math.inf
    for point in points:
        if point.fte > budget + 1e-9:
            break
        regret = point.regret
    return regret


def first_within(points: Sequence[Point], tolerance: float = TOLERANCE,
                 ) -> tuple[float, float]:
    """(FTE, seconds) at which the incumbent first came within `tolerance` of the oracle;
    (inf, inf) if it never did."""
    for point in points:
        if point.regret <= tolerance:
            return point.fte, point.seconds
    return math.inf, math.inf


def diverged_share(events: Sequence[Event], epochs: int, budget: float) -> float:
    """Share of the compute spent within `budget` FTE that went into diverged trials."""
    total = diverged = 0.0
    for event in events:
        if total + event.epochs / epochs > budget + 1e-9:
            break
        total += event.epochs / epochs
        diverged += event.epochs / epochs if event.state == "diverged" else 0.0
    return diverged / total if total else 0.0


def completed_any(events: Sequence[Event], keys: set[str], epochs: int,
                  budget: float) -> bool:
    """Did a trial of one of `keys` run to completion within `budget` FTE?"""
    fte = 0.0
    for event in events:
        fte += event.epochs / epochs
        if fte > budget + 1e-9:
            return False
        if event.state == "complete" and event.key in keys:
            return True
    return False


@dataclass(frozen=True)
class SweepMetrics:
    """What one sweep is scored on."""

    regret: dict[float, float]  # budget (FTE) -> regret
    fte_to_within: float
    seconds_to_within: float
    diverged_share: float
    kept_winner: bool
    trials: int
    fte_to_10: float = math.inf  # FTE to within 10%: progress where 5% is below the noise
    # the pick's true seed mean over the value the sweep reports for it, minus 1, at the
    # end: > 0 when the user is told a better number than they will get
    reported_gap: float = math.nan
    # the recommendation the sweep ended with, and the compute it had spent by then
    final_regret: float = math.inf
    final_fte: float = math.nan

    def to_json(self) -> dict:
        return {"regret": {str(b): _finite(r) for b, r in self.regret.items()},
                "fte_to_within": _finite(self.fte_to_within),
                "seconds_to_within": _finite(self.seconds_to_within),
                "diverged_share": self.diverged_share, "kept_winner": self.kept_winner,
                "trials": self.trials, "fte_to_10": _finite(self.fte_to_10),
                "reported_gap": self.reported_gap if math.isfinite(self.reported_gap)
                else None, "final_regret": _finite(self.final_regret),
                "final_fte": self.final_fte if math.isfinite(self.final_fte) else None}

    @classmethod
    def from_json(cls, raw: dict) -> SweepMetrics:
        return cls({float(b): _inf(r) for b, r in raw["regret"].items()},
                   _inf(raw["fte_to_within"]), _inf(raw["seconds_to_within"]),
                   raw["diverged_share"], raw["kept_winner"], raw["trials"],
                   _inf(raw.get("fte_to_10")),
                   math.nan if raw.get("reported_gap") is None else raw["reported_gap"],
                   _inf(raw.get("final_regret")),
                   math.nan if raw.get("final_fte") is None else raw["final_fte"])


def score(events: Sequence[Event], epochs: int, regret_of: Callable[[str], float], *,
          winners: set[str] = frozenset(), budgets: Sequence[float] = CURVE,
          share_budget: float = 20.0, max_budget: float = 40.0,
          true_of: Callable[[str], float] | None = None) -> SweepMetrics:
    """`true_of(key)`: a config's true seed mean, for `reported_gap`."""
    every = trajectory(events, epochs, regret_of)
    points = [p for p in every if p.fte <= max_budget + 1e-9]
    fte, seconds = first_within(points)
    # the final pick is what the sweep ended with, at whatever it cost (reported as such)
    end = every[-1] if every else None
    gap = math.nan
    if true_of is not None and end is not None and end.incumbent is not None:
        gap = true_of(end.incumbent) / end.estimate - 1.0
    return SweepMetrics({float(b): regret_at(points, b) for b in budgets}, fte, seconds,
                        diverged_share(events, epochs, share_budget),
                        completed_any(events, winners, epochs, max_budget), len(points),
                        first_within(points, 0.10)[0], gap,
                        end.regret if end else math.inf, end.fte if end else math.nan)


def median(values: Sequence[float]) -> float:
    """The median, with inf allowed (a sweep that never got there counts as infinitely
    late); nan for no values."""
    return statistics.median(values) if values else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _inf(value: float | None) -> float:
    return math.inf if value is None else value
