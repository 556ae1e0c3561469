"""The edge of the cliff: how close a config's learning rate sits to one that diverged.

The best learning rate of a family is often just below the one where training blows up,
and there the outcome depends on the seed: live on digits, one-cycle at lr 0.24, batch
32, finished well on the sweep's 4 seeds and failed on fresh ones (+570%). A handful of
seeds that came out well do not make such a config safe. So the
robust pick keeps `EDGE_MARGIN` below the lowest learning rate that diverged, on any
seed, with the same optimizer at the same or a larger batch size, in any schedule: it
neither re-trains nor recommends a config that close while a config further from the
edge can be had.

Why across schedules and from larger batches: whether a run blows up is set mostly by its
peak learning rate against the loss's curvature. The schedule moves when the peak comes
more than how high it may be, and a smaller batch only adds gradient noise, so it is no
steadier at a given learning rate than a larger one. A divergence at a smaller batch says
little about a larger one, which may well take the higher rate. (Measured on the
benchmark replay against an edge per schedule and batch size: MNIST-1D sweeps within 5%
of the oracle at 20 FTE 11 -> 13 of 30, digits picks more than 50% off 3 -> 1 of 30.)

A run can also come close to the edge without falling: its validation loss jumps back
most of the way it had come down, then recovers (`setback`; not when the schedule itself
raised the learning rate back to where the run had been: a restart, a cycle). On the
benchmark grids the config of such a run diverged on another seed 15% of the time on
digits, against 3% for steady runs (MNIST-1D 0% against 1%, diabetes 0%: since a blow-up
must last 20 steps, few runs there diverge at all). So
the pick does not recommend a config whose run had a setback while a steady one can be
had, and a setback on one of the pick's extra seeds counts as a divergence there.

>>> edges = divergence_edges([{"lr": 0.2, "schedule": "cosine", "batch_size": 64}])
>>> near_edge({"lr": 0.15, "schedule": "one_cycle", "batch_size": 32}, edges)
True
>>> near_edge({"lr": 0.1, "schedule": "one_cycle", "batch_size": 32}, edges)
False
>>> near_edge({"lr": 0.15, "schedule": "cosine", "batch_size": 128}, edges)
False
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autolr.errors import UnknownNameError
from autolr.lr_profile import EvalProfile
from autolr.space import TrialConfig

#: how far below a learning rate that diverged a config must stay (a factor)
EDGE_MARGIN = 1.5

#: a setback: the validation loss jumped back more than this share of what it had fallen
SETBACK_SHARE = 0.5
#: ... after falling by at least this share of its highest value (before that, a rise is
#: the noise of a run that has not started learning)
SETBACK_MIN_DROP = 0.3
#: ... unless the schedule raised the learning rate this much since the loss's best,
SETBACK_LR_RISE = 1.5
#: ... back to no more than this times a rate the run had already trained at (factors
#: are read at the evaluations, so a peak between two of them reads a little low)
SETBACK_REVISIT = 1.1

#: (optimizer, batch size) -> (the lowest lr that diverged there, the schedule it ran)
Edges = dict[tuple[str, int], tuple[float, str]]


def _optimizer_and_batch(params: Mapping[str, Any]) -> tuple[str, int]:
    # warmup and weight decay move the edge too, but less than these; a config that
    # differs only in them shares its neighbour's cliff
    return params.get("optimizer", "adamw"), int(params.get("batch_size", 32))


def divergence_edges(diverged: Iterable[Mapping[str, Any]]) -> Edges:
    """The lowest learning rate that diverged (and its schedule), per optimizer and batch
    size, from the params of runs that diverged (on any seed)."""
    edges: Edges = {}
    for params in diverged:
        if "lr" not in params:
            continue
        key, lr = _optimizer_and_batch(params), float(params["lr"])
        if key not in edges or lr < edges[key][0]:
            edges[key] = (lr, params.get("schedule", "constant"))
    return edges


def edge_of(params: Mapping[str, Any], edges: Edges) -> tuple[float, str, int] | None:
    """The lowest learning rate that diverged with the config's optimizer at its batch
    size or a larger one, with that run's schedule and batch size (None: nothing did)."""
    optimizer, batch_size = _optimizer_and_batch(params)
    found = [(lr, schedule, batch) for (opt, batch), (lr, schedule) in edges.items()
             if opt == optimizer and batch >= batch_size]
    return min(found) if found else None


