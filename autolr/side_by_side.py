"""Train one config on several seeds at once, each in a forked process.

The robust pick trains its leader on extra seeds after the sweep, in the process that ran
it. With `n_jobs > 1` the sweep was given that many cores, and one after the other those
runs would use one of them. Forked, a child starts in milliseconds with the parent's
model factory, data and loop as they are; only the outcome travels back (pickled).

Not after CUDA was initialised in the parent: a forked child cannot use it
(`can_fork` says so, and the runs then train one after the other).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import traceback
from collections.abc import Callable, Sequence

from autolr.errors import AutoLRError, SweepStopped
from autolr.space import TrialConfig
from autolr.storage import die_with, start_child
from autolr.training import TrialOutcome


def can_fork() -> bool:
    """Whether training may run in forked children (False once CUDA is initialised)."""
    import torch

    return not torch.cuda.is_initialized()


def train_side_by_side(run: Callable[..., TrialOutcome], config: TrialConfig,
                       offsets: Sequence[int], processes: int,
                       threads: int = 1) -> list[TrialOutcome]:
    """`run(config, None, seed_offset=k)` for each of `offsets`, up to `processes` at a time,
    each child with torch on `threads` threads; the outcomes in the order of `offsets`.
    A run that raises (or a child that dies) raises AutoLRError with what happened; on
    Ctrl-C the children are stopped before KeyboardInterrupt goes on."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, but got {processes}.")
    outcomes: list[TrialOutcome] = []
    for start in range(0, len(offsets), processes):
        outcomes.extend(_wave(run, config, offsets[start:start + processes], threads))
    return outcomes


def _wave(run: Callable[..., TrialOutcome], config: TrialConfig, offsets: Sequence[int],
          threads: int) -> list[TrialOutcome]:
    context = multiprocessing.get_context("fork")
    children = []
    try:
        for offset in offsets:
            receiver, sender = context.Pipe(duplex=False)
            child = context.Process(target=_train, daemon=True,
                                    args=(run, config, offset, threads, sender, os.getpid()))
            children.append((offset, child, receiver))
            start_child(child)
            sender.close()  # the child holds its own end: EOF here once it is gone
        return [_receive(offset, child, receiver) for offset, child, receiver in children]
    finally:
        for _, child, receiver in children:
            if child.is_alive():  # only on an error or Ctrl-C: the others are not needed
                child.terminate()
            if child.pid is not None:  # a stop can come before it started
                child.join()
            receiver.close()


def _receive(offset: int, child: multiprocessing.process.BaseProcess,
             receiver: multiprocessing.connection.Connection) -> TrialOutcome:
    try:
        kind, payload = receiver.recv()
    except EOFError:
        child.join()
        raise SweepStopped(f"the run on seed offset {offset} died in its process (exit code "
                           f"{child.exitcode}), before it finished.") from None
    if kind == "interrupted":  # Ctrl-C reached the child first: the sweep stops as usual
        raise KeyboardInterrupt
    if kind == "error":
        raise AutoLRError(f"the run on seed offset {offset} failed:\n{payload}")
    return payload


def _train(run: Callable[..., TrialOutcome], config: TrialConfig, offset: int, threads: int,
           sender: multiprocessing.connection.Connection, parent: int) -> None:
    import torch

    code = 0
    try:
        die_with(parent)
        torch.set_num_threads(threads)
        outcome = run(config, None, seed_offset=offset)
        sender.send(("outcome", dataclasses.replace(outcome, model=None)))
    except BaseException as error:  # the parent is told, and raises it in its turn
        code = 1
        kind = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
        with contextlib.suppress(BrokenPipeError, OSError):  # the parent may be gone
            sender.send((kind, traceback.format_exc()))
    finally:
        sender.close()
        # not the parent's exit handlers (its storage, its progress bar): they are its own
        os._exit(code)
