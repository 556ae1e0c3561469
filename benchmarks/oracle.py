"""The oracle: every grid config trained on several seeds, cached as JSON.

Each config of a task's grid is trained with `autolr.training.train_trial` (the loop every
autolr sweep runs; no reporter, so nothing is pruned, but a diverging run is stopped by
the loop's divergence rule as in any sweep) on seeds 0..grid_seeds-1. Stored per run: the
per-epoch validation loss, how the run ended, the epochs it ran and its seconds.

The oracle is the best *seed mean*: configs are ranked by their mean final validation
loss, and every config that competes for first place (the top `TOP` and any whose mean
beats the current oracle) is re-run on `confirm_seeds` extra seeds until the leader is a
config with all its seeds and nothing unconfirmed beats it. A diverged run counts as the
chance-level loss (ln C for C classes; the variance of the validation targets around the
training mean for regression): deploying a config that diverges on some seeds costs that.

The cache (`benchmarks/cache/<task>.json`) is only extended, never recomputed, unless asked
(`--recompute`); an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from autolr.budgeted import rung_epochs
from autolr.data import CLASSIFICATION
from autolr.space import TrialConfig
from autolr.training import train_trial
from benchmarks.tasks import Task, key_of

CACHE = Path(__file__).parent / "cache"
FORMAT = "autolr-bench-grid/1"
TOP = 8  # configs confirmed on extra seeds, at least


@dataclass(frozen=True)
class Run:
    """One training run: per-epoch validation losses, how it ended, cost."""

    values: tuple[float, ...]
    state: str
    epochs: float
    seconds: float

    def to_json(self) -> list:
        return [self.state, self.epochs, round(self.seconds, 3),
                [float(f"{v:.5g}") if math.isfinite(v) else None for v in self.values]]

    @classmethod
    def from_json(cls, raw: list) -> Run:
        state, epochs, seconds, values = raw
        return cls(tuple(math.nan if v is None else v for v in values), state, epochs, seconds)

    def final(self, chance: float) -> float:
        """The run's final validation loss; chance level if it diverged or ended non-finite."""
        if self.state != "complete" or not self.values or not math.isfinite(self.values[-1]):
            return chance
        return self.values[-1]


