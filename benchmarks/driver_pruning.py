"""What autolr's schedule-aware pruning costs the Ray driver, beside the same decisions in
an Optuna study.

On Ray, every report of every trial reaches the driver, where `SweepPruning` (the
default pruner, checked halving, behind Tune's scheduler API) decides whether the trial
goes on. This replays the same synthetic sweep (random configs and curves, one trial at a
time) through both: `SweepPruning.report` and, in an in-memory Optuna study,
`trial.report` + `trial.should_prune` (what the Optuna backend runs in-process). Both
make the same decisions (`tests/test_ray_pruner.py`); this times them per report,
interleaved with the order rotated every round, and quotes medians.

    python -m benchmarks.driver_pruning            # 40, 200 and 1000 trials
    python -m benchmarks.driver_pruning --quick    # 40 trials, 1 round
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import optuna

from autolr.backends.ray_pruner import SweepPruning
from autolr.checked_halving import CheckedHalvingPruner
from autolr.space import TrialConfig

N_EVALS = 20
SCHEDULES = ("constant", "cosine", "one_cycle", "step", "linear")


def sweep(n_trials: int, seed: int) -> list[tuple[dict, list[float]]]:
    """Random configs and falling curves: (params, values) per trial."""
    rng = random.Random(seed)
    trials = []
    for _ in range(n_trials):
        params = TrialConfig(10 ** rng.uniform(-4, -1), rng.choice(SCHEDULES)).to_dict()
        speed = rng.uniform(0.05, 0.3)
        trials.append((params, [1.0 / (1 + step * speed) for step in range(N_EVALS)]))
    return trials


def on_the_driver(trials: list[tuple[dict, list[float]]]) -> tuple[float, int]:
    """Seconds spent deciding, and reports decided, as the Ray driver does."""
    pruning, spent, reports = SweepPruning(CheckedHalvingPruner(N_EVALS), "min"), 0.0, 0
    for number, (params, values) in enumerate(trials):
        for step in range(N_EVALS):
            state = "running" if step < N_EVALS - 1 else "complete"
            started = time.perf_counter()
            stop = pruning.report({"number": number, "params": params,
                                   "values": values[:step + 1], "state": state})
            spent, reports = spent + time.perf_counter() - started, reports + 1
            if stop:
                pruning.stopped(number)
                break
    return spent, reports


def in_an_optuna_study(trials: list[tuple[dict, list[float]]]) -> tuple[float, int]:
    """The same, as the Optuna backend's objective reports and asks."""
    study = optuna.create_study(pruner=CheckedHalvingPruner(N_EVALS))
    spent, reports = 0.0, 0
    for params, values in trials:
        trial = study.ask()
        trial.set_user_attr("config", params)
        for step, value in enumerate(values):
            started = time.perf_counter()
            trial.report(value, step)
            stop = step < N_EVALS - 1 and trial.should_prune()
            spent, reports = spent + time.perf_counter() - started, reports + 1
            if stop:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, values[-1])
    return spent, reports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 trials, 1 round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes, rounds = ((40,), 1) if args.quick else ((40, 200, 1000), args.rounds)
    contenders: dict[str, Callable] = {"driver": on_the_driver, "optuna": in_an_optuna_study}
    print("| trials | reports | driver ms/report | Optuna ms/report | driver / Optuna |")
    print("|---|---|---|---|---|")
    for size in sizes:
        trials, per_report = sweep(size, seed=size), {name: [] for name in contenders}
        ratios = []
        for round_ in range(rounds):
            order = list(contenders)[round_ % 2:] + list(contenders)[:round_ % 2]
            timed = {name: contenders[name](trials) for name in order}
            for name, (spent, reports) in timed.items():
                per_report[name].append(1e3 * spent / reports)
            ratios.append(per_report["driver"][-1] / per_report["optuna"][-1])
        reports = on_the_driver(trials)[1]
        print(f"| {size} | {reports} | {statistics.median(per_report['driver']):.3f} | "
              f"{statistics.median(per_report['optuna']):.3f} | "
              f"{statistics.median(ratios):.2f} |")


if __name__ == "__main__":
    main()
