"""The one training loop. Every backend and `autolr.train` call `train_trial`.

Per step: set the learning rate from the schedule's precomputed table, forward, backward,
step, and feed the loss to the divergence monitor (NaN/inf stops the trial at once, a
smoothed loss that stays above 4x its best for 20 steps then; a run that ends still above
it diverged too). Per evaluation (every epoch, or `evals_per_epoch` times an epoch):
validation loss and metric, reported to the backend, which may stop the trial.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from autolr.data import (
    CLASSIFICATION,
    IGNORED_LABEL,
    TrainValData,
    epoch_batches,
    has_batchnorm,
    steps_per_epoch,
)
from autolr.errors import AutoLRError, InvalidModelError, InvalidSpaceError
from autolr.lr_profile import will_rise
from autolr.metrics import METRICS, Metric
from autolr.optimizers import make_optimizer
from autolr.pruning import DIVERGENCE_FACTOR, DivergenceMonitor
from autolr.space import TrialConfig

logger = logging.getLogger("autolr")

COMPLETE, PRUNED, DIVERGED, FAILED = "complete", "pruned", "diverged", "failed"
#: in the reason of a run stopped for a metric that is not finite while the loss is: the
#: metric failed, not training (no lower learning rate would help)
METRIC_ONLY = "while the loss stayed finite"
_EVAL_CHUNK = 4096  # validation rows per forward pass: bounded memory on large sets
#: a report's flag: its evaluation ended in warmup or where the lr will still rise, so
#: the pruners keep its value for comparisons and never judge the trial on it
UNJUDGED = "unjudged"


class Reporter(Protocol):
    """What a backend gives the loop: `report` returns True to stop the trial."""

    def report(self, step: int, metrics: Mapping[str, float]) -> bool: ...


@dataclass
class TrialOutcome:
    """What one run of the loop produced."""

    state: str
    reason: str | None = None
    values: list[float] = field(default_factory=list)  # the objective, per evaluation
    train_losses: list[float] = field(default_factory=list)  # mean per evaluation period
    val_losses: list[float] = field(default_factory=list)
    steps_run: int = 0
    epochs_run: float = 0.0
    seconds: float = 0.0
    model: torch.nn.Module | None = None
    # budgeted rungs (autolr.budgeted): the curves are of a run of `rung_epochs` epochs
    # (`rung_steps` steps) with the whole schedule compressed; the cost fields above then
    # add up every rung. None: one run of the sweep's epochs.
    rung_epochs: int | None = None
    rung_steps: int | None = None


def train_trial(config: TrialConfig, model_factory: Callable[[], torch.nn.Module],
                data: TrainValData, *, epochs: int, loss_fn: Callable, metric: Metric,
                reporter: Reporter | None = None, seed: int = 0, evals_per_epoch: int = 1,
                divergence_factor: float = DIVERGENCE_FACTOR,
                keep_model: bool = False) -> TrialOutcome:
    """Train `config` for `epochs` on `data`; return its curves and how it ended."""
    started = time.perf_counter()
    torch.manual_seed(seed)  # same initial weights (from a factory) and dropout per trial
    model = model_factory()
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr,
                               config.weight_decay)
    per_epoch = steps_per_epoch(data.n_train, config.batch_size)
    total_steps = per_epoch * epochs
    batchnorm = has_batchnorm(model)
    factors = config.multipliers(total_steps)
    bad = next((i for i, m in enumerate(factors) if not (math.isfinite(m) and m >= 0)), None)
    if bad is not None:  # a schedule of one's own: a negative lr climbs the loss unseen
        raise InvalidSpaceError(
            f"schedule {config.schedule!r} gave a learning-rate factor of {factors[bad]!r} at "
            f"step {bad} of {total_steps} (params {dict(config.schedule_params)}); a "
            "schedule must give finite factors >= 0 at every step.")
    lrs = [config.lr * m for m in factors]
    warmup_steps = config.warmup_steps(total_steps)
    rises = will_rise(factors)
    generator = torch.Generator().manual_seed(seed)
    monitor = DivergenceMonitor(divergence_factor)
    outcome = TrialOutcome(COMPLETE)
    groups = optimizer.param_groups
    step, loss_sum, loss_count, evals_done = 0, 0.0, 0, 0
    # per-position labels: a batch of padding only has no loss (its mean is NaN), so it
    # takes no step's update and is no divergence; the schedule goes on through it
    padded = data.task == CLASSIFICATION and data.y_train.ndim > 1

    def finish(state: str, reason: str | None = None) -> TrialOutcome:
        outcome.state, outcome.reason = state, reason
        outcome.steps_run, outcome.epochs_run = step, round(step / per_epoch, 4)
        outcome.seconds = time.perf_counter() - started
        outcome.model = model.eval() if keep_model else None  # as it was evaluated
        return outcome

    for _ in range(epochs):
        model.train()
        for inputs, targets in epoch_batches(data.X_train, data.y_train, config.batch_size,
                                             generator, avoid_single_row=batchnorm):
            learns = not (padded and bool((targets == IGNORED_LABEL).all()))
            if learns:
                lr = lrs[step]
                for group in groups:
                    group["lr"] = lr
                loss = loss_fn(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            step += 1
            why = None
            if learns:
                loss_value = loss.item()
                why = monitor.update(loss_value)
                loss_sum += loss_value
                loss_count += 1
            if why is None and step == total_steps:  # judged before the last evaluation
                why = monitor.at_end()  # is reported: Ray takes that report as final
            if why is not None:
                if reporter is not None:  # tell the sampler this region blows up
                    reporter.report(len(outcome.values), {"value": math.nan})
                return finish(DIVERGED, why)
            # evaluate `evals_per_epoch` times an epoch, at evenly spaced steps
            if step * evals_per_epoch // per_epoch == evals_done and step != total_steps:
                continue
            evals_done = step * evals_per_epoch // per_epoch
            val_loss, value = evaluate(model, data, loss_fn, metric)
            outcome.train_losses.append(loss_sum / loss_count if loss_count else math.nan)
            outcome.val_losses.append(val_loss)
            outcome.values.append(value)
            loss_sum, loss_count = 0.0, 0
            if not (math.isfinite(val_loss) and math.isfinite(value)):
                if reporter is not None:
                    reporter.report(len(outcome.values) - 1, {"value": math.nan})
                return finish(DIVERGED, f"validation {metric.name} became {value} " + (
                    f"{METRIC_ONLY} ({val_loss:.4g})" if math.isfinite(val_loss)
                    else f"(loss {val_loss})") + f" at step {step}")
            model.train()
            if reporter is None:
                continue
            # an evaluation that ends in warmup (up to its last step), or where the lr will
            # still rise, is never judged: told from this run's own steps, as the pruners'
            # schedule model (`lr_profile`) runs on a grid of its own, 8 steps an evaluation
            stop = reporter.report(len(outcome.values) - 1, {
                "value": value, "val_loss": val_loss, "train_loss": outcome.train_losses[-1],
                UNJUDGED: step <= warmup_steps or rises[step - 1]})
            if stop and step != total_steps:  # a run that is done completes, never "pruned"
                return finish(PRUNED, getattr(reporter, "last_reason", None) or "pruned")
    return finish(COMPLETE)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TrainValData, loss_fn: Callable,
             metric: Metric) -> tuple[float, float]:
    """(validation loss, objective value) over the whole validation set."""
    model.eval()
    outputs = _val_outputs(model, data)
    val_loss = float(loss_fn(outputs, data.y_val.clone()))  # copies: see `_outputs`
    if metric.function is None:
        return val_loss, val_loss
    return val_loss, float(metric.function(outputs, data.y_val.clone()))


def _val_outputs(model: torch.nn.Module, data: TrainValData) -> torch.Tensor:
    return _outputs(model, data.X_val)


def _outputs(model: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    # the model gets copies, as a DataLoader's fresh batches are: one that edits its input
    # in place (x.sub_(0.5)) drifted the validation set from one evaluation to the next,
    # and wrote into the user's own arrays (an explicit split is not copied)
    return torch.cat([model(X[i:i + _EVAL_CHUNK].clone())
                      for i in range(0, len(X), _EVAL_CHUNK)])


@torch.no_grad()
def check_every_row(model: torch.nn.Module, data: TrainValData) -> None:
    """One forward pass over every training and validation row (in eval mode, chunks of
    `_EVAL_CHUNK`, nothing kept), so that a row the model cannot take is an error before
    the sweep: `probe_model` tries two, and a token id beyond the vocabulary in one row
    of 300 failed every trial instead (helper-40). Costs about a third of an epoch."""
    was_training = model.training
    model.eval()
    try:
        for part, X in (("training", data.X_train), ("validation", data.X_val)):
            for start in range(0, len(X), _EVAL_CHUNK):
                try:
                    model(X[start:start + _EVAL_CHUNK].clone())
                except Exception as error:
                    row = _first_failing_row(model, X, start)
                    where = (f"{part} row {row} (of {len(X)}, counted after the split)"
                             if row is not None else f"{part} rows from {start} on")
                    raise InvalidModelError(
                        f"the model's forward failed on {where}, though it took the first "
                        f"two: {type(error).__name__}: {error}. Check that row (an id "
                        "beyond an embedding's size, a value out of the range the model "
                        "expects)." if row is not None else
                        f"the model's forward failed on {where} as one batch of "
                        f"{min(_EVAL_CHUNK, len(X) - start)}, no one row to blame: "
                        f"{type(error).__name__}: {error}. autolr evaluates in batches "
                        "this size: the model must take any batch size (no batch size "
                        "fixed in a reshape).") from error
    finally:
        model.train(was_training)


def _first_failing_row(model: torch.nn.Module, X: torch.Tensor, start: int) -> int | None:
    """The first row from `start` on (within one chunk) the model fails on alone; None
    when each passes alone (it fails on the batch as a whole), or when no row passes
    alone (a model that takes no batch of one: no row is to blame)."""
    try:
        model(X[:1].clone())  # a row `probe_model` saw pass
    except Exception:
        return None
    for row in range(start, min(start + _EVAL_CHUNK, len(X))):
        try:
            model(X[row:row + 1].clone())
        except Exception:
            return row
    return None


def probe_model(model_factory: Callable[[], torch.nn.Module], data: TrainValData,
                loss_fn: Callable, metric: Metric | None = None, *,
                own_loss: bool = False) -> torch.nn.Module:
    """Run one small batch through the model, the loss and the metric before any sweep,
    so that a wrong input or output shape is a clear error instead of a sweep of failed
    trials. A regression model's output must have the targets' shape (MSE would
    broadcast (n, 1) against (n,) without a word), unless the user's own loss
    (`own_loss`) reads it, e.g. a mean and a variance per target, and no built-in metric
    compares it with the targets. Returns the model it built (untrained)."""
    inputs, targets = data.X_train[:2].clone(), data.y_train[:2].clone()  # see `_outputs`
    model = _build(model_factory)
    again = _build(model_factory)
    if again is model:
        raise InvalidModelError(
            "the model factory returned the same module object twice, so each trial would "
            "go on training the weights the last one left; build a new one on each call "
            "(model=lambda: MyNet()), or pass the module itself (each trial gets a copy).")
    shared = _shared_state(model, again)
    if shared:
        raise InvalidModelError(
            f"the model factory's builds share {len(shared)} tensor(s) that training changes "
            f"({', '.join(shared[:3])}{', ...' if len(shared) > 3 else ''}): a module built "
            "once outside it (a backbone) is trained by every trial in turn, each going on "
            "from the last, and yours with it; copy it in the factory "
            "(lambda: nn.Sequential(copy.deepcopy(backbone), head)) or freeze it "
            "(requires_grad=False, and no BatchNorm statistics in it).")
    if not any(parameter.requires_grad for parameter in model.parameters()):
        frozen = sum(1 for _ in model.parameters())
        raise InvalidModelError(
            "the model has no parameter to train" + (
                f": all {frozen} of its parameters have requires_grad=False; unfreeze the "
                "ones to tune (a frozen backbone is fine, but something must learn)."
                if frozen else "; give it a layer with weights, such as torch.nn.Linear."))
    try:
        with torch.no_grad():
            outputs = model(inputs)
    except Exception as error:
        if len(inputs) == 1 and has_batchnorm(model):  # not the shape: it said to change it
            raise InvalidModelError(
                f"the training set has one row, and the model holds BatchNorm, which cannot "
                f"train on a batch of one row ({error}); give more training rows.") from error
        if inputs.ndim == 1:  # one number a row: most models want a feature axis
            raise InvalidModelError(
                f"the model's forward failed on a batch of shape {tuple(inputs.shape)}: "
                f"{error}. X is 1-D, one number a row; for a model that takes one feature, "
                "pass X.reshape(-1, 1).") from error
        raise InvalidModelError(
            f"the model's forward failed on a batch of shape {tuple(inputs.shape)} "
            f"(dtype {inputs.dtype}): {error}. Make the model accept inputs of shape "
            f"(batch, {', '.join(map(str, inputs.shape[1:]))})" + _dtype_hint(inputs, model)
        ) from error
    if not isinstance(outputs, torch.Tensor):
        raise InvalidModelError(_not_a_tensor(outputs))
    if data.task == CLASSIFICATION:
        # C logits a row, or a position (as cross-entropy reads them: (batch, C, *positions));
        # a loss of one's own may read another shape (one logit for two classes, with BCE)
        positions = tuple(targets.shape[1:])
        # an own cross-entropy or NLL loss reads C logits a row as the built-in one does
        reads_logits = not own_loss or _compares_outputs(metric) or isinstance(
            loss_fn, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss))
        if (outputs.ndim != 2 + len(positions) or outputs.shape[1] < data.n_classes
                or tuple(outputs.shape[2:]) != positions) and reads_logits:
            wanted = ", ".join(["batch", "C", *map(str, positions)])
            raise InvalidModelError(
                f"the labels go up to {data.n_classes - 1}"
                + (f", one per position of {positions}" if positions else "")
                + f", so the model must output ({wanted}) logits with C >= "
                f"{data.n_classes}, but it output shape {tuple(outputs.shape)}; labels must "
                f"lie in 0..C-1: change its last layer to {data.n_classes} outputs or remap "
                "the labels"
                + (f" (metric {metric.name!r} reads C logits a row: with a loss of your own "
                   "that reads this shape, pass a metric of your own too)." if own_loss
                   else "; the classes are its last axis, where cross-entropy wants them "
                   "second: return logits.movedim(-1, 1)." if positions
                   and tuple(outputs.shape[1:-1]) == positions
                   else f"; if y is one-hot encoded (a 1 in one of {positions[0]} columns), "
                   "pass the class indices, y.argmax(1)." if _one_hot(data.y_train)
                   and outputs.ndim == 2 and outputs.shape[1] == positions[0]
                   else _numbers_hint(positions, data.n_classes)
                   if tuple(outputs.shape[1:]) == (positions or (1,)) else ".")
            )
    elif outputs.shape == targets.shape[:1] and targets.shape[1:] == (1,):
        # (batch,) against (batch, 1): a loss that subtracts them pairs every output with
        # every target, (batch, batch), and trains on that without a word
        pairs = (f"the model outputs shape {tuple(outputs.shape)}, one number a row, and the "
                 f"targets are {tuple(targets.shape)} (a 1-D y is trained as a column, as "
                 "the built-in losses read it): a loss that subtracts them broadcasts to "
                 "(batch, batch) and trains on every pair; return (batch, 1), e.g. drop a "
                 ".squeeze() at the end of forward")
        if not own_loss or _compares_outputs(metric):
            raise InvalidModelError(pairs + ".")
        logger.warning("%s (if your loss squeezes the targets itself, ignore this).", pairs)
    elif outputs.shape != targets.shape and (not own_loss or _compares_outputs(metric)):
        # float class labels are read as regression targets: say so where it looks like it
        labels = (outputs.ndim == 2 and outputs.shape[1] > 1 and targets.shape[1:] == (1,))
        raise InvalidModelError(
            f"the regression targets have shape {tuple(targets.shape)} per batch of 2, but "
            f"the model output {tuple(outputs.shape)}; make its last layer output "
            f"{tuple(targets.shape[1:])}"
            + (", or, if y holds class labels, pass it as integers (classification is "
               "inferred from y's dtype)." if labels else ".")
        )
    try:
        loss = float(_probe_loss(model, inputs, targets, loss_fn))
    except InvalidModelError:
        raise
    except Exception as error:
        raise InvalidModelError(
            f"the loss failed on the model's output {tuple(outputs.shape)} and targets "
            f"{tuple(targets.shape)}: {error}"
        ) from error
    if not math.isfinite(loss):  # two rows can be padding, or alike: ask all of them
        with torch.no_grad():
            outputs = _outputs(model, data.X_train)
            loss = float(loss_fn(outputs, data.y_train.clone()))
    if not math.isfinite(loss):  # every trial would stop at its first step as "diverged"
        raise InvalidModelError(
            f"the loss is {loss} on the untrained model's output for the training set, "
            "before any step, so no learning rate can train it; check the loss (a log of "
            "0, a division by 0), the model's output"
            + (" (it is not finite)" if not torch.isfinite(outputs).all() else "")
            + " and the data.")
    if metric is not None and metric.function is not None:
        _probe_metric(metric, model, data)
    return model


def _probe_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                loss_fn: Callable) -> torch.Tensor:
    """The loss of one small batch, with its gradient: a loss of one's own must give one
    number that backward() can follow, or every trial fails at its first step."""
    loss = loss_fn(model(inputs), targets)
    if not isinstance(loss, torch.Tensor):
        raise InvalidModelError(
            f"the loss returned a {type(loss).__name__}, not a tensor, so training cannot "
            "follow its gradient; compute it with torch operations on the outputs.")
    if loss.numel() != 1:
        raise InvalidModelError(
            f"the loss returned shape {tuple(loss.shape)}, not one number; reduce it (a "
            "torch loss with reduction='mean', or .mean() at the end).")
    if not loss.requires_grad:
        raise InvalidModelError(
            "the loss carries no gradient (it was detached, or computed from .item(), "
            ".detach() or numpy values), so no step can follow it; compute it with torch "
            "operations on the outputs.")
    return loss.detach()


def _numbers_hint(positions: tuple[int, ...], n_classes: int) -> str:
    """For a model whose output has the integer targets' own shape: they may be numbers to
    predict (or several 0/1 labels a row), not class labels."""
    if not positions and n_classes == 2:  # one logit a row for two classes
        return ("; for one logit a row, pass a loss of your own that reads it (binary "
                "cross-entropy with logits on outputs.squeeze(1) and targets.float()).")
    multi_hot = (", or several 0/1 labels a row (multi-hot) as floats with "
                 "loss=torch.nn.BCEWithLogitsLoss()" if positions and n_classes == 2 else "")
    return ("; integer y is read as class labels: if y holds numbers to predict (regression), "
            f"pass it as floats, y.astype('float32'){multi_hot}.")


def _one_hot(y: torch.Tensor) -> bool:
    """Do integer labels of shape (rows, C) look one-hot encoded (0s and one 1 a row)?"""
    return y.ndim == 2 and bool(((y == 0) | (y == 1)).all()) and bool((y.sum(dim=1) == 1).all())


def _compares_outputs(metric: Metric | None) -> bool:
    """Is it a built-in metric that reads the outputs as predictions of the targets (mse,
    accuracy...)? val_loss reads them through the loss; a user's metric as it likes."""
    return metric is not None and metric.function is not None and metric in METRICS.values()