class GridCache:
    """A task's cached runs: grid configs by key, off-grid configs (`extra`) by JSON."""

    def __init__(self, task: Task, path: Path | None = None) -> None:
        self.task = task
        self.path = path or CACHE / f"{task.name}.json"
        self.runs: dict[str, dict[int, Run]] = {}
        self.extra: dict[str, dict[int, Run]] = {}
        # budgeted rungs: grid configs trained with the whole schedule in fewer epochs,
        # epochs -> key -> seed -> run (see autolr.budgeted)
        self.rungs: dict[int, dict[str, dict[int, Run]]] = {}
        self.meta: dict[str, Any] = {}
        if self.path.exists():
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT or raw.get("epochs") != task.epochs:
                raise ValueError(f"{self.path} was written for other settings; "
                                 "rerun with --recompute.")
            self.meta = raw.get("meta", {})
            for section, target in (("runs", self.runs), ("extra", self.extra)):
                for key, seeds in raw.get(section, {}).items():
                    target[key] = {int(s): Run.from_json(r) for s, r in seeds.items()}
            for epochs, runs in raw.get("rungs", {}).items():
                self.rungs[int(epochs)] = {
                    key: {int(s): Run.from_json(r) for s, r in seeds.items()}
                    for key, seeds in runs.items()}

    @property
    def chance(self) -> float:
        """The loss of a model that learned nothing: what a diverged run counts as."""
        data = self.task.data
        if data.task == CLASSIFICATION:
            return math.log(data.n_classes)
        return float(((data.y_val - data.y_train.mean(0)) ** 2).mean())

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        g = self.task.grid
        payload = {
            "format": FORMAT, "task": self.task.name, "description": self.task.description,
            "epochs": self.task.epochs, "optimizer": self.task.optimizer,
            "grid": {"lrs": g.lrs, "schedules": g.schedules, "batch_sizes": g.batch_sizes,
                     "warmups": g.warmups},
            "meta": self.meta,
            "runs": {k: {str(s): r.to_json() for s, r in sorted(v.items())}
                     for k, v in self.runs.items()},
            "extra": {k: {str(s): r.to_json() for s, r in sorted(v.items())}
                      for k, v in self.extra.items()},
            "rungs": {str(e): {k: {str(s): r.to_json() for s, r in sorted(v.items())}
                               for k, v in runs.items()} for e, runs in self.rungs.items()},
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
        tmp.replace(self.path)

    # -- reading -------------------------------------------------------------------------
    def mean(self, key: str) -> float:
        """A grid config's mean final validation loss over every seed it was run on."""
        return statistics.fmean(r.final(self.chance) for r in self.runs[key].values())

    def means(self) -> dict[str, float]:
        return {key: self.mean(key) for key in self.runs if self.runs[key]}

    def confirmed(self, key: str) -> bool:
        return len(self.runs.get(key, {})) >= self.task.grid_seeds + self.task.confirm_seeds

    def oracle(self) -> tuple[str, float]:
        """(key, seed mean) of the best confirmed config (best of all while unconfirmed)."""
        means = self.means()
        confirmed = {k: v for k, v in means.items() if self.confirmed(k)} or means
        key = min(confirmed, key=confirmed.get)
        return key, confirmed[key]

    def regret(self, key: str) -> float:
        """Relative regret of a grid config: its seed mean over the oracle's, minus 1."""
        return self.mean(key) / self.oracle()[1] - 1.0

    def run(self, key: str, seed: int) -> Run:
        """The run a replayed sweep with this seed reads (seeds cycle over the grid seeds)."""
        return self.runs[key][seed % self.task.grid_seeds]

    def rung_run(self, key: str, seed: int, epochs: int) -> Run:
        """The run of a budgeted rung: the config's whole schedule in `epochs` epochs."""
        return self.rungs[epochs][key][seed % self.task.grid_seeds]

    def missing_rungs(self) -> list[tuple[int, int, TrialConfig]]:
        """(epochs, seed, config) of the budgeted-rung runs not cached yet."""
        return [(epochs, seed, config) for epochs in rung_epochs(self.task.epochs)[:-1]
                for seed in range(self.task.grid_seeds) for config in self.task.configs()
                if seed not in self.rungs.get(epochs, {}).get(key_of(config), {})]

    def extra_mean(self, config: TrialConfig) -> float | None:
        runs = self.extra.get(_config_id(config))
        if not runs or len(runs) < self.task.grid_seeds:
            return None
        return statistics.fmean(r.final(self.chance) for r in runs.values())


# -- training ------------------------------------------------------------------------------

def train(task: Task, config: TrialConfig, seed: int, epochs: int | None = None) -> Run:
    """One full run of `config` with autolr's loop (unpruned); with `epochs`, its whole
    schedule in that many epochs (a budgeted rung)."""
    outcome = train_trial(config, task.model_fn, task.data, epochs=epochs or task.epochs,
                          loss_fn=task.loss_fn, metric=task.metric, seed=seed)
    return Run(tuple(outcome.values), outcome.state, outcome.epochs_run, outcome.seconds)


def build(task: Task, cache: GridCache, *, seeds: Iterable[int] | None = None,
          log: Callable[[str], None] = print, save_every: float = 30.0) -> GridCache:
    """Train every grid config on the grid seeds (those not cached yet), then confirm."""
    torch.set_num_threads(1)
    cache.meta.setdefault("machine", machine())
    cache.meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    configs = task.configs()
    seeds = list(range(task.grid_seeds)) if seeds is None else list(seeds)
    todo = [(seed, c) for seed in seeds for c in configs
            if seed not in cache.runs.get(key_of(c), {})]
    log(f"{task.name}: {len(todo)} runs to do ({len(configs)} configs x seeds {seeds})")
    _run_all(task, cache, todo, log, save_every)
    confirm(task, cache, log=log, save_every=save_every)
    build_rungs(task, cache, log=log, save_every=save_every)
    return cache


def build_rungs(task: Task, cache: GridCache, *, log: Callable[[str], None] = print,
                save_every: float = 30.0) -> None:
    """Train every grid config on the grid seeds at each budgeted rung shorter than the
    task (autolr.budgeted.rung_epochs): what `pruner="budgeted"` replays."""
    todo = cache.missing_rungs()
    log(f"{task.name}: {len(todo)} budgeted-rung runs to do")
    started = last_save = time.perf_counter()
    for i, (epochs, seed, config) in enumerate(todo, 1):
        cache.rungs.setdefault(epochs, {}).setdefault(key_of(config), {})[seed] = train(
            task, config, seed, epochs)
        now = time.perf_counter()
        if now - last_save > save_every or i == len(todo):
            cache.save()
            last_save = now
            log(f"  {i}/{len(todo)} rung runs, {now - started:.0f} s")


def confirm(task: Task, cache: GridCache, *, log: Callable[[str], None] = print,
            save_every: float = 30.0, max_rounds: int = 6) -> None:
    """Re-run the configs competing for the oracle on extra seeds (see the module doc)."""
    extra = range(task.grid_seeds, task.grid_seeds + task.confirm_seeds)
    by_key = {key_of(c): c for c in task.configs()}
    for _ in range(max_rounds):
        means = cache.means()
        ranked = sorted(means, key=means.get)
        # before any config is confirmed, the leader is unknown: confirm the top TOP first
        leader = cache.oracle()[1] if any(map(cache.confirmed, ranked)) else -math.inf
        wanted = [k for i, k in enumerate(ranked)
                  if not cache.confirmed(k) and (i < TOP or means[k] < leader)]
        if not wanted:
            break
        todo = [(s, by_key[k]) for k in wanted for s in extra
                if s not in cache.runs.get(k, {})]
        log(f"{task.name}: confirming {len(wanted)} configs on seeds {list(extra)}")
        _run_all(task, cache, todo, log, save_every)
    key, value = cache.oracle()
    cache.meta["oracle"] = {"key": key, "mean": value, "seeds": len(cache.runs[key])}
    cache.save()


def runs_of(task: Task, cache: GridCache, config: TrialConfig) -> dict[int, Run]:
    """The cached runs of `config` by seed: the grid's own for a grid point, else `extra`
    (trained on the grid seeds now when missing)."""
    evaluate(task, cache, config)
    key = key_of(config)
    if key in cache.runs and config == _on_grid(task, config):
        return cache.runs[key]
    return cache.extra[_config_id(config)]


def evaluate(task: Task, cache: GridCache, config: TrialConfig) -> float:
    """The seed mean (grid seeds) of any config: the grid's own runs when `config` is a grid
    point, else runs cached under `extra` (trained now when missing)."""
    key = key_of(config)
    if key in cache.runs and config == _on_grid(task, config):
        return cache.mean(key)
    found = cache.extra_mean(config)
    if found is None:
        runs = cache.extra.setdefault(_config_id(config), {})
        for seed in range(task.grid_seeds):
            if seed not in runs:
                runs[seed] = train(task, config, seed)
        cache.save()
        found = cache.extra_mean(config)
    return found


def rerun_diverged(task: Task, cache: GridCache, *, log: Callable[[str], None] = print,
                   save_every: float = 30.0) -> int:
    """Train again every cached run that diverged (grid, off-grid and budgeted rungs): when
    autolr's divergence rule is relaxed, a run it stopped may now run to the end, and one
    it let finish still finishes the same, so only the diverged runs can change. Returns
    how many runs were trained."""
    torch.set_num_threads(1)
    on_grid = {key_of(c): c for c in task.configs()}
    todo: list[tuple[dict[int, Run], int, TrialConfig, int | None]] = []
    for key, runs in cache.runs.items():
        todo += [(runs, s, on_grid[key], None) for s, r in runs.items() if r.state == "diverged"]
    for key, runs in cache.extra.items():
        config = TrialConfig.from_dict(json.loads(key.removesuffix("@fresh")))
        todo += [(runs, s, config, None) for s, r in runs.items() if r.state == "diverged"]
    for epochs, by_key in cache.rungs.items():
        for key, runs in by_key.items():
            todo += [(runs, s, on_grid[key], epochs) for s, r in runs.items()
                     if r.state == "diverged"]
    started = last_save = time.perf_counter()
    for i, (runs, seed, config, epochs) in enumerate(todo, 1):
        runs[seed] = train(task, config, seed, epochs)
        now = time.perf_counter()
        if now - last_save > save_every or i == len(todo):
            cache.save()
            last_save = now
            log(f"  {i}/{len(todo)} diverged runs trained again, {now - started:.0f} s")
    return len(todo)


FRESH_SEEDS = (1000, 1001, 1002)  # seeds no sweep and no grid run ever trains with


def fresh_mean(task: Task, cache: GridCache, config: TrialConfig) -> float:
    """The config's mean final validation loss over `FRESH_SEEDS` (trained once, cached
    under `extra`): what a user retraining the recommended config will get."""
    runs = cache.extra.setdefault(_config_id(config) + "@fresh", {})
    missing = [seed for seed in FRESH_SEEDS if seed not in runs]
    for seed in missing:
        runs[seed] = train(task, config, seed)
    if missing:
        cache.save()
    return statistics.fmean(runs[seed].final(cache.chance) for seed in FRESH_SEEDS)


def machine() -> str:
    return (f"{platform.node()} {platform.machine()}, {platform.processor() or 'cpu'}, "
            f"python {platform.python_version()}, torch {torch.__version__}, 1 thread")


def _on_grid(task: Task, config: TrialConfig) -> TrialConfig | None:
    for candidate in task.configs():
        if key_of(candidate) == key_of(config):
            return candidate
    return None


def _config_id(config: TrialConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def _run_all(task: Task, cache: GridCache, todo: list[tuple[int, TrialConfig]],
             log: Callable[[str], None], save_every: float) -> None:
    started = last_save = time.perf_counter()
    for i, (seed, config) in enumerate(todo, 1):
        cache.runs.setdefault(key_of(config), {})[seed] = train(task, config, seed)
        now = time.perf_counter()
        if now - last_save > save_every or i == len(todo):
            cache.save()
            last_save = now
            log(f"  {i}/{len(todo)} runs, {now - started:.0f} s")
