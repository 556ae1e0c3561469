"""The robust pick's extra seeds: side by side (n_jobs=2) or one after the other?

At the end of a sweep the robust pick trains its leader on 2 more seeds. With `n_jobs=2`
autolr forks one process per seed (`autolr.side_by_side`) instead of training them one
after the other in the sweep's process. Two contenders train the same config (a task's
model, one-cycle at a mid-range learning rate) on the same 2 seeds:

- after:        `RobustPick.seed_runs`, the runs one after the other in this process
                (n_jobs=1, and what n_jobs=2 did before);
- side by side: `ConfirmLeader(processes=2).seed_runs`, each run in a forked process.

Both use one torch thread per run, as a sweep does, after one untimed run of the config
(torch builds its optimizer stack once per process). They run interleaved, order rotated
each round; the table quotes the median seconds of each and the median per-round ratio
(after / side by side) with its interquartile range in brackets. The two give the same
values to the last digit (checked every round). "cores used" is CPU seconds (this process
and its children) over wall seconds: below about 1.9 for side by side, another program
took a core and the ratio understates an idle machine.

    python -m benchmarks.pick_side_by_side                   # about 2 minutes
    python -m benchmarks.pick_side_by_side --task digits --rounds 3
    python -m benchmarks.pick_side_by_side --quick           # a smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable

from autolr.backends.optuna import ConfirmLeader, limit_torch_threads
from autolr.pick import RobustPick
from autolr.robust import Confirmation
from autolr.space import TrialConfig
from autolr.sweep import Sweep
from autolr.training import train_trial
from benchmarks import tasks

OFFSETS = range(1, 3)  # the pick's 2 extra seeds (robust.DEFAULT_EXTRA_SEEDS)


def make_sweep(task: tasks.Task, epochs: int) -> Sweep:
    data, loss_fn, metric = task.data, task.loss_fn, task.metric

    def run(config: TrialConfig, reporter, seed_offset: int = 0):
        return train_trial(config, task.model_fn, data, epochs=epochs, loss_fn=loss_fn,
                           metric=metric, reporter=reporter, seed=seed_offset)

    return Sweep(space=task.space(), run=run, n_train=data.n_train, n_evals=epochs,
                 n_trials=1, direction="minimize", metric="val_loss", epochs=epochs,
                 confirm_seeds=len(OFFSETS))


def timed(seed_runs: Callable[[TrialConfig, range], Confirmation],
          config: TrialConfig) -> tuple[float, float, Confirmation]:
    """(wall seconds, CPU seconds of this process and its children, the runs)."""
    def cpu() -> float:
        own, children = (resource.getrusage(who) for who in
                         (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    cpu_before, started = cpu(), time.perf_counter()
    runs = seed_runs(config, OFFSETS)
    return time.perf_counter() - started, cpu() - cpu_before, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d", choices=[t for t in tasks.TASKS])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="per run (default: the task's)")
    parser.add_argument("--quick", action="store_true", help="tiny task, 2 rounds")
    args = parser.parse_args(argv)
    task = tasks.get("tiny" if args.quick else args.task)
    rounds = 2 if args.quick else args.rounds
    sweep = make_sweep(task, args.epochs or task.epochs)
    lr = (min(task.grid.lrs) * max(task.grid.lrs)) ** 0.5
    config = TrialConfig(lr, "one_cycle", batch_size=min(task.grid.batch_sizes),
                         optimizer=task.optimizer)
    contenders = {"after": RobustPick(sweep).seed_runs,
                  "side by side": ConfirmLeader(sweep, processes=2).seed_runs}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    cores: dict[str, list[float]] = {name: [] for name in contenders}
    ratios = []
    print(f"{task.name}: {config.schedule}, lr {lr:.3g}, batch {config.batch_size}, "
          f"{sweep.epochs} epochs, seeds {list(OFFSETS)}; {os.cpu_count()} CPUs, load "
          f"average {os.getloadavg()[0]:.2f}")
    with limit_torch_threads(sweep.torch_threads):
        # untimed: torch builds its optimizer stack once per process (about a second),
        # which the forked children then inherit ready
        sweep.run(config, None)
        for round_ in range(rounds):
            order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
            values = {}
            for name in order:
                wall, cpu, runs = timed(contenders[name], config)
                seconds[name].append(wall)
                cores[name].append(cpu / wall)
                values[name] = runs.values
            if values["after"] != values["side by side"]:
                raise SystemExit(f"round {round_}: the values differ: {values}")
            ratios.append(seconds["after"][-1] / seconds["side by side"][-1])
            print(f"  round {round_}: after {seconds['after'][-1]:.2f} s, side by side "
                  f"{seconds['side by side'][-1]:.2f} s, ratio {ratios[-1]:.2f}")
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 2 else [min(ratios), 0,
                                                                            max(ratios)]
    print("\n| contender | median s | cores used |\n| --- | --- | --- |")
    for name in contenders:
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | "
              f"{statistics.median(cores[name]):.2f} |")
    print(f"\nafter / side by side: {statistics.median(ratios):.2f} "
          f"[{quartiles[0]:.2f}-{quartiles[2]:.2f}] over {rounds} rounds; load average "
          f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