def _not_a_tensor(outputs: Any) -> str:
    """Why a model's output is refused, and the wrapper that fixes it: the loss and the
    metrics read one tensor (logits or predictions)."""
    said = "the model must return one tensor (its logits or predictions), but returned "
    if isinstance(outputs, Mapping):
        keys = list(outputs)
        tensors = [k for k in keys if isinstance(outputs[k], torch.Tensor)]
        pick = next((k for k in tensors if "logit" in str(k)), tensors[0] if tensors else None)
        return (said + f"a {type(outputs).__name__} with keys {keys[:6]}; wrap it in a module "
                f"whose forward returns the one to train on, e.g. `return self.model(x)"
                f"[{pick!r}]`.")
    if isinstance(outputs, (tuple, list)):
        return (said + f"a {type(outputs).__name__} of {len(outputs)}; wrap it in a module whose "
                "forward returns the one to train on, e.g. `return self.model(x)[0]`.")
    return said + f"{type(outputs).__name__}."


def _dtype_hint(inputs: torch.Tensor, model: torch.nn.Module) -> str:
    if inputs.is_floating_point():
        other = {p.dtype for p in model.parameters() if p.is_floating_point()} - {inputs.dtype}
        if other:  # e.g. a model.double(): autolr passes float X as float32
            return (f", or make its parameters {inputs.dtype} (model.float()): they are "
                    f"{', '.join(sorted(map(str, other)))}, and X is passed as {inputs.dtype}.")
        return "."
    scale = " / 255" if inputs.dtype == torch.uint8 else ""
    return (f", or, if it takes floats, convert X (e.g. X.astype('float32'){scale}): X of "
            f"dtype {inputs.dtype} is passed as it is, for models that take integer ids.")


