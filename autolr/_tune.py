"""The facade: validate everything, build data and space, run a backend, return a result."""

from __future__ import annotations

import copy
import functools
import logging
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from autolr.budgeted import rung_epochs
from autolr.chance import constant_prediction
from autolr.data import TrainValData, coerce_data, has_batchnorm, steps_per_epoch
from autolr.errors import AutoLRError, InvalidModelError, SweepInterrupted, unknown_study
from autolr.metrics import METRICS, Metric, default_loss, loss_name, resolve_metric
from autolr.output_file import check_output_file
from autolr.pruning import DIVERGENCE_FACTOR
from autolr.range_test import END as RANGE_END
from autolr.range_test import START as RANGE_START
from autolr.range_test import RangeTest
from autolr.range_test import range_test as run_range_test
from autolr.result import TuneResult
from autolr.robust import DEFAULT_EXTRA_SEEDS
from autolr.space import BASELINE, SearchSpace, TrialConfig, load_space
from autolr.sweep import Sweep
from autolr.training import TrialOutcome, check_every_row, probe_model, train_trial

logger = logging.getLogger("autolr")
BACKENDS = ("optuna", "ray")
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seeds are 32-bit
# a run's seed only seeds torch: a sweep's extra runs train at its seed + 1, 2..., and
# autolr.train takes those, also beyond MAX_SEED (torch keeps a seed's low 32 bits: seed
# 2**32 + s trains as seed s, in the sweep's runs and in train alike)
MAX_RUN_SEED = 2**63 - 1
# pruners built on Optuna's trial records, which Tune's schedulers do not have
OPTUNA_ONLY_PRUNERS = {"budgeted": "whole-schedule rungs"}
#: on a log record `tune` writes that `TuneResult.summary()` says too (the command prints
#: the summary, so it drops those)
IN_SUMMARY = "autolr_in_summary"


def _keeps_callers_rng(function: Callable) -> Callable:
    """Trials seed torch's global generator (the same initial weights and dropout for
    each); the caller's random stream is put back as it was when the call returns.
    (The CPU generator: trials on a GPU seed it too, and leave it seeded.)"""
    @functools.wraps(function)
    def keeping(*args: Any, **kwargs: Any) -> Any:
        with torch.random.fork_rng(devices=[]):
            return function(*args, **kwargs)

    return keeping


