"""Parallel sweeps: worker processes sharing one storage, or threads in one process?

The same sweep runs three ways (plus a ceiling), each in a fresh Python process (so
that no contender inherits another's threads, imports or storage), timed from the call
to its return:

- serial:     `autolr.tune(..., n_jobs=1)`: one process, torch on 1 thread (autolr's
              default `torch_threads=1`); the search alone, as in every contender
              (`confirm_seeds=0`, `range_test=False`: the robust pick's extra seeds and
              the range test run after the search, and are measured by
              `benchmarks.pick_side_by_side`);
- processes:  `autolr.tune(..., n_jobs=2)`: 2 forked workers on one journal-file storage,
              each with torch on 1 thread;
- threads:    plain Optuna `study.optimize(objective, n_jobs=2)` (2 threads, in-memory
              storage, torch on 1 thread) whose objective is built from autolr's pieces:
              `SearchSpace.sample`, `train_trial`, autolr's pruner and TPE sampler;
- ceiling:    (fixed space only) the same training without Optuna or storage: 2 forked
              processes each running `train_trial` on half the trials: the best any 2-way
              parallel sweep can reach on this machine (two busy cores share caches,
              memory and clocks, so it is below 2.0);
- serial/2t:  (only with --serial-2t) `autolr.tune(..., n_jobs=1, torch_threads=2)`:
              both cores used inside each step instead of across trials.

Before timing, each process builds one throwaway optimizer: torch imports its compiler
stack (about a second) the first time any optimizer is built, once per process, which
every contender would otherwise pay once (the processes contender in each worker, at the
same time). The table quotes the median seconds of each over the rounds (run
interleaved, order rotated) and the median per-round speedup over serial, with the
interquartile range in brackets. "cores used" is CPU seconds over wall seconds of each
contender, in column order: the parallel contenders reach about 2.0 only when both cores
are free, so a lower value means another program took a core and the speedups do not
show what an idle machine would give. "steps" is the total optimizer steps of a sweep
(per contender, in column order, when they differ);
on the default 'fixed' space (batch 32, lr 1e-4..3e-3, no stall pruning) every trial runs
all its epochs, so the contenders do the same work. "worker balance" is, for processes,
the training seconds of the busiest worker over the workers' mean (1.00: even; each
worker gets a fixed share of the trials, so uneven trials leave one worker idle).
`--space default` runs autolr's default space instead, where batch sizes and pruning
differ between trials and between contenders.

A last table shows what torch's intra-op threads (1 vs 2) do for one process training
one model, in-process, interleaved. Torch threads spin-wait on each other: when another
program is using a core, 2 threads on 2 cores are many times slower than 1.

    python -m benchmarks.parallel            # about 3 minutes on an idle 2-core machine
    python -m benchmarks.parallel --quick    # a smoke run, in-process
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks import (
    CNN1d,
    digits,
    digits_arrays,
    interleaved,
    mlp,
    mnist1d,
    mnist1d_arrays,
    ratio_text,
    table,
    timed,
)

SEED = 0
CONTENDERS = ("serial", "processes", "threads", "ceiling", "serial/2t")
BASE = "serial"
#: every trial does the same work: one batch size, an lr range that never diverges, and
#: a pruner that stops only non-finite trials (no stall rule)
FIXED_SPACE = {"lr": (1e-4, 3e-3), "batch_sizes": (32,)}


@dataclass(frozen=True)
class Workload:
    """A model and a data set, swept with `n_trials` trials of `epochs` epochs."""

    key: str
    label: str
    arrays: Callable[[], tuple[np.ndarray, np.ndarray]]
    model: Callable[[], nn.Module]
    n_trials: int
    epochs: int


WORKLOADS = {
    "digits": Workload("digits", "digits MLP", digits_arrays, mlp, 16, 5),
    "mnist1d": Workload("mnist1d", "MNIST-1D CNN", mnist1d_arrays, CNN1d, 8, 3),
}


def sized(workload: Workload, n_trials: int | None, epochs: int | None) -> Workload:
    """`workload` with another number of trials or epochs, when given."""
    return dataclasses.replace(workload, n_trials=n_trials or workload.n_trials,
                               epochs=epochs or workload.epochs)


# ---------------------------------------------------------------- one sweep (child side)

def sweep_space(space: str) -> Any:
    return FIXED_SPACE if space == "fixed" else space


def sweep_pruner(space: str) -> Any:
    from autolr.pruning import AutoLRPruner

    return AutoLRPruner(None, patience=None) if space == "fixed" else "none"


def run_autolr(model: nn.Module, arrays: tuple, workload: Workload, space: str,
               n_jobs: int, torch_threads: int) -> dict[str, Any]:
    """`autolr.tune`; with n_jobs > 1 on a journal file in a folder removed afterwards."""
    import autolr

    with tempfile.TemporaryDirectory(prefix="autolr-bench-") as folder:
        storage = str(Path(folder) / "sweep.log") if n_jobs > 1 else None
        result = autolr.tune(model, arrays, space=sweep_space(space),
                             n_trials=workload.n_trials, epochs=workload.epochs,
                             progress=False, pruner=sweep_pruner(space), seed=SEED,
                             n_jobs=n_jobs, storage=storage, torch_threads=torch_threads,
                             # the search alone: the robust pick's extra seeds and the
                             # range test are work the threads and ceiling do not do
                             confirm_seeds=0, range_test=False)
        balance = worker_balance(storage) if storage else None
    return {"trials": len(result.records), "balance": balance,
            "steps": sum(record.steps_run for record in result.records),
            # work beyond the trials: none, or the contenders would not compare
            "extra_epochs": sum(record.extra_epochs for record in result.records)
            + (result.range_test is not None)}


def worker_balance(storage: str) -> float | None:
    """Training seconds of the busiest worker over the mean of the workers (1.0: even),
    read from the trials' owner pid and run seconds that autolr stores."""
    import optuna

    from autolr.storage import open_storage

    opened = open_storage(storage)
    study = optuna.load_study(study_name=optuna.get_all_study_names(opened)[0], storage=opened)
    busy: dict[int, float] = {}
    for trial in study.trials:
        owner, run = trial.user_attrs.get("owner"), trial.user_attrs.get("run")
        if owner is None or run is None:
            return None  # autolr stores something else now: no balance to show
        busy[owner["pid"]] = busy.get(owner["pid"], 0.0) + run["seconds"]
    return max(busy.values()) / statistics.mean(busy.values()) if busy else None