def _shared_state(model: torch.nn.Module, other: torch.nn.Module) -> list[str]:
    """The names of `model`'s tensors that training changes, trainable parameters and
    the running statistics of its normalization layers (BatchNorm's, updated in training
    mode even when frozen), whose memory `other` uses too. A frozen parameter or a
    constant buffer (a normalization's mean, a positional table) may be shared: no trial
    changes it."""
    def changed(tensor: torch.Tensor) -> bool:
        # a lazy module's parameter has no memory until the first forward; an empty one none
        return not torch.nn.parameter.is_lazy(tensor) and tensor.numel() > 0

    def storages(module: torch.nn.Module) -> dict[int, str]:
        found = {p.data_ptr(): name for name, p in module.named_parameters()
                 if p.requires_grad and changed(p)}
        for prefix, layer in module.named_modules():
            if isinstance(layer, torch.nn.modules.batchnorm._NormBase):
                found.update((b.data_ptr(), f"{prefix}.{name}".lstrip("."))
                             for name, b in layer.named_buffers(recurse=False) if changed(b))
        return found

    theirs = storages(other)
    return [name for pointer, name in storages(model).items() if pointer in theirs]


def _build(model_factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    try:
        model = model_factory()
    except InvalidModelError:
        raise
    except Exception as error:
        # where, in the user's code (none for a factory that takes arguments: the call
        # itself failed, here)
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if f.filename != __file__]
        where = (f" at {frames[-1].filename}:{frames[-1].lineno} (in {frames[-1].name})"
                 if frames else "")
        raise InvalidModelError(
            f"the model factory raised {error!r}{where}" + (
                "; it must build an nn.Module with no arguments."
                if isinstance(error, TypeError) else ".")) from error
    if not isinstance(model, torch.nn.Module):
        raise InvalidModelError(f"the model factory must return a torch.nn.Module, "
                                f"but returned {type(model).__name__}.")
    return model