@_keeps_callers_rng
def tune(model: torch.nn.Module | Callable[[], torch.nn.Module], data: Any, *,
         space: str | Mapping[str, Any] | SearchSpace = "default", epochs: int = 20,
         n_trials: int = 40, timeout: float | None = None, metric: str | Callable | None = None,
         direction: str | None = None, loss: Callable | None = None, storage: Any = None,
         study_name: str | None = None, n_jobs: int = 1, seed: int = 0,
         pruner: Any = "auto", progress: bool = True, device: str = "cpu",
         val_fraction: float = 0.2, evals_per_epoch: int = 1,
         divergence_factor: float = DIVERGENCE_FACTOR, baseline: bool = True,
         backend: str = "optuna", ray_address: str | None = None,
         resources_per_trial: Mapping[str, float] | None = None,
         max_concurrent: int | None = None, torch_threads: int = 1,
         confirm_seeds: int = DEFAULT_EXTRA_SEEDS, range_test: bool = True) -> TuneResult:
    """Search the learning rate, schedule family, warmup and batch size of `model` jointly.

    `model` is an nn.Module (never changed: every trial starts from a copy of its
    weights) or a zero-argument factory. `data` is (X, y), ((X_train, y_train),
    (X_val, y_val)), a map-style Dataset or a pair of them. Every argument is checked
    before any training. With `storage` (an Optuna URL or a journal file path), calling
    again with the same `study_name` resumes and runs until `n_trials` trials finished.

    Each trial runs torch with `torch_threads` threads (1: small models gain nothing
    from more, and oversubscribed cores slow training many times over); `n_jobs` worker
    processes use the other cores, and the robust pick's extra seeds train side by side
    in as many forked processes.

    Robust pick: when the sweep ends, its leader is trained again on `confirm_seeds` more
    seeds and judged on the mean (the next one too if it falls behind), so the best
    config is not a lucky draw; it is then trained on one held-out seed, and
    `best_value` is its value there (what retraining it gives), `best_std` its spread
    (0 turns it off; skipped on a sweep that spent less than 4x its cost). On Ray, each
    extra run is a task on the cluster.

    `baseline`: trial 10 (the last of a smaller sweep) trains the default config (AdamW,
    lr 1e-3, constant, batch 32) where the space holds it, for the report's comparison.

    Range test: after the sweep, one LR range test (Smith's "LR finder", 100 steps) runs
    at the tuned config's batch size and optimizer, so `result.range_test` and the report
    show what an LR finder would have suggested beside the tuned learning rate
    (`range_test=False` skips it). It does not narrow the search.

    `backend="ray"` runs the same search through Ray Tune (`pip install 'autolr[ray]'`) on
    the cluster at `ray_address` (None: a local Ray; "auto"; or "host:port"), with
    `storage` as the experiment's storage path and `study_name` as its name.

    >>> import autolr, torch
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
    ...                             torch.nn.Linear(32, 10))
    >>> result = autolr.tune(model, (X / 16, y), n_trials=3, epochs=2, progress=False)
    >>> result.best_config["schedule"] in autolr.schedules.names()
    True
    """
    epochs, n_trials, n_jobs, evals_per_epoch, confirm_seeds = (
        _check_int(name, value, low) for name, value, low in (
            ("epochs", epochs, 1), ("n_trials", n_trials, 1), ("n_jobs", n_jobs, 1),
            ("evals_per_epoch", evals_per_epoch, 1), ("confirm_seeds", confirm_seeds, 0)))
    seed, torch_threads = _check_seed(seed), _check_threads(torch_threads)
    if timeout is not None and (isinstance(timeout, bool) or not (
            isinstance(timeout, numbers.Real) and timeout > 0)):
        raise AutoLRError(f"timeout is in seconds and must be None or > 0, but got {timeout=}.")
    _check_divergence_factor(divergence_factor)
    if study_name is not None and not (isinstance(study_name, str) and study_name):
        raise AutoLRError(f"study_name must be a name such as 'digits' (or None), but got "
                          f"{study_name=}.")
    if study_name is None and storage is not None:
        study_name = "autolr"  # both backends' name for it: the result says it, too
    for name, flag in (("range_test", range_test), ("baseline", baseline),
                       ("progress", progress)):
        if not isinstance(flag, bool):
            raise AutoLRError(f"{name} must be True or False, but got {name}={flag!r}.")
    if backend not in BACKENDS:
        raise AutoLRError(f"backend must be one of {BACKENDS}, but got {backend!r}.")
    _check_backend_options(backend, n_jobs, device, ray_address=ray_address,
                           resources_per_trial=resources_per_trial,
                           max_concurrent=max_concurrent)
    search = load_space(space)
    prepared = _prepare(model, data, loss, metric, direction, device, val_fraction, seed)
    _check_evals_per_epoch(evals_per_epoch, search.usable_batch_sizes(prepared.data.n_train),
                           prepared.data.n_train)
    _check_single_row_batches(search.usable_batch_sizes(prepared.data.n_train), prepared)

    from autolr.backends.optuna import make_pruner, run_optuna

    n_evals = epochs * evals_per_epoch
    if pruner in OPTUNA_ONLY_PRUNERS and backend == "ray":
        raise AutoLRError(f"pruner={pruner!r} ({OPTUNA_ONLY_PRUNERS[pruner]}) runs with the "
                          "Optuna backend; with backend='ray' use pruner='auto' (checked halving).")
    if backend == "optuna":  # the Ray backend checks its scheduler before connecting
        make_pruner(pruner, n_evals)  # a bad pruner name fails here, before training

    def run(config: TrialConfig, reporter: Any, seed_offset: int = 0,
            epochs: int = epochs) -> TrialOutcome:
        return train_trial(config, prepared.factory, prepared.data, epochs=epochs,
                           loss_fn=prepared.loss_fn, metric=prepared.metric, reporter=reporter,
                           seed=seed + seed_offset, evals_per_epoch=evals_per_epoch,
                           divergence_factor=divergence_factor)

    sweep = Sweep(space=search, run=run, n_train=prepared.data.n_train, n_evals=n_evals,
                  n_trials=n_trials, direction=prepared.metric.direction,
                  metric=prepared.metric.name, epochs=epochs, loss=loss_name(prepared.loss_fn),
                  metric_fn=_metric_fn(prepared.metric),
                  seed=seed, timeout=timeout,
                  baseline=search.params_for(BASELINE, prepared.data.n_train)
                  if baseline else None, torch_threads=torch_threads,
                  confirm_seeds=confirm_seeds,
                  rungs=rung_epochs(epochs) if pruner == "budgeted" else None,
                  divergence_factor=float(divergence_factor), n_params=prepared.n_params,
                  data=prepared.data.digest(), chance=prepared.chance)
    try:
        if backend == "ray":
            from autolr.backends.ray import run_ray

            records = run_ray(sweep, address=ray_address, storage=storage,
                              study_name=study_name, pruner=pruner,
                              resources_per_trial=resources_per_trial,
                              max_concurrent=max_concurrent, progress=progress)
        else:
            records = run_optuna(sweep, storage=storage, study_name=study_name, n_jobs=n_jobs,
                                 pruner=pruner, progress=progress)
    except SweepInterrupted as stop:  # no storage: the finished trials go with it
        stop.result = _result(sweep, stop.records, study_name, storage, ended=None)
        stop.result.cut_short = (
            f"Ctrl-C stopped the sweep after {len(stop.records)} finished trial(s) of its "
            f"{n_trials}, before the robust pick and the range test (with no storage, it "
            "cannot be resumed)")
        raise
    result = _result(sweep, records, study_name, storage, ended=True)
    # trials counted towards n_trials: on Optuna a step back is one of them once a later
    # call extends the sweep; Tune counts its own trials without it
    ran = (sum(1 for r in records if r.steps_back_from is None) if backend == "ray"
           else len(records))
    if timeout is not None and ran < n_trials:  # said, or 3 trials read as a whole sweep
        # the sweep's count, not this call's: a resumed call adds to the stored trials
        logger.warning("timeout (%g s): the sweep holds %d of its %d trials%s", timeout, ran,
                       n_trials,
                       "; the same call resumes the sweep" if storage is not None else "")
        result.cut_short = (f"the timeout ({timeout:g} s) stopped the sweep after {ran} of "
                            f"its {n_trials} trials")
    if range_test and result.best_record is not None:
        try:
            result.range_test = _range_test_at(result.best_record.config, prepared, seed,
                                               torch_threads)
        except Exception as error:  # an extra for the report: never lose the sweep to it
            logger.warning("the LR range test after the sweep failed (%s: %s); the result "
                           "has no range test", type(error).__name__, error)
    if storage is not None:  # for reports from storage: ended, with its range test
        if backend == "ray":
            from autolr.backends.ray import store_end
        else:
            from autolr.backends.optuna import store_end
        if store_end(storage, study_name, result.range_test, result.cut_short) is False:
            result.ended = False  # another process is still running trials of the sweep
    if result.best_record is None:
        logger.warning(result.summary())
    elif result.learned_nothing or result.range_edge:
        # marked: the command prints the summary, which says it too
        logger.warning(result.learned_nothing or result.range_edge, extra={IN_SUMMARY: True})
    for record in result.records:
        if record.state == "failed":
            logger.warning("trial %d failed: %s", record.number, record.reason)
    return result


