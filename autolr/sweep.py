"""What the facade hands a backend: everything about a sweep except how to run it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autolr.errors import AutoLRError
from autolr.metrics import same_loss
from autolr.space import SearchSpace, TrialConfig
from autolr.training import TrialOutcome


@dataclass(frozen=True)
class Sweep:
    """A validated sweep. `run(config, reporter)` trains one config with the one loop."""

    space: SearchSpace
    # run(config, reporter, seed_offset=0, epochs=None): the sweep's seed + seed_offset
    # seeds the run; epochs (budgeted rungs) shortens it, the schedule compressed
    run: Callable[..., TrialOutcome]
    n_train: int  # train rows, which cap the batch sizes
    n_evals: int  # evaluations in a full trial: the pruners' unit of budget
    n_trials: int
    direction: str
    metric: str
    epochs: int
    loss: str = ""  # `autolr.metrics.loss_name` of the loss trained on
    metric_fn: str = ""  # ...and of a metric of one's own (two lambdas differ)
    seed: int = 0
    timeout: float | None = None
    baseline: dict | None = None  # Optuna params of the default config, when in the space
    # torch threads per trial: 1 unless told otherwise. Small models gain nothing from
    # more, and on a busy machine oversubscribed threads were measured 24-60x slower.
    torch_threads: int = 1
    # the robust pick (autolr.robust): extra seeds for the leader at the end of the sweep,
    # and also during it from `confirm_after` completed trials on (None: only at the end)
    confirm_seeds: int = 0
    confirm_after: int | None = None
    # budgeted rungs (autolr.budgeted): the epochs of each rung, each training the whole
    # schedule; `run` then takes epochs=. None: each trial is one run, pruned as it goes.
    rungs: tuple[int, ...] | None = None
    divergence_factor: float = 4.0  # `autolr.pruning.DIVERGENCE_FACTOR` unless told
    n_params: int = 0  # the model's trainable parameters, to tell another model (0: unknown)
    # a digest of the training and validation tensors, to tell other data of the same size
    # ('': unknown): two model files of one name, or an edited data(), shared a study
    data: str = ""
    # what a model that learned nothing scores (`autolr.chance`), kept for the result
    chance: dict | None = None

    def is_baseline(self, config: TrialConfig) -> bool:
        """Whether `config` is the default config (the trial a report compares against)."""
        return self.baseline is not None and config == self.space.config_from_params(
            self.baseline, self.n_train)

    def settings(self) -> dict[str, Any]:
        """What a stored sweep keeps so that a resume can tell it apart (JSON values). The
        seed draws the validation split and each trial's init; n_train tells another
        dataset (or val_fraction) apart; the direction (a metric of one's own) decides
        which trial is best, the loss what each trial trains on, the evaluations an epoch
        and the rungs where each trial is judged, the divergence factor which runs count
        as diverged, the parameter count another model, the data's digest other data of the
        same size: trials under another of any would not compare. It keeps the constant
        prediction's score too (`chance`), for the result, not compared: the data's digest
        already is."""
        return {"metric": self.metric, "metric_fn": self.metric_fn,
                "direction": self.direction, "loss": self.loss,
                "epochs": self.epochs, "seed": self.seed, "n_train": self.n_train,
                "n_evals": self.n_evals, "rungs": list(self.rungs) if self.rungs else None,
                "divergence_factor": self.divergence_factor, "n_params": self.n_params,
                "data": self.data,
                "space": _jsonable(self.space.to_dict()),
                "own_schedules": _own_schedules(self.space), "chance": self.chance}

    def lr_space(self) -> dict[str, Any]:
        """The learning rates searched (`TuneResult.lr_space`)."""
        return lr_space(self.space.to_dict())

    def own_schedules(self) -> dict[str, str]:
        """The space's schedules of one's own, name -> function (`TuneResult.own_schedules`)."""
        return own_schedule_ids(_own_schedules(self.space))

    def check_resumable(self, study_name: str, stored: dict[str, Any]) -> None:
        """Refuse to resume a stored sweep whose `settings()` differ from this one's (a
        key absent from `stored`, as from an older autolr, is not compared)."""
        now = self.settings()
        differ = [(f"data: other values than the stored sweep's (digest {stored[key]}, now "
                   f"{now[key]})" if key == "data" else
                   f"{key}: stored {stored[key]!r}, now {now[key]!r}") for key in now
                  if key not in ("space", "chance") and key in stored and not (
                      same_loss(stored[key], now[key]) if key == "loss"
                      else _without_code(stored[key]) == _without_code(now[key])
                      if key == "own_schedules" else stored[key] == now[key])]
        space = stored.get("space") or {}
        if space:  # a key newer than the stored sweep held its default there
            space = {**_jsonable(SearchSpace().to_dict()), **space}
        differ += [f"space.{key}: stored {space.get(key)!r}, now {now['space'].get(key)!r}"
                   for key in sorted(set(space) | set(now["space"]))
                   if space and key != "description"
                   and space.get(key) != now["space"].get(key)]
        if differ:
            raise AutoLRError(
                f"study {study_name!r} exists with other settings, so its trials cannot be "
                f"resumed with this call ({'; '.join(differ)}); run with the stored "
                "settings, or choose another study_name (--study NAME on the command line).")


def lr_space(space: dict[str, Any] | None) -> dict[str, Any] | None:
    """The learning-rate keys of a space's dict, as `TuneResult.lr_space` keeps them (a
    stored sweep's `space` setting, which older sweeps kept too); None without one."""
    if not isinstance(space, dict) or "lr" not in space:
        return None
    return {"lr": list(space["lr"]), "lr_scaling": space.get("lr_scaling", "none"),
            "lr_reference_batch": space.get("lr_reference_batch")}


def _own_schedules(space: SearchSpace) -> dict[str, Any]:
    """The space's schedules of one's own (registered, or a built-in name overwritten) as a
    resume compares them: the function (as `loss_name` tells one) and the ranges it
    searches (registered again with other ranges, a resumed sweep drew from another
    space); and a digest of the function's code, so that a result can tell an edited
    function (`autolr.result.schedule_edited`; a resume does not compare it)."""
    from autolr import schedules
    from autolr.metrics import code_digest, loss_name

    own = {}
    for name in space.schedules:
        if not schedules.is_builtin(name):
            info = schedules.get(name)
            own[name] = {"function": loss_name(info.function),
                         "params": {key: repr(dim) for key, dim in sorted(info.params.items())},
                         "code": code_digest(info.function)}
    return own


CODE_MARK = " @code:"  # between a schedule's function and its code's digest (own_schedule_ids)


def own_schedule_ids(own: dict[str, Any]) -> dict[str, str]:
    """Stored schedules of one's own (`_own_schedules`) as `TuneResult.own_schedules` holds
    them: name -> the function, and its code's digest where one was stored."""
    return {name: entry["function"] + (f"{CODE_MARK}{entry['code']}" if entry.get("code") else "")
            for name, entry in own.items()}


def _without_code(own: Any) -> Any:
    """Stored schedules of one's own without their code's digest (what a resume compares:
    a sweep stored by an older autolr has none, and an edited function may resume)."""
    if not isinstance(own, dict):
        return own
    return {name: {k: v for k, v in entry.items() if k != "code"} if isinstance(entry, dict)
            else entry for name, entry in own.items()}


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """`values` as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(values))
