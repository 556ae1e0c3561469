"""The robust pick (`autolr.pick`) on a Ray sweep: its records, and the log of its runs.

Tune's experiments hold the sweep's trials; the pick's extra runs (a leader's extra
seeds, the recommended config's held-out seed) are not Tune trials, so they are logged
beside the experiments, one JSON line per config as it finishes, and folded back into the
records Tune gives on every later call. Where the runs train (Ray tasks) and how the
step back runs (a Tune trial) come from `backends.ray`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autolr.pick import RobustPick, verdict, with_runs
from autolr.result import TrialRecord
from autolr.robust import Confirmation, judge_side_by_side
from autolr.space import TrialConfig
from autolr.sweep import Sweep
from autolr.training import TrialOutcome


class RayPick(RobustPick):
    """The robust pick on a Ray sweep's records. A config's extra runs are Ray tasks side
    by side (`run_many(config, offsets)`: their outcomes, in order), judged as if run one
    after the other and all counted in the compute (`robust.judge_side_by_side`). The
    runs of each config are appended to `log` (a JSON line each) as they finish, and the
    records read from Tune have the logged ones folded in, so that nothing is trained
    twice and nothing finished is lost. The step back is a Tune trial of the sweep
    (`train(params, from_number)`: its records; None: no step back)."""

    def __init__(self, sweep: Sweep, records: list[TrialRecord], log: Path,
                 run_many: Callable[[TrialConfig, list[int]], list[TrialOutcome]],
                 train: Callable[[dict[str, Any], int], list[TrialRecord]] | None = None,
                 ) -> None:
        super().__init__(sweep)
        self.log, self.run_many, self.train = log, run_many, train
        self.current = list(records)
        if log.exists():
            for line in log.read_text().splitlines():
                if line.strip():  # a line cut short by a kill is the run not logged
                    with contextlib.suppress(ValueError):
                        self._fold(json.loads(line))

    def may_step_back(self, where: Any) -> bool:
        return self.train is not None and all(r.steps_back_from is None
                                              for r in self.current)

    def train_again(self, where: Any, record: TrialRecord, params: dict[str, Any]) -> None:
        assert self.train is not None
        self.current = sorted([*self.current, *self.train(params, record.number)],
                              key=lambda r: r.number)

    def seed_runs(self, config: TrialConfig, offsets: range) -> Confirmation:
        return judge_side_by_side(config, offsets, self.run_many(config, list(offsets)))

    def records(self, where: Any) -> list[TrialRecord]:
        return list(self.current)

    def store(self, where: Any, record: TrialRecord, runs: Confirmation, field: str,
              diverged: str) -> None:
        state, reason = verdict(runs, diverged)
        entry = {"number": record.number, "field": field, "values": list(runs.values),
                 "epochs": runs.epochs_run, "seconds": runs.seconds, "state": state,
                 "reason": reason}
        cut = self.log.exists() and not self.log.read_bytes().endswith(b"\n")
        with open(self.log, "a", encoding="utf-8") as out:  # past a line a kill cut short
            out.write("\n" * cut + json.dumps(entry) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._fold(entry)

    def _fold(self, entry: dict) -> None:
        self.current = [with_runs(r, entry["field"], tuple(entry["values"]), entry["epochs"],
                                  entry["seconds"], entry["state"], entry["reason"])
                        if r.number == entry["number"] else r for r in self.current]
