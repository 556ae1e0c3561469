"""One backend-neutral table of trials, and the result a sweep hands back.

Every backend turns its trials into `TrialRecord` rows; `TuneResult`, the report and
the CLI read only those rows. Results are saved as JSON (never pickle): loading one
runs no code.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from autolr import schedules
from autolr.chance import learned_nothing
from autolr.cliff import Edges, divergence_edges, near_edge, run_setback, why_near
from autolr.errors import AutoLRError
from autolr.optimizers import OPTIMIZER_CODE, make_optimizer
from autolr.output_file import check_output_file, write_output_file
from autolr.range_edge import range_edge
from autolr.range_test import RangeTest
from autolr.space import TrialConfig
from autolr.sweep import CODE_MARK
from autolr.training import METRIC_ONLY

STATES = ("complete", "pruned", "diverged", "failed")
UNENDED = ("this sweep's last call has not reached its end (it was interrupted, or is still "
           "running): the trials it ran have not been through the robust pick, and its range "
           "test has not run. Run the same call or command again to finish it.")


def times(ratio: float, sign: str = "x") -> str:
    """A ratio as '0.35x', '4.2x' or '950x' (never '9.5e+02x'); the report's sign is '×'."""
    return f"{ratio:,.0f}{sign}" if ratio >= 10 else f"{ratio:.2g}{sign}"


def percent(fraction: float) -> str:
    """A fraction as '2.5%', '17.5%', '10%' (a warmup of 0.025 is not '2%')."""
    return f"{100 * fraction:.3g}%"


_FORMAT = "autolr.TuneResult/1"


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, whatever backend ran it."""

    number: int
    state: str  # one of STATES
    params: dict[str, Any] = field(default_factory=dict)  # TrialConfig.to_dict(); {} if unsampled
    reason: str | None = None  # why it was pruned / diverged, or the error of a failed trial
    values: tuple[float, ...] = ()  # the objective at each evaluation
    train_losses: tuple[float, ...] = ()
    val_losses: tuple[float, ...] = ()
    epochs_run: float = 0.0
    steps_run: int = 0
    seconds: float = 0.0
    is_baseline: bool = False  # the untuned default (AdamW 1e-3, constant, batch 32)
    node: str | None = None  # the host that ran it, where the backend knows
    # the robust pick (autolr.robust): final values on the sweep's seed and the extra
    # seeds a would-be best was re-trained on, and what those extra runs cost
    seed_values: tuple[float, ...] = ()
    extra_epochs: float = 0.0  # the extra seeds' and held-out seeds' runs
    extra_seconds: float = 0.0
    # the recommended config's values on seeds trained after it was chosen (robust.py)
    holdout_values: tuple[float, ...] = ()
    # budgeted rungs: the curves are of a run of rung_epochs epochs (rung_steps steps),
    # its whole schedule compressed; epochs_run/steps_run/seconds add up every rung
    rung_epochs: int | None = None
    rung_steps: int | None = None
    # the trial whose config this one trained again at a lower lr (robust.step_back)
    steps_back_from: int | None = None

    @property
    def final_value(self) -> float | None:
        """The trial's value: the seed mean where it was re-trained on extra seeds,
        else the last evaluation."""
        if self.seed_values and self.state == "complete":
            return statistics.fmean(self.seed_values)
        return self.values[-1] if self.values else None

    @property
    def seed_std(self) -> float | None:
        """The standard deviation of the final value over seeds, the held-out ones too
        (None with one seed)."""
        seeds = (*self.seed_values, *self.holdout_values)
        return statistics.stdev(seeds) if len(seeds) > 1 else None

    @property
    def expected_value(self) -> float | None:
        """What retraining this config gives: its mean on the held-out seeds where it has
        them (seeds that played no part in choosing it), else `final_value`."""
        if self.holdout_values and self.state == "complete":
            return statistics.fmean(self.holdout_values)
        return self.final_value

    def best_value(self, direction: str) -> float | None:
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return None
        return min(finite) if direction == "minimize" else max(finite)

    @property
    def config(self) -> TrialConfig:
        return TrialConfig.from_dict(self.params)

    @cached_property  # the pick asks for it of every record, more than once
    def setback(self) -> str | None:
        """How its run nearly diverged (`cliff.run_setback`), or None."""
        return run_setback(self.params, self.val_losses) if self.params else None


def pick_candidates(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete trials with a finite value that the robust pick may re-train or
    recommend: those not within `cliff.EDGE_MARGIN` of a learning rate that diverged (on
    any seed, in any schedule) with their optimizer at their batch size or a larger one
    (`cliff.edge_of`) and whose run had no `cliff.setback`; else those away from the
    edge; else all."""
    complete, edges = complete_records(records), edges_of(records)
    safe = [r for r in complete if not near_edge(r.params, edges)]
    return [r for r in safe if r.setback is None] or safe or complete