def near_edge(params: Mapping[str, Any], edges: Edges, margin: float = EDGE_MARGIN) -> bool:
    """Whether a config's learning rate is within `margin` of (or above) the edge that
    `edge_of` finds for it."""
    edge = edge_of(params, edges)
    return edge is not None and float(params["lr"]) * margin >= edge[0]


def why_near(params: Mapping[str, Any], edges: Edges) -> str:
    """Why `near_edge` holds for a config, in words."""
    lr, schedule, batch_size = edge_of(params, edges)
    own = float(params["lr"])
    where = f"within {EDGE_MARGIN:g}x of" if own < lr else "at" if own == lr else "above"
    return (f"lr {own:.3g} is {where} lr {lr:.3g}, which diverged for {schedule}, "
            f"batch {batch_size}, {_optimizer_and_batch(params)[0]}")


def setback(losses: Sequence[float], lr_factors: Sequence[float] | None = None) -> str | None:
    """How a run's validation loss jumped, from one evaluation to the next, more than
    `SETBACK_SHARE` of the way back up it had come down, once it had fallen by
    `SETBACK_MIN_DROP` of its highest value; None for a steady run. A near-divergence: the
    model lost most of what it had learned at once. (A slow climb is overfitting, not
    this: with an accuracy metric such a run may still be the best.)

    `lr_factors`: the schedule's factor at each evaluation (`lr_profile`). A jump after
    the schedule raised the learning rate `SETBACK_LR_RISE`-fold since the loss was at
    its best, back to a rate the run had trained at before (a restart, a new cycle), is
    the schedule's doing, not a setback.

    >>> setback([2.28, 1.62, 0.92, 2.27, 0.66, 0.24])
    'its validation loss jumped back from 0.92 to 2.27 (it had come down from 2.28)'
    >>> setback([2.28, 1.62, 0.92, 1.20, 0.66, 0.24]) is None
    True
    >>> setback([2.28, 0.5, 0.9, 1.3, 1.7]) is None  # overfitting, step by step
    True
    >>> setback([2.28, 0.5, 0.3, 1.9, 0.2], lr_factors=[1.0, 0.5, 0.05, 1.0, 0.1]) is None
    True
    >>> setback([2.28, 0.5, 0.3, 1.9, 0.2], lr_factors=[0.2, 0.5, 0.6, 1.0, 0.1]) is None
    False
    """
    finite = [(float(v), i) for i, v in enumerate(losses) if math.isfinite(v)]
    if not finite:
        return None
    (best, at_best), top, previous = finite[0], finite[0][0], finite[0][0]
    for value, index in finite[1:]:
        fallen = top - best
        if (fallen >= SETBACK_MIN_DROP * top and value - best > SETBACK_SHARE * fallen
                and value - previous > SETBACK_SHARE * fallen
                and not _lr_raised(lr_factors, at_best, index)):
            return (f"its validation loss jumped back from {previous:.3g} to {value:.3g} "
                    f"(it had come down from {top:.3g})")
        if value < best:
            best, at_best = value, index
        top, previous = max(top, value), value
    return None


def _lr_raised(lr_factors: Sequence[float] | None, since: int, until: int) -> bool:
    """Whether the schedule raised the learning rate `SETBACK_LR_RISE`-fold between
    evaluations `since` and `until`, back to a rate the run had already trained at by
    `since` (a restart, a new cycle). Raised to new heights (warmup, one-cycle's ramp,
    a first cycle), a jump is the run failing at a rate it had not met: a setback."""
    if lr_factors is None or until >= len(lr_factors):
        return False
    raised = max(lr_factors[since:until + 1])
    return (raised > lr_factors[since] and raised >= SETBACK_LR_RISE * lr_factors[since]
            and raised <= SETBACK_REVISIT * max(lr_factors[:since + 1]))


def run_setback(config: TrialConfig | Mapping[str, Any],
                losses: Sequence[float]) -> str | None:
    """`setback` of a run of `config` (or its params) whose evaluations gave `losses`
    (evenly spaced over the run: its whole schedule, a budgeted rung's too)."""
    if len(losses) < 2:
        return None
    try:
        if not isinstance(config, TrialConfig):
            config = TrialConfig.from_dict(config)
        factors = EvalProfile.of(config, len(losses)).multiplier
    except UnknownNameError:  # a custom schedule this process has not registered (a
        factors = None  # saved result loaded elsewhere): judged without its profile
    return setback(losses, factors)