def _result(sweep: Sweep, records: list, study_name: str | None, storage: Any,
            ended: bool | None) -> TuneResult:
    return TuneResult(records, metric=sweep.metric, direction=sweep.direction,
                      epochs=sweep.epochs, study_name=study_name,
                      storage=storage if isinstance(storage, str) else None, ended=ended,
                      own_schedules=sweep.own_schedules(), chance=sweep.chance,
                      lr_space=sweep.lr_space())


def load(storage: Any, study_name: str | None = None) -> TuneResult:
    """The result of a stored sweep, read from the storage's data only: no pickle, no code
    from the file is run. `storage`: an Optuna storage URL or journal file; a Ray
    backend's storage directory (its `<study>.autolr.json`); or a file `TuneResult.save`
    wrote.

    `study_name` may be left out when the storage holds a single study.
    """
    saved = _saved_result(storage, study_name)
    if saved is not None:
        return TuneResult.load(saved)
    from autolr.backends.optuna import load_records

    records, info = load_records(storage, study_name)
    return TuneResult(records, metric=info["metric"], direction=info["direction"],
                      epochs=info["epochs"], study_name=info["study_name"],
                      storage=str(storage), range_test=info["range_test"],
                      ended=info["ended"], cut_short=info["cut_short"],
                      own_schedules=info["own_schedules"], chance=info["chance"],
                      lr_space=info["lr_space"])