def run_ceiling(model: nn.Module, arrays: tuple, workload: Workload) -> dict[str, Any]:
    """The same training without Optuna: 2 forked processes, each training its half of
    the trials with `train_trial` (autolr's baseline config, torch on 1 thread). On the
    fixed space this is the same work as a sweep: the best any 2-way sweep could do."""
    import multiprocessing

    from autolr.data import coerce_data

    data = coerce_data(arrays, seed=SEED)
    template = copy.deepcopy(model)
    shares = [workload.n_trials // 2 + (i < workload.n_trials % 2) for i in range(2)]
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=train_share, args=(template, data, workload, share))
               for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    per_epoch = -(-data.n_train // 32)
    return {"trials": workload.n_trials, "balance": None,
            "steps": workload.n_trials * workload.epochs * per_epoch}


def train_share(template: nn.Module, data: Any, workload: Workload, n_trials: int) -> None:
    from autolr.metrics import METRICS
    from autolr.space import BASELINE
    from autolr.training import train_trial

    torch.set_num_threads(1)
    for _ in range(n_trials):
        train_trial(BASELINE, lambda: copy.deepcopy(template), data, epochs=workload.epochs,
                    loss_fn=nn.CrossEntropyLoss(), metric=METRICS["val_loss"], seed=SEED)


def run_threads(model: nn.Module, arrays: tuple, workload: Workload,
                space: str) -> dict[str, Any]:
    """Two Optuna threads in one process, torch on 1 thread, training with autolr's loop."""
    import optuna

    from autolr.backends.optuna import OptunaReporter, make_pruner, make_sampler
    from autolr.data import coerce_data
    from autolr.metrics import METRICS
    from autolr.space import BASELINE, load_space
    from autolr.training import COMPLETE, train_trial

    torch.set_num_threads(1)
    data = coerce_data(arrays, seed=SEED)
    template = copy.deepcopy(model)
    search = load_space(sweep_space(space))
    pruner = make_pruner(sweep_pruner(space), workload.epochs)
    loss_fn = nn.CrossEntropyLoss()
    steps: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        config = search.sample(trial, data.n_train)
        outcome = train_trial(config, lambda: copy.deepcopy(template), data,
                              epochs=workload.epochs, loss_fn=loss_fn,
                              metric=METRICS["val_loss"], seed=SEED,
                              reporter=OptunaReporter(trial, pruner))
        steps.append(outcome.steps_run)
        if outcome.state == COMPLETE:
            return outcome.values[-1]
        raise optuna.TrialPruned(outcome.reason)

    baseline = search.params_for(BASELINE, data.n_train)
    study = optuna.create_study(sampler=make_sampler(search, data.n_train, SEED,
                                                     baseline=baseline, n_jobs=2),
                                pruner=pruner)
    study.optimize(objective, n_trials=workload.n_trials, n_jobs=2, catch=(Exception,))
    return {"trials": len(steps), "steps": sum(steps)}


def child(contender: str, workload: Workload, space: str) -> dict[str, Any]:
    """Run one sweep in this (fresh) process; return its seconds and work done."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    arrays = workload.arrays()
    torch.manual_seed(SEED)  # the same initial weights in every process
    model = workload.model()
    torch.optim.AdamW(nn.Linear(1, 1).parameters())  # torch's one-off lazy imports
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    if contender == "threads":
        work = run_threads(model, arrays, workload, space)
    elif contender == "ceiling":
        work = run_ceiling(model, arrays, workload)
    else:
        work = run_autolr(model, arrays, workload, space,
                          n_jobs=2 if contender == "processes" else 1,
                          torch_threads=2 if contender == "serial/2t" else 1)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cores": (cpu_seconds() - cpu_before) / seconds, **work}


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ------------------------------------------------------------- the comparison (parent side)

def spawn(contender: str, workload: Workload, space: str, work: list[dict],
          fresh: bool = True) -> float:
    """Run one sweep in a fresh interpreter (or in this one when not `fresh`); keep its
    work record; return its seconds."""
    if not fresh:
        work.append(child(contender, workload, space))
        return work[-1]["seconds"]
    command = [sys.executable, "-m", "benchmarks.parallel", "--child", contender,
               "--workload", workload.key, "--trials", str(workload.n_trials),
               "--epochs", str(workload.epochs), "--space", space]
    done = subprocess.run(command, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} on {workload.label} failed:\n{done.stderr}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    work.append(record)
    return record["seconds"]


def compare_sweeps(workload: Workload, space: str, rounds: int, fresh: bool,
                   names: tuple[str, ...]) -> list[str]:
    """One table row: median seconds of each contender and speedups over serial."""
    work: dict[str, list[dict]] = {name: [] for name in names}

    def contender(name: str) -> Callable[[], float]:
        return lambda: spawn(name, workload, space, work[name], fresh)

    stats = interleaved({name: contender(name) for name in names}, rounds,
                        ratios=[(BASE, name) for name in names[1:]], warmup=False)
    steps = sorted({record["steps"] for records in work.values() for record in records})
    row = [f"{workload.label}, {workload.n_trials}x{workload.epochs} ep, {space} space"]
    row += [f"{stats.seconds[name]:.2f}" for name in names]
    row += [ratio_text(stats.ratios[BASE, name]) for name in names[1:]]
    row.append(str(steps[0]) if len(steps) == 1 else " ".join(  # per contender, in order
        f"{statistics.median(r['steps'] for r in work[name]):.0f}" for name in names))
    row.append(" ".join(f"{statistics.median(r['cores'] for r in work[name]):.2f}"
                        for name in names))
    balances = [r["balance"] for r in work.get("processes", []) if r.get("balance")]
    row.append(f"{statistics.median(balances):.2f}" if balances else "-")
    return row


def torch_threads(quick: bool, rounds: int) -> list[list[str]]:
    """Seconds per epoch of one process training one model on 1 vs 2 torch threads."""
    from autolr.metrics import METRICS
    from autolr.space import TrialConfig
    from autolr.training import train_trial

    cases = [("digits MLP, batch 32", digits(), mlp, 32, 1 if quick else 3)]
    if not quick:
        on_mnist1d = mnist1d()
        cases += [("MNIST-1D CNN, batch 32", on_mnist1d, CNN1d, 32, 1),
                  ("MNIST-1D CNN, batch 128", on_mnist1d, CNN1d, 128, 1)]
    rows = []
    for label, data, factory, batch_size, epochs in cases:
        def run(threads: int, data: Any = data, factory: Any = factory,
                batch_size: int = batch_size, epochs: int = epochs) -> float:
            torch.set_num_threads(threads)
            return timed(lambda: train_trial(
                TrialConfig(lr=1e-3, batch_size=batch_size), factory, data, epochs=epochs,
                loss_fn=nn.CrossEntropyLoss(), metric=METRICS["val_loss"])) / epochs

        stats = interleaved({"1": lambda run=run: run(1), "2": lambda run=run: run(2)},
                            rounds, ratios=[("1", "2")])
        rows.append([label, f"{stats.seconds['1'] * 1000:.1f}",
                     f"{stats.seconds['2'] * 1000:.1f}", ratio_text(stats.ratios["1", "2"])])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run, in seconds")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 3; 1 with --quick)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append",
                        help="which sweep(s) to run (default: all)")
    parser.add_argument("--space", choices=("fixed", "default"), default="fixed",
                        help="'fixed': equal work per trial (default); 'default': autolr's")
    parser.add_argument("--trials", type=int, help="trials per sweep (default: per workload)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default: per workload)")
    parser.add_argument("--serial-2t", action="store_true",
                        help="also run n_jobs=1 with torch_threads=2 (slow on a busy machine)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every sweep in this process (faster to start, less fair: "
                             "the contenders share imports and thread pools); --quick does")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs = args.trials or 4, args.epochs or 1
    workloads = [sized(WORKLOADS[name], args.trials, args.epochs)
                 for name in args.workload or (["digits"] if args.quick else WORKLOADS)]
    if args.child:
        print(json.dumps(child(args.child, workloads[0], args.space)))
        return
    rounds = args.rounds or (1 if args.quick else 3)
    fresh = not (args.quick or args.in_process)
    load = os.getloadavg()[0]
    names = tuple(name for name in CONTENDERS
                  if (name != "serial/2t" or args.serial_2t)
                  and (name != "ceiling" or args.space == "fixed"))
    rows = [compare_sweeps(workload, args.space, rounds, fresh, names)
            for workload in workloads]
    where = "each sweep in a fresh process" if fresh else "all sweeps in this process"
    print(f"Parallel sweeps on {os.cpu_count()} cores (load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after): median seconds per sweep over {rounds} "
          f"interleaved round(s), {where}; speedup = {BASE} / contender per round, "
          f"median [interquartile range]\n")
    header = ["sweep", *(f"{name} s" for name in names),
              *(f"speedup {name}" for name in names[1:]), "steps", "cores used",
              "worker balance"]
    print(table(header, rows))
    print(f"\nTorch intra-op threads, one process, autolr's loop: median ms per epoch over "
          f"{rounds + 2} interleaved rounds\n")
    print(table(["case", "1 thread ms", "2 threads ms", "speedup 2 threads"],
                torch_threads(args.quick, rounds + 2)))


if __name__ == "__main__":
    main()
