"""The edge of the cliff: how close a config's learning rate sits to one that diverged.

The best learning rate of a family is often just below the one where training blows up,
and there the outcome depends on the seed: on MNIST-1D one-cycle at lr 0.1, batch 32,
finished well on 7 seeds and diverged on the 8th, and a config 1.8x higher failed on
most. A handful of seeds that came out well do not make such a config safe. So the
robust pick keeps `EDGE_MARGIN` below the lowest learning rate that diverged, on any
seed, for the same schedule, batch size and optimizer: it neither re-trains nor
recommends a config that close while a config further from the edge can be had.

>>> edges = divergence_edges([{"lr": 0.2, "schedule": "cosine", "batch_size": 32}])
>>> near_edge({"lr": 0.15, "schedule": "cosine", "batch_size": 32}, edges)
True
>>> near_edge({"lr": 0.1, "schedule": "cosine", "batch_size": 32}, edges)
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: how far below a learning rate that diverged a config must stay (a factor)
EDGE_MARGIN = 1.5

Edges = dict[tuple[str, int, str], float]


def _family(params: Mapping[str, Any]) -> tuple[str, int, str]:
    # warmup and weight decay move the edge too, but less than these; a config that
    # differs only in them shares its neighbour's cliff
    return (params.get("schedule", "constant"), int(params.get("batch_size", 32)),
            params.get("optimizer", "adamw"))


def divergence_edges(diverged: Iterable[Mapping[str, Any]]) -> Edges:
    """The lowest learning rate that diverged, per (schedule, batch size, optimizer),
    from the params of runs that diverged (on any seed)."""
    edges: Edges = {}
    for params in diverged:
        if "lr" not in params:
            continue
        key = _family(params)
        edges[key] = min(edges.get(key, float("inf")), float(params["lr"]))
    return edges


def near_edge(params: Mapping[str, Any], edges: Edges, margin: float = EDGE_MARGIN) -> bool:
    """Whether a config's learning rate is within `margin` of (or above) one that
    diverged for its schedule, batch size and optimizer."""
    edge = edges.get(_family(params))
    return edge is not None and float(params["lr"]) * margin >= edge


def why_near(params: Mapping[str, Any], edges: Edges) -> str:
    """Why `near_edge` holds for a config, in words."""
    schedule, batch_size, optimizer = _family(params)
    return (f"lr {float(params['lr']):.3g} is within {EDGE_MARGIN:g}x of lr "
            f"{edges[(schedule, batch_size, optimizer)]:.3g}, which diverged for {schedule}, "
            f"batch {batch_size}, {optimizer}")