def _saved_result(storage: Any, study_name: str | None) -> Path | None:
    """The `TuneResult.save` file `storage` names (a .json file, or a directory holding
    `<study>.autolr.json`, as the Ray backend writes); None for an Optuna storage."""
    if not isinstance(storage, (str, os.PathLike)) or "://" in str(storage):
        return None
    path = Path(storage).expanduser()
    if path.suffix == ".json":
        return path
    if not path.is_dir():
        return None
    names = sorted(p.name.removesuffix(".autolr.json") for p in path.glob("*.autolr.json"))
    if not names:
        raise AutoLRError(f"{str(storage)!r} is a directory with no saved sweep in it (a Ray "
                          "sweep's <study>.autolr.json); an Optuna storage is a URL such as "
                          "'sqlite:///autolr.db' or a journal file ending in .log.")
    study_name = study_name or (names[0] if len(names) == 1 else None)
    if study_name not in names:
        raise unknown_study(storage, study_name, names)
    return path / f"{study_name}.autolr.json"


def report(storage: Any, study_name: str | None = None,
           path: str = "autolr-report.html") -> Path:
    """Write the HTML report of a stored sweep (see `load`) to `path`."""
    from autolr.storage import sweep_files

    check_output_file(path, "report", keep=sweep_files(storage))  # before reading it
    return load(storage, study_name).report(path)


class Trained(NamedTuple):
    """What `autolr.train` returns: the trained model and its curves."""

    model: torch.nn.Module
    metrics: dict[str, Any]


