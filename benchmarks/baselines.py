"""Contenders that do not search: the untuned default and LR-finder picks.

- default: AdamW, lr 1e-3, constant, batch 32, no warmup (what a user tries first);
  costs one full training (1 FTE).
- lr-finder: a range test (`lr_finder.range_test`, batch 32, the task's optimizer) then one
  full training at its steepest-slope or valley suggestion (fastai's valley), with a
  constant, a cosine or a one-cycle schedule (fastai's recipe: `lr_find`, then
  `fit_one_cycle` at the valley), batch 32, no warmup; costs the range test's epochs + 1
  FTE. A range test that cannot judge the suggestion (`RangeTest.why_not`) recommends
  nothing: its sweep is the range test alone (regret inf).

Scored as sweeps of one or two trials (`accounting.score`): before its cost is spent a
baseline has nothing to recommend (regret inf), and a pick that diverges on the seed it
trained with recommends nothing.
"""

from __future__ import annotations

import json

from autolr.space import BASELINE, TrialConfig
from benchmarks import accounting, lr_finder
from benchmarks.accounting import Event, SweepMetrics
from benchmarks.oracle import GridCache, evaluate, runs_of

SCHEDULES = ("constant", "cosine", "one_cycle")  # one_cycle: fastai's fit_one_cycle
NAMES = ("default", *(f"lr-finder {rule}+{schedule}" for rule in ("steepest", "valley")
                      for schedule in SCHEDULES))
DESCRIPTIONS = {
    "default": "AdamW 1e-3, constant, batch 32 (no search)",
    "lr-finder steepest+constant": "range test, steepest-slope lr, constant, batch 32",
    "lr-finder steepest+cosine": "range test, steepest-slope lr, cosine, batch 32",
    "lr-finder valley+constant": "range test, valley lr, constant, batch 32",
    "lr-finder valley+cosine": "range test, valley lr, cosine, batch 32",
    "lr-finder steepest+one_cycle": "range test, steepest-slope lr, one-cycle, batch 32",
    "lr-finder valley+one_cycle": "range test, valley lr, one-cycle (fastai's lr_find then "
                                  "fit_one_cycle), batch 32",
}


def config_id(config: TrialConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)


def score_baselines(cache: GridCache, seeds: range, log=print) -> dict[str, list[SweepMetrics]]:
    """Every baseline on every seed (the range test's seed, and the pick's training seed)."""
    task = cache.task
    oracle = cache.oracle()[1]
    configs: dict[str, TrialConfig] = {}

    def regret_of(key: str) -> float:
        return evaluate(task, cache, configs[key]) / oracle - 1.0

    def trained(config: TrialConfig, seed: int) -> Event:
        key = config_id(config)
        configs[key] = config
        run = runs_of(task, cache, config)[seed % task.grid_seeds]  # trained when missing
        return Event(key, run.state, run.epochs, run.seconds,
                     run.values[-1] if run.state == "complete" else None)

    results: dict[str, list[SweepMetrics]] = {name: [] for name in NAMES}
    for seed in seeds:
        default = TrialConfig(**{**BASELINE.to_dict(), "schedule_params": {}})
        results["default"].append(accounting.score([trained(default, seed)], task.epochs,
                                                   regret_of, max_budget=20.0))
        test = lr_finder.range_test(task, seed=seed)
        cost = Event("range-test", "range_test", test.epochs,
                     test.seconds)
        steepest, valley = test.steepest(), test.valley()
        for rule, lr in (("steepest", steepest), ("valley", valley)):
            for schedule in SCHEDULES:
                events = [cost]
                if lr is not None:
                    config = TrialConfig(lr=float(f"{lr:.4g}"), schedule=schedule,
                                         batch_size=32, optimizer=task.optimizer)
                    events.append(trained(config, seed))
                results[f"lr-finder {rule}+{schedule}"].append(
                    accounting.score(events, task.epochs, regret_of, max_budget=20.0))
        log(f"  {task.name} baselines, seed {seed}: steepest {_lr(steepest)}, "
            f"valley {_lr(valley)}, range test {test.epochs:.2f} epochs")
    return results


def _lr(lr: float | None) -> str:
    return "none (not judged)" if lr is None else f"{lr:.3g}"
