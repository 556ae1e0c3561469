"""The sweep on the nodes of a Ray cluster: how a worker loads it, and a check before the
sweep that every node which could run a trial can (and that one can: with none, Tune
would wait for such a node for ever, saying nothing).

A model class, loss or dataset from a module the driver imports goes to the cluster by
reference (cloudpickle), so a node without that module cannot load the sweep. Without the
check, each trial Tune sends there fails on its own, and with every node missing it a
sweep of 200 trials runs 200 failures; with it, the sweep does not start, and the error
names the nodes and the fix. It costs about 3 s a call, most of it a fresh worker
importing torch (a 2-trial sweep on a local Ray: 10.6 s against 7.1 s, median of 4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from autolr.errors import AutoLRError
from autolr.sweep import Sweep

logger = logging.getLogger("autolr")

CHECK_TIMEOUT = 60.0  # seconds for every node to answer; a node that does not is warned of
LOAD_FIX = ("the code they use must be importable on every node: install it there, ship it "
            "with ray.init(runtime_env={'py_modules': [...]}) or {'working_dir': ...} before "
            "calling autolr, or define it in the script you run")

_loaded: tuple[str, Sweep] | None = None  # the sweep this worker process loaded last


def load(ref: Any) -> Sweep:
    """The sweep from the object store, deserialized once per worker process (actors are
    reused, so most trials skip it). Keyed by the id, not the ref: that would pin it."""
    global _loaded
    import ray

    if _loaded is None or _loaded[0] != ref.hex():
        _loaded = (ref.hex(), ray.get(ref))
    return _loaded[1]


def last_line(error: BaseException) -> str:
    """An error's last line: Ray's errors carry the remote traceback above it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def check_nodes_load(stored: list, resources: Mapping[str, float]) -> None:
    """Raise before the sweep if no node has room for a trial (`resources`, as
    `_check_resources` gives them), or one that has cannot load the sweep in `stored`."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [node for node in ray.nodes() if node.get("Alive")]
    nodes = [node for node in alive if _fits(node, resources)]
    if not nodes:  # Tune would wait for such a node for ever, saying nothing
        raise AutoLRError(
            f"no node of the Ray cluster has the resources a trial asks for ({_shown(resources)});"
            f" its nodes have {'; '.join(_shown(_amounts(n)) for n in alive) or 'nothing'}. "
            "Ask for less with resources_per_trial, or add a node that has them (on an "
            "autoscaling cluster, keep one such node running).")
    probe = ray.remote(_try_load)
    asked = [(node["NodeManagerAddress"], probe.options(
        num_cpus=0,  # not queued behind busy CPUs
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
    ).remote(stored)) for node in nodes]
    ready, _ = ray.wait([ref for _, ref in asked], num_returns=len(asked),
                        timeout=CHECK_TIMEOUT)
    failed, silent = [], []
    for address, ref in asked:
        if ref not in ready:
            silent.append(address)
            continue
        try:
            reason = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # autolr itself not importable, say
            reason = last_line(error)
        except ray.exceptions.RayError:  # the node died or left since ray.nodes() listed it
            silent.append(address)
            continue
        if reason is not None:
            failed.append(f"{address}: {reason}")
    if silent:
        logger.warning("Ray nodes %s did not say (within %.0f s) whether they can load the "
                       "model and data: gone, or busy; trials there fail if they cannot",
                       ", ".join(silent), CHECK_TIMEOUT)
    if failed:
        raise AutoLRError(f"the model or data cannot be loaded on {len(failed)} of "
                          f"{len(nodes)} Ray nodes ({'; '.join(failed)}); {LOAD_FIX}.")


def _try_load(stored: list) -> str | None:
    """On a node: None if it loads the sweep, else why not."""
    try:
        load(stored[0])
    except Exception as error:
        return last_line(error)
    return None


def _fits(node: Mapping[str, Any], resources: Mapping[str, float]) -> bool:
    """Whether `node` has in total what one trial asks for (cpu, gpu, memory, custom)."""
    total = _amounts(node)
    return all(total.get(name, 0.0) >= amount for name, amount in resources.items()
               if amount > 0)


def _amounts(node: Mapping[str, Any]) -> dict[str, float]:
    """A node's total resources under the names a trial asks for them by (cpu, gpu);
    Ray's internal ones (node:..., object_store_memory) left out."""
    names = {"CPU": "cpu", "GPU": "gpu"}
    return {names.get(name, name): amount for name, amount in node.get("Resources", {}).items()
            if not name.startswith("node:") and name != "object_store_memory"}


def _shown(resources: Mapping[str, float]) -> str:
    """'cpu 2, gpu 1, memory 8 GiB'."""
    return ", ".join(f"{name} {amount / 2**30:.3g} GiB" if name == "memory" else
                     f"{name} {amount:g}" for name, amount in sorted(resources.items())
                     if amount > 0) or "none"