@_keeps_callers_rng
def train(model: torch.nn.Module | Callable[[], torch.nn.Module], data: Any,
          config: Mapping[str, Any] | TrialConfig, *, epochs: int = 20, seed: int = 0,
          metric: str | Callable | None = None, direction: str | None = None,
          loss: Callable | None = None, device: str = "cpu", val_fraction: float = 0.2,
          divergence_factor: float = DIVERGENCE_FACTOR, split_seed: int = 0) -> Trained:
    """Train one config (e.g. `TuneResult.best_config`) with the same loop as the sweep.

    `seed` seeds the run (a factory's initial weights, the batch order); `split_seed`
    the 80/20 split of `(X, y)`, as `tune`'s `seed` did: keep it at the sweep's seed to
    re-train on fresh seeds against the validation rows the sweep scored on.

    Returns `(model, metrics)`: a trained copy in eval mode, as its values were measured
    (the given model is not changed; `.train()` it to train on), and a dict
    with state, reason, values (the metric per epoch), final_value, train_losses,
    val_losses, steps_run and seconds.

    >>> import autolr, torch
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> model = torch.nn.Linear(64, 10)
    >>> trained, metrics = autolr.train(model, (X / 16, y), {"lr": 0.01}, epochs=2)
    >>> metrics["state"], len(metrics["values"])
    ('complete', 2)
    """
    epochs, seed = _check_int("epochs", epochs, 1), _check_seed(seed, largest=MAX_RUN_SEED)
    split_seed = _check_seed(split_seed, "split_seed")
    _check_divergence_factor(divergence_factor)
    config = TrialConfig.from_dict(config)
    prepared = _prepare(model, data, loss, metric, direction, device, val_fraction, split_seed)
    if config.batch_size > prepared.data.n_train:  # as tune drops such batch sizes
        raise AutoLRError(f"batch_size={config.batch_size} is larger than the "
                          f"{prepared.data.n_train} training rows; use at most "
                          f"{prepared.data.n_train}.")
    _check_single_row_batches([config.batch_size], prepared)
    outcome = train_trial(config, prepared.factory, prepared.data, epochs=epochs,
                          loss_fn=prepared.loss_fn, metric=prepared.metric, seed=seed,
                          divergence_factor=divergence_factor, keep_model=True)
    metrics = {"state": outcome.state, "reason": outcome.reason, "metric": prepared.metric.name,
               "values": outcome.values, "final_value": outcome.values[-1]
               if outcome.values else None, "train_losses": outcome.train_losses,
               "val_losses": outcome.val_losses, "steps_run": outcome.steps_run,
               "seconds": outcome.seconds}
    return Trained(outcome.model, metrics)


def _range_test_at(config: TrialConfig, prepared: _Prepared, seed: int,
                   torch_threads: int) -> RangeTest:
    """The LR range test at `config`'s batch size, optimizer and weight decay, over the
    finders' 1e-7..10, widened to reach 2 decades either side of the tuned lr."""
    from autolr.backends.optuna import limit_torch_threads

    with limit_torch_threads(torch_threads):
        return run_range_test(prepared.factory, prepared.data, prepared.loss_fn,
                              optimizer=config.optimizer, batch_size=config.batch_size,
                              weight_decay=config.weight_decay, seed=seed,
                              start=min(RANGE_START, config.lr / 100),
                              end=max(RANGE_END, config.lr * 100))


class _Prepared(NamedTuple):
    factory: Callable[[], torch.nn.Module]
    data: TrainValData
    loss_fn: Callable
    metric: Metric
    batchnorm: bool  # the model holds BatchNorm: it cannot train on a batch of one row
    n_params: int  # trainable parameters: a resume tells another model by them
    chance: dict | None = None  # `chance.constant_prediction`: what learning nothing scores


