"""The LR-finder baselines' range test: autolr's (`autolr.range_test`) on a benchmark task.

Started at 1e-6 (not the finders' 1e-7): every benchmark grid starts at 1e-5 or above, and
100 steps over 7 decades resolve the curve a little finer.
"""

from __future__ import annotations

from autolr.range_test import RangeTest
from autolr.range_test import range_test as _range_test
from benchmarks.tasks import Task


def range_test(task: Task, *, batch_size: int = 32, seed: int = 0, start: float = 1e-6,
               end: float = 10.0, steps: int = 100) -> RangeTest:
    return _range_test(task.model_fn, task.data, task.loss_fn, optimizer=task.optimizer,
                       batch_size=batch_size, seed=seed, start=start, end=end, steps=steps)