def complete_records(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete trials with a finite value."""
    return [r for r in records if r.state == "complete" and r.final_value is not None
            and math.isfinite(r.final_value)]


def edges_of(records: Sequence[TrialRecord]) -> Edges:
    """The cliff's edges (`cliff.divergence_edges`) from the records that diverged."""
    return divergence_edges(r.params for r in records if r.state == "diverged")


def _why_passed(record: TrialRecord, best: TrialRecord, edges: Edges) -> str | None:
    """Why `pick_candidates` left `record` out where it kept `best`, or None."""
    near = near_edge(record.params, edges)
    if near and not near_edge(best.params, edges):
        return f"sits on the edge of divergence: {why_near(record.params, edges)}"
    if not near and record.setback is not None and best.setback is None:
        return f"nearly diverged: {record.setback}"
    return None


class TuneResult:
    """What `autolr.tune` returns: the best config, every trial, and ways to use them.

    >>> import autolr, torch
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 10))
    >>> result = autolr.tune(model, (X / 16, y), n_trials=2, epochs=1, progress=False)
    >>> sorted(result.best_config)[:3]
    ['batch_size', 'lr', 'optimizer']
    """

    def __init__(self, records: Sequence[TrialRecord], *, metric: str = "val_loss",
                 direction: str = "minimize", epochs: int | None = None,
                 study_name: str | None = None, storage: str | None = None,
                 range_test: RangeTest | None = None, ended: bool | None = None,
                 cut_short: str | None = None,
                 own_schedules: dict[str, str] | None = None,
                 chance: dict[str, Any] | None = None,
                 lr_space: dict[str, Any] | None = None) -> None:
        self.records = sorted(records, key=lambda r: r.number)
        # the learning rates searched: the space's lr, lr_scaling and lr_reference_batch
        # (`range_edge`); None: not known
        self.lr_space = lr_space
        # what a model that learned nothing scores ({'value', 'prediction'}: `autolr.chance`);
        # None: not known (an older sweep, or a loss of one's own no constant fits)
        self.chance = chance
        # the sweep's schedules of one's own, name -> function (`Sweep.own_schedules`): a
        # built-in name may have been overwritten; None: not known (an older sweep)
        self.own_schedules = own_schedules
        # False: a stored sweep that has not reached its end (interrupted, or still
        # running): no robust pick or range test yet; None: not known (an older sweep)
        self.ended = ended
        # why the sweep ran fewer trials than asked ('the timeout (60 s) stopped it after 2
        # of its 20 trials'), or None
        self.cut_short = cut_short
        # the LR range test run after the sweep at the best config's batch size, if any
        self.range_test = range_test
        self.metric = metric
        self.direction = direction
        self.epochs = epochs
        self.study_name = study_name
        self.storage = storage

    # -- the best trial -------------------------------------------------------------
    @property
    def best_record(self) -> TrialRecord | None:
        """The complete trial with the best final value; diverged trials never qualify,
        nor, while others do, trials near a learning rate that diverged (`pick_candidates`).
        Once the robust pick has run, only configs it re-trained on several seeds do: a
        leader still on one seed when the pick's rounds ran out is most often a lucky
        draw (measured: told 0.093, got 0.127 on fresh seeds)."""
        candidates = pick_candidates(self.records)
        candidates = [r for r in candidates if r.seed_values] or candidates
        if not candidates:
            return None
        sign = 1.0 if self.direction == "minimize" else -1.0
        return min(candidates, key=lambda r: sign * r.final_value)

    def _require_best(self) -> TrialRecord:
        best = self.best_record
        if best is None:
            raise AutoLRError(self._no_best_message())
        return best

    def _no_best_message(self) -> str:
        counts = self.counts()
        message = (f"no trial completed ({counts['diverged']} diverged, {counts['pruned']} "
                   f"pruned, {counts['failed']} failed), so there is no best config.")
        diverged = [r.config.lr for r in self.records if r.state == "diverged" and r.params
                    and METRIC_ONLY not in (r.reason or "")]
        metric_only = [r for r in self.records if METRIC_ONLY in (r.reason or "")]
        if metric_only and len(metric_only) >= len(self.records) / 2:
            message += (f" The metric, not training, failed: {metric_only[0].reason} "
                        f"(trial {metric_only[0].number}); check it on your validation data.")
        elif diverged and counts["diverged"] >= len(self.records) / 2:
            low, high = f"{min(diverged) / 1e3:.0e}", f"{min(diverged) / 2:.0e}"
            message += (f" Training diverged down to lr={min(diverged):.3g}: search a lower "
                        f"learning-rate range, e.g. space={{'lr': ({low}, {high})}} (on the "
                        f"command line, a .toml space with lr = [{low}, {high}]).")
        if counts["failed"]:
            first = next(r for r in self.records if r.state == "failed")
            message += f" First failure (trial {first.number}): {first.reason}"
        return message

    @property
    def best_config(self) -> dict[str, Any]:
        """The best trial's config: lr, schedule, schedule_params, warmup_fraction,
        batch_size, optimizer, weight_decay. A copy: editing it changes nothing here."""
        return copy.deepcopy(dict(self._require_best().params))

    @property
    def best_value(self) -> float:
        """The best config's validation metric as a user retraining it will get it: with
        the robust pick, its value on a seed held out from choosing it (one run: expect it
        to move by about `best_std`, its spread over all its seeds). Without the pick
        (`confirm_seeds=0`, or a sweep too small for it) the best single run, which
        retraining most often does worse than; `summary()` says so."""
        return float(self._require_best().expected_value)

    @property
    def best_std(self) -> float | None:
        """The seed standard deviation of the best config (None if it ran on one seed)."""
        return self._require_best().seed_std

    @property
    def baseline(self) -> TrialRecord | None:
        return next((r for r in self.records if r.is_baseline), None)

    def counts(self) -> dict[str, int]:
        return {state: sum(r.state == state for r in self.records) for state in STATES}

    # -- using the best config ------------------------------------------------------
    def make_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """A plain torch optimizer for `model` with the best config's optimizer and lr."""
        config = self._require_best().config
        if not (isinstance(model, torch.nn.Module) and any(True for _ in model.parameters())):
            raise AutoLRError(f"make_optimizer needs the torch.nn.Module to train (with "
                              f"parameters), but got {type(model).__name__}.")
        return make_optimizer(config.optimizer, model.parameters(), config.lr,
                              config.weight_decay)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                       epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
        """The best schedule as a LambdaLR; call `.step()` after every optimizer step."""
        config = self._require_best().config
        self._check_schedule(config.schedule)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise AutoLRError(f"optimizer must be a torch.optim.Optimizer over your model's "
                              f"parameters (see code() for the one the sweep tuned), but got "
                              f"{type(optimizer).__name__}.")
        for name, value, hint in (("steps_per_epoch", steps_per_epoch, " (len(train_loader))"),
                                  ("epochs", epochs, "")):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise AutoLRError(f"{name} must be an integer >= 1{hint}, but got "
                                  f"{name}={value!r}.")
        total = int(steps_per_epoch) * int(epochs)
        return schedules.lambda_lr(optimizer, config.schedule, total,
                                   warmup_steps=config.warmup_steps(total),
                                   **config.schedule_params)

    def code(self) -> str:
        """The few lines of plain PyTorch that recreate the best optimizer and schedule:
        a built-in schedule's function is written out, so the lines run without autolr."""
        best = self._require_best()
        c = best.config
        self._check_schedule(c.schedule)
        keywords = ", **schedule_params" if c.schedule_params else ""
        setup = [f"# batch_size = {c.batch_size}; call scheduler.step() after every "
                 "optimizer.step()",
                 "optimizer = " + OPTIMIZER_CODE[c.optimizer].format(lr=c.lr,
                                                                      wd=c.weight_decay),
                 self._steps_line(best),
                 "total_steps = steps_per_epoch * epochs",
                 f"warmup_steps = min(round({c.warmup_fraction!r} * total_steps), "
                 "total_steps - 1)",
                 *([f"schedule_params = {_literal(c.schedule_params)}"] if keywords else [])]
        family = schedules.source(c.schedule)
        if family is None:  # a user's schedule: it must be registered where this runs
            return "\n".join(["import torch", "from autolr import schedules", "",
                              f"# {c.schedule!r} is your own schedule: register it first, "
                              f"schedules.register({c.schedule!r}, your_function)", *setup,
                              f"scheduler = schedules.lambda_lr(optimizer, {c.schedule!r}, "
                              f"total_steps, warmup_steps=warmup_steps{keywords})"])
        function = schedules.get(c.schedule).function.__name__
        # the same factor as schedules.multiplier: a linear warmup, then the whole family
        return "\n".join([
            *(["import math", ""] if "math." in family else []), "import torch", "", "",
            family.rstrip(), "", "",
            "def lr_factor(step: int) -> float:",
            f'    """The factor on lr at optimizer step `step`: {c.schedule} after a linear '
            'warmup."""',
            "    step = min(step, total_steps - 1)",
            "    decay_steps = total_steps - warmup_steps",
            "    if step < warmup_steps:",
            "        return (step + 1) / (warmup_steps + 1) * "
            f"{function}(0, decay_steps{keywords})",
            f"    return {function}(step - warmup_steps, decay_steps{keywords})",
            "", "", *setup,
            "scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)"])

    def _check_schedule(self, name: str) -> None:
        """Refuse to hand out schedule `name` when this session registers another function
        under it than the sweep trained with (a built-in name overwritten in one session and
        not in the other)."""
        problem = schedule_mismatch(name, self.own_schedules)
        if problem:
            raise AutoLRError(problem)
        edited = schedule_edited(name, self.own_schedules)
        if edited:
            warnings.warn(edited, stacklevel=3)

    def _steps_line(self, best: TrialRecord) -> str:
        """The snippet's steps_per_epoch and epochs: this sweep's, when known, to change
        for another training set (steps_per_epoch: len(train_loader))."""
        if best.epochs_run > 0 and best.steps_run > 0 and self.epochs:
            per_epoch = max(1, round(best.steps_run / best.epochs_run))
            return (f"steps_per_epoch, epochs = {per_epoch}, {self.epochs}  # as in this "
                    "sweep; with your own loader, steps_per_epoch = len(train_loader)")
        return (f"steps_per_epoch, epochs = len(train_loader), {self.epochs or 20}  # your "
                "loader's batches per epoch, and your epochs")

    # -- the table ------------------------------------------------------------------
    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: state, reason, params; final_value (the last evaluation, or
        the mean over the seeds it was re-trained on), best_value (the best evaluation of
        its curve), expected_value (what retraining it gives: its held-out seeds' mean where
        it has them, else final_value; the recommended trial's is `TuneResult.best_value`),
        curve, epochs and steps run, seconds, seed and held-out values."""
        rows = []
        for r in self.records:
            row = {"number": r.number, "state": r.state, "reason": r.reason}
            row.update({k: v for k, v in r.params.items() if k != "schedule_params"})
            row["schedule_params"] = r.params.get("schedule_params")
            row.update({"final_value": r.final_value, "best_value": r.best_value(self.direction),
                        "expected_value": r.expected_value,
                        "curve": list(r.values), "epochs_run": r.epochs_run,
                        "steps_run": r.steps_run, "seconds": r.seconds,
                        "seed_values": list(r.seed_values) or None,
                        "holdout_values": list(r.holdout_values) or None,
                        "is_baseline": r.is_baseline})
            rows.append(row)
        return pd.DataFrame(rows).set_index("number") if rows else pd.DataFrame()

    def summary(self) -> str:
        counts = self.counts()
        trials = f"{len(self.records)} trial{'' if len(self.records) == 1 else 's'}"
        head = (f"{trials}: {counts['complete']} complete, {counts['pruned']} "
                f"pruned, {counts['diverged']} diverged, {counts['failed']} failed")
        best = self.best_record
        cut = [self.cut_short[0].upper() + self.cut_short[1:] + "."] if self.cut_short else []
        if best is None:
            return "\n".join([head, self._no_best_message()]
                             + ([UNENDED] if self.ended is False else []) + cut)
        lines = [head, f"best {self.metric} = {best.expected_value:.5g}{seed_note(best)} "
                       f"(trial {best.number}): {_describe(best.params)}"]
        if self.ended is False:
            lines.append(UNENDED)
        lines += cut
        if self.ended is not False and not best.seed_values and not best.holdout_values:
            lines.append("that is " + UNCONFIRMED)
        if self.learned_nothing:
            lines.append(self.learned_nothing)
        elif self.range_edge:
            lines.append(self.range_edge)
        passed = self.passed_over()
        if passed is not None:
            lines.append(passed)
        baseline = self.baseline
        if baseline is not None and baseline.expected_value is not None:
            # measured as the report measures it: held out, where the pick re-ran it
            lines.append(f"default (AdamW 1e-3, constant, batch 32): {self.metric} = "
                         f"{baseline.expected_value:.5g}{seed_note(baseline)} "
                         f"({baseline.state})")
        suggested = self.range_test.suggestions() if self.range_test else {}
        if suggested:
            test, tuned = self.range_test, best.params["lr"]
            # a test run for an earlier best (a resumed sweep) at another optimizer: its
            # lrs are that optimizer's, no ratio to the tuned one means anything
            same = test.optimizer == best.params.get("optimizer", test.optimizer)
            lines.append(f"an LR finder (range test, batch {test.batch_size}, "
                         f"{test.optimizer}) would pick: " + ", ".join(
                             f"{name.replace('min_tenth', 'min/10')} {lr:.3g}"
                             + (f" ({times(lr / tuned)} the tuned lr)" if same else "")
                             for name, lr in suggested.items())
                         + ("" if same else f" (not {best.params.get('optimizer')}, the "
                            "tuned config's optimizer: no ratio)"))
        return "\n".join(lines)

    @property
    def learned_nothing(self) -> str | None:
        """A warning when the best config scores no better than a constant prediction
        (`autolr.chance`): its learning rate is then the optimum of noise; else None."""
        best = self.best_record
        value = best.expected_value if best is not None else None
        if not learned_nothing(value, self.chance, self.metric, self.direction):
            return None
        constant = self.chance["value"]
        better = (value < constant) if self.direction == "minimize" else (value > constant)
        error = self.chance.get("standard_error")
        return (f"the best config's {self.metric} {value:.4g} is "
                f"{'barely better than' if better else 'no better than'} a constant "
                f"prediction's {constant:.4g} ({self.chance['prediction']}"
                + (f"; give or take {error:.2g}, its standard error on these validation "
                   "labels" if error else "") + "): on this validation set it cannot be told "
                "from a model that learned nothing, so its tuned learning rate may mean "
                "nothing. If the model should learn, check that each label belongs to its "
                "input (X and y shuffled together), that the inputs are scaled (to mean 0 "
                "and standard deviation 1, say) and that the model's output is what the "
                "loss reads; or widen the learning rates or epochs.")

    @property
    def range_edge(self) -> str | None:
        """A warning when the best learning rate sits at an end of the range searched, so
        the optimum may lie beyond it (`autolr.range_edge`); else None. Not said of a sweep
        that learned nothing (`learned_nothing`), whose best is wherever the noise fell."""
        best = self.best_record
        if best is None or self.learned_nothing:
            return None
        return range_edge(best.params, [r.params for r in self.records
                                        if r.state == "diverged" and r.params], self.lr_space)

    def passed_over(self) -> str | None:
        """The trial with a better value than the best that the pick passed over, for
        sitting near a learning rate that diverged or for nearly diverging itself
        (`pick_candidates`), in words; None when there is none."""
        best = self.best_record
        if best is None:
            return None
        edges = edges_of(self.records)
        sign = 1.0 if self.direction == "minimize" else -1.0
        passed = [(r, why) for r in complete_records(self.records)
                  if sign * r.final_value < sign * best.final_value
                  and (why := _why_passed(r, best, edges)) is not None]
        if not passed:
            return None
        top, why = min(passed, key=lambda pair: sign * pair[0].final_value)
        stepped = (f"; trial {best.number} trained its config again at lr "
                   f"{best.params['lr']:.3g} (a step back)"
                   if best.steps_back_from == top.number else "")
        return (f"passed over: trial {top.number} ({self.metric} {top.final_value:.5g}) "
                f"{why}{stepped}")

    def __repr__(self) -> str:
        return f"<TuneResult {self.summary()}>"

    def report(self, path: str | Path = "autolr-report.html") -> Path:
        """Write the one-file offline HTML report of this sweep; returns its path."""
        from autolr.reporting import write_report
        from autolr.storage import sweep_files

        check_output_file(path, "report", keep=sweep_files(self.storage))
        return write_report(self, path)

    # -- persistence ----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the result as JSON (no pickle: loading it runs no code); missing folders
        are made."""
        from autolr.storage import stored_file

        check_output_file(path, "result", keep=[f for f in [stored_file(self.storage)] if f])
        payload = {"format": _FORMAT, "metric": self.metric, "direction": self.direction,
                   "epochs": self.epochs, "study_name": self.study_name,
                   "storage": self.storage, "records": [asdict(r) for r in self.records],
                   "range_test": self.range_test.to_dict() if self.range_test else None,
                   "ended": self.ended, "cut_short": self.cut_short,
                   "own_schedules": self.own_schedules, "chance": self.chance,
                   "lr_space": self.lr_space}
        return write_output_file(path, "result", json.dumps(payload, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> TuneResult:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise AutoLRError(f"cannot read a TuneResult from {str(path)!r}: {error}") from None
        if not (isinstance(payload, dict) and payload.get("format") == _FORMAT
                and isinstance(payload.get("records"), list)
                and {"metric", "direction"} <= set(payload)):
            raise AutoLRError(f"{str(path)!r} is not a file written by TuneResult.save().")
        known = {f.name for f in fields(TrialRecord)}
        records = []
        for raw in payload["records"]:
            raw = {k: v for k, v in raw.items() if k in known}
            for key in ("values", "train_losses", "val_losses", "seed_values",
                        "holdout_values"):
                raw[key] = tuple(raw.get(key) or ())
            records.append(TrialRecord(**raw))
        return cls(records, metric=payload["metric"], direction=payload["direction"],
                   epochs=payload.get("epochs"), study_name=payload.get("study_name"),
                   storage=payload.get("storage"),
                   range_test=RangeTest.from_dict(payload["range_test"])
                   if payload.get("range_test") else None, ended=payload.get("ended"),
                   cut_short=payload.get("cut_short"),
                   own_schedules=payload.get("own_schedules"),
                   chance=payload.get("chance"), lr_space=payload.get("lr_space"))

UNCONFIRMED = ("one run, the best of the sweep, so partly luck: the robust pick did not "
               "run (confirm_seeds=0, a budget under 4 times its cost: a small sweep, or an "
               "error in its runs, logged), and retraining the config most often does worse.")


def schedule_mismatch(name: str, own: dict[str, str] | None) -> str | None:
    """Why schedule `name` as registered now is not the one a sweep trained with (`own`:
    its schedules of one's own, name -> function; None, not known: nothing checked)."""
    if own is None:
        return None
    from autolr.metrics import loss_name

    builtin_now = schedules.is_builtin(name) if name in schedules.names() else None
    if name in own and builtin_now:
        return (f"the sweep trained schedule {name!r} as your own function "
                f"{_function_of(own[name])}, "
                f"registered under a built-in name, and this Python session has autolr's "
                f"{name!r}: register yours again first, autolr.schedules.register({name!r}, "
                "function, overwrite=True).")
    if name in own and builtin_now is False:
        now, trained = loss_name(schedules.get(name).function), _function_of(own[name])
        # the module may differ: a script's function is __main__.f where it ran and
        # script.f imported in a notebook; the function's own name (and, for a lambda or
        # a nested one, its code's digest) is what tells another function
        if now.rsplit(".", 1)[-1] != trained.rsplit(".", 1)[-1]:
            return (f"the sweep trained schedule {name!r} as {trained}, and this Python "
                    f"session registers {now} under that name: register the sweep's function "
                    f"again, autolr.schedules.register({name!r}, function, overwrite=True).")
    if name not in own and builtin_now is False and name in schedules.BUILTIN:
        return (f"the sweep trained autolr's built-in schedule {name!r}, and this Python "
                f"session has overwritten it with "
                f"{loss_name(schedules.get(name).function)}: use a session without that "
                "register(..., overwrite=True).")
    return None


def _literal(params: dict[str, Any]) -> str:
    """`params` as Python that runs without imports: numpy scalars as plain numbers, and a
    float that repr cannot write as a literal (inf, nan) as float('inf')."""
    def value(v: Any) -> str:
        v = v.item() if hasattr(v, "item") and getattr(v, "ndim", None) == 0 else v
        if isinstance(v, float) and not math.isfinite(v):
            return f"float({str(v)!r})"
        return repr(v)

    return "{" + ", ".join(f"{k!r}: {value(v)}" for k, v in params.items()) + "}"


def schedule_edited(name: str, own: dict[str, str] | None) -> str | None:
    """A warning when schedule `name` of one's own is registered now under the function
    the sweep trained, but with other code (edited since: the schedule handed out may not
    be the one trained). Not refused: the same code can digest otherwise under another
    Python version, and nothing could then be handed out at all."""
    from autolr.metrics import code_digest

    if not own or name not in own or CODE_MARK not in own[name] or schedule_mismatch(name, own):
        return None
    if name not in schedules.names() or schedules.is_builtin(name):
        return None
    if code_digest(schedules.get(name).function) == own[name].split(CODE_MARK)[1]:
        return None
    return (f"schedule {name!r} is registered under the function the sweep trained "
            f"({_function_of(own[name])}), but its code is not the same (edited since the "
            "sweep?): what is handed out follows the code as it is now. Register the code "
            "the sweep trained to get its schedule.")


def _function_of(own_id: str) -> str:
    """The function's name in a `TuneResult.own_schedules` entry, without its code digest."""
    return own_id.split(CODE_MARK)[0]


def seed_note(record: TrialRecord) -> str:
    """How a record's value was measured: ' on 1 held-out seed (0.094 ± 0.01 over the 3
    seeds that chose it)', ' ± 0.01 over 3 seeds', or '' for one seed."""
    if record.holdout_values and record.state == "complete":
        n = len(record.holdout_values)
        chose = (f" ({record.final_value:.4g} ± {statistics.stdev(record.seed_values):.2g} "
                 f"over the {len(record.seed_values)} seeds that chose it)"
                 if len(record.seed_values) > 1 else "")
        return f" on {n} held-out seed{'s' * (n > 1)}{chose}"
    if len(record.seed_values) > 1:
        return (f" ± {statistics.stdev(record.seed_values):.2g} over "
                f"{len(record.seed_values)} seeds")
    return ""


def _describe(params: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in params.get("schedule_params", {}).items())
    return (f"{params['optimizer']} lr={params['lr']:.3g}, {params['schedule']}"
            + (f" ({extra})" if extra else "")
            + f", warmup {percent(params['warmup_fraction'])}, batch {params['batch_size']}"
            + (f", weight_decay {params['weight_decay']:.3g}" if params['weight_decay'] else ""))