def _prepare(model: Any, data: Any, loss: Callable | None, metric: Any, direction: str | None,
             device: str, val_fraction: float, split_seed: int) -> _Prepared:
    """Everything a trial needs, validated: bad input fails here, before any training."""
    device = _check_device(device)
    factory = _model_factory(model, device)
    tensors = coerce_data(data, val_fraction=val_fraction, seed=split_seed).to(device)
    if loss is not None and not callable(loss):
        raise AutoLRError(f"loss must be a callable (outputs, targets) -> scalar tensor, such as"
                          f" torch.nn.CrossEntropyLoss(), but got {loss!r}.")
    if isinstance(loss, type) and issubclass(loss, torch.nn.Module):  # called, it would
        # build a loss module of (outputs, targets) as its settings: a confusing failure
        where = "torch.nn" if getattr(torch.nn, loss.__name__, None) is loss else loss.__module__
        raise AutoLRError(f"loss must be a loss module, not its class: pass "
                          f"loss={where}.{loss.__qualname__}() (with any settings in the "
                          "parentheses).")
    learned = [name for name, parameter in loss.named_parameters() if parameter.requires_grad
               ] if isinstance(loss, torch.nn.Module) else []
    if learned:  # the optimizer holds the model's parameters only: these would never move
        raise AutoLRError(
            f"the loss has trainable parameters ({', '.join(learned[:3])}): autolr trains the "
            "model's parameters, so these would never learn, and every trial would add its "
            "gradients to your loss's; make them part of the model (its forward returning "
            "what the loss needs), or freeze them (loss.requires_grad_(False)).")
    loss_fn = loss if loss is not None else default_loss(tensors.task)
    resolved = resolve_metric(metric, tensors.task, direction)
    probe = probe_model(factory, tensors, loss_fn, resolved, own_loss=loss is not None)
    check_every_row(probe, tensors)
    # torch imports its compiler stack the first time an optimizer is built (0.7 s here):
    # now, not in the first trial's seconds (8.8 s against 1.5 s for the same run) or in
    # each forked worker's
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
    return _Prepared(factory, tensors, loss_fn, resolved, has_batchnorm(probe),
                     sum(p.numel() for p in probe.parameters() if p.requires_grad),
                     _chance(probe, tensors, loss_fn, resolved))


def _chance(probe: torch.nn.Module, data: TrainValData, loss_fn: Callable,
            metric: Metric) -> dict | None:
    """What a model that learned nothing scores (`chance.constant_prediction`), its output
    shape read off the untrained model; None where that cannot be told."""
    try:
        with torch.no_grad():
            shape = tuple(probe.eval()(data.X_train[:2].clone()).shape[1:])
        return constant_prediction(data, loss_fn, metric, shape)
    except Exception:  # an extra for the result: never a reason to refuse the sweep
        return None


def _metric_fn(metric: Metric) -> str:
    """A metric of one's own as a resume compares it (its code, for a lambda); '' for a
    built-in one, which its name says."""
    own = metric.function is not None and metric not in METRICS.values()
    return loss_name(metric.function) if own else ""


def _check_single_row_batches(batch_sizes: Iterable[int], prepared: _Prepared) -> None:
    """BatchNorm cannot train on a batch of one row: at batch size 1 every batch is one,
    at 2 an odd train set ends each epoch with one (larger batches split their last two
    evenly instead, `epoch_batches`). Refused here, not as a sweep of failed trials."""
    n_train = prepared.data.n_train
    for size in batch_sizes if prepared.batchnorm else ():
        if size == 1 or (size == 2 and n_train % 2):
            where = ("every batch" if size == 1
                     else f"the last batch of each epoch ({n_train} training rows)")
            raise AutoLRError(
                f"the model holds BatchNorm, which cannot train on a batch of one row, but "
                f"at batch_size={size} {where} has one; use batch sizes of 3 or more (or "
                "2 with an even number of training rows).")


def _model_factory(model: Any, device: torch.device) -> Callable[[], torch.nn.Module]:
    if isinstance(model, torch.nn.Module):
        # One private copy, taken now: the user's object is never touched again, and
        # every trial starts from these very weights.
        try:
            template = copy.deepcopy(model).to(device)
        except Exception as error:  # a lock, an open file, a generator... in the module
            raise InvalidModelError(
                f"the model cannot be copied ({type(error).__name__}: {error}), and every "
                "trial starts from a copy of it; pass a zero-argument function that builds "
                "the model instead, e.g. model=lambda: MyNet()."
            ) from error
        return lambda: copy.deepcopy(template)
    if callable(model):
        def build() -> torch.nn.Module:
            built = model()
            if not isinstance(built, torch.nn.Module):  # said plainly, not as a failed .to
                raise InvalidModelError(f"the model factory must return a torch.nn.Module, "
                                        f"but returned {type(built).__name__}.")
            return built.to(device)

        return build
    raise InvalidModelError(
        "model must be a torch.nn.Module or a zero-argument function that builds one, "
        f"but got {type(model).__name__}."
    )