def _probe_metric(metric: Metric, model: torch.nn.Module, data: TrainValData) -> None:
    """A metric must give one finite number over the validation set, as `evaluate` calls
    it (on all of it: a metric such as ROC AUC needs more than a couple of rows): e.g. a
    per-row vector without its .mean() would fail every trial, and r2 over constant
    targets is -inf or nan whatever the model does."""
    model.eval()
    with torch.no_grad():
        outputs = _val_outputs(model, data)
    targets = data.y_val.clone()
    try:
        value = metric.function(outputs, targets)
    except Exception as error:
        raise AutoLRError(f"the metric {metric.name!r} failed on the model's output "
                          f"{tuple(outputs.shape)} and targets {tuple(targets.shape)}: "
                          f"{error}") from error
    try:
        if isinstance(value, (str, bytes)):  # float("0.5") reads it: a bug all the same
            raise TypeError
        float(value)
    except (TypeError, ValueError, RuntimeError):
        shape = (tuple(value.shape) if hasattr(value, "shape")
                 else f"{type(value).__name__} {value!r}")
        raise AutoLRError(
            f"the metric {metric.name!r} must return one number for the whole validation "
            f"set, but it returned {shape}; reduce it (e.g. "
            ".mean() of a per-row value).") from None
    if math.isfinite(float(value)) or not torch.isfinite(outputs).all():
        return
    if metric is METRICS["r2"]:  # the validation data rules it out, whatever the model
        rows = len(targets)
        raise AutoLRError(
            f"the metric {metric.name!r} is {float(value)} on the validation set before any "
            f"training: it divides by the variance of the validation targets, which is 0 "
            f"({rows} row{'s' if rows != 1 else ''}"
            f"{', all alike' if rows > 1 else ''}); give a validation set whose targets "
            "vary, or use metric='mse'.")
    if metric not in METRICS.values():  # a built-in one overflowed: the outputs' business
        logger.warning("the metric %r is %s on the untrained model's validation outputs; "
                       "a trial whose metric is not finite at an evaluation stops there",
                       metric.name, float(value))