def _check_divergence_factor(divergence_factor: Any) -> None:
    if not (isinstance(divergence_factor, numbers.Real) and divergence_factor > 1):
        raise AutoLRError(f"divergence_factor must be a number > 1 (4 is the LR finders' "
                          f"choice), but got {divergence_factor=}.")


def _parse_device(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise AutoLRError(f"device must be 'cpu', 'cuda' or 'cuda:N', but got {device!r}.") \
            from error


def _check_device(device: Any) -> torch.device:
    parsed = _parse_device(device)
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise AutoLRError(f"device={device!r} was asked for, but torch sees no CUDA device; "
                          "use device='cpu'.")
    try:  # any other kind (mps, a cuda index past the last GPU...): can it hold a tensor?
        if parsed.type == "meta":
            raise RuntimeError("meta tensors hold no values to train on")
        torch.empty(1, device=parsed)
    except (RuntimeError, AssertionError) as error:
        why = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise AutoLRError(f"device={device!r} is not usable here ({why}); use device='cpu'"
                          f"{', or cuda:0' if parsed.type == 'cuda' else ''}.") from None
    return parsed


def _check_backend_options(backend: str, n_jobs: int, device: Any, **ray_options: Any) -> None:
    """An option of the other backend is an error, not silently ignored."""
    given = [name for name, value in ray_options.items() if value is not None]
    if backend == "optuna" and given:
        raise AutoLRError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} the Ray "
                          "backend's; pass backend='ray' (--backend ray) to run on a Ray "
                          "cluster (with the Optuna backend, n_jobs sets how many trials "
                          "train at once).")
    if backend == "ray" and n_jobs != 1:
        raise AutoLRError(f"n_jobs={n_jobs} sets the Optuna backend's worker processes; with "
                          "backend='ray' Tune trains trials at once by itself: set "
                          "max_concurrent (--max-concurrent; default: the cluster's CPUs over "
                          "resources_per_trial's cpu) instead.")
    if backend == "optuna" and n_jobs > 1 and _parse_device(device).type == "cuda":
        # the data goes to the GPU in this process, before the workers are forked
        raise AutoLRError(f"n_jobs={n_jobs} forks worker processes, and a forked process "
                          "cannot use CUDA once its parent has; on a GPU use n_jobs=1 (or "
                          "backend='ray', whose workers start fresh).")


def _check_int(name: str, value: Any, low: int) -> int:
    """`value` as a Python int (a numpy integer is one too), if it is one >= `low`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise AutoLRError(f"{name} must be an integer >= {low}, but got {name}={value!r}.")
    return int(value)


def _check_evals_per_epoch(evals: int, batch_sizes: tuple[int, ...], n_train: int) -> None:
    """An epoch at the largest batch size must have a step for each evaluation: the
    pruners count a trial's progress in evaluations."""
    largest = max(batch_sizes)
    steps = steps_per_epoch(n_train, largest)
    if evals > steps:
        raise AutoLRError(f"evals_per_epoch={evals} is more than the {steps} step(s) an epoch "
                          f"has at batch size {largest} ({n_train} training rows); use at most "
                          f"{steps}, or leave the larger batch sizes out of the space.")


def _check_seed(seed: Any, name: str = "seed", largest: int = MAX_SEED) -> int:
    seed = _check_int(name, seed, 0)
    if seed > largest:
        raise AutoLRError(f"{name} must be an integer from 0 to 2**{largest.bit_length()} - 1, "
                          f"but got {name}={seed}.")
    return seed


def _check_threads(threads: Any) -> int:
    threads, cores = _check_int("torch_threads", threads, 1), os.cpu_count() or 1
    if threads > cores:  # more threads than cores only wait on each other
        raise AutoLRError(f"torch_threads={threads} is more than this machine's {cores} "
                          f"cores; use at most {cores} (1, the default, suits small models).")
    return threads
