"""The number a sweep optimises: the validation loss by default, or a named metric."""

from __future__ import annotations

import functools
import hashlib
import re
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch

from autolr.data import CLASSIFICATION, IGNORED_LABEL, REGRESSION
from autolr.errors import AutoLRError, unknown_name

MINIMIZE, MAXIMIZE = "minimize", "maximize"
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    """A named function of (outputs, targets) over the whole validation set."""

    name: str
    direction: str
    function: MetricFn | None  # None: the training loss itself, on validation data
    tasks: tuple[str, ...] = (CLASSIFICATION, REGRESSION)


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The share of labels predicted, over rows or positions (padding left out)."""
    counted = targets != IGNORED_LABEL
    return (outputs.argmax(dim=1) == targets)[counted].float().mean()


def _mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean((outputs - targets) ** 2)


def _mae(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.abs(outputs - targets))


def _r2(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    residual = torch.sum((targets - outputs) ** 2)
    total = torch.sum((targets - targets.mean(dim=0)) ** 2)
    return 1.0 - residual / total


#: metrics with a perfect score other than 0: "10% worse" is then 10% more error (1 -
#: accuracy), not 10% less accuracy (which took in 3x the error rate at 96.5% accuracy)
PERFECT_SCORES = {"accuracy": 1.0, "r2": 1.0}

METRICS: dict[str, Metric] = {
    "val_loss": Metric("val_loss", MINIMIZE, None),
    "accuracy": Metric("accuracy", MAXIMIZE, _accuracy, (CLASSIFICATION,)),
    "mse": Metric("mse", MINIMIZE, _mse, (REGRESSION,)),
    "mae": Metric("mae", MINIMIZE, _mae, (REGRESSION,)),
    "r2": Metric("r2", MAXIMIZE, _r2, (REGRESSION,)),
}


def resolve_metric(metric: str | MetricFn | None, task: str,
                   direction: str | None = None) -> Metric:
    """The Metric for `metric` (a name, a callable, or None for the validation loss)."""
    if direction not in (None, MINIMIZE, MAXIMIZE):
        raise AutoLRError(f"direction must be 'minimize' or 'maximize', but got {direction!r}.")
    if metric is None:
        metric = "val_loss"  # and a direction given with it is checked below
    if callable(metric):
        name = getattr(metric, "__name__", "custom_metric")
        if direction is None:  # a score minimized by default would pick the worst config
            raise AutoLRError(
                f"a metric of your own ({name}) needs its direction: direction='maximize' "
                "for a score such as accuracy, direction='minimize' for an error or a loss.")
        return Metric(name, direction, metric)
    if metric not in METRICS:
        raise unknown_name("metric", metric, METRICS)
    found = METRICS[metric]
    if task not in found.tasks:
        fitting = sorted(name for name, m in METRICS.items() if task in m.tasks)
        raise AutoLRError(
            f"metric {metric!r} needs a {' or '.join(found.tasks)} task, but this data is "
            f"{task} (inferred from the dtype of y); use one of {fitting}, or pass y as "
            f"{'integer labels' if task == REGRESSION else 'floats'}."
        )
    if direction is not None and direction != found.direction:
        raise AutoLRError(
            f"metric {metric!r} is always {found.direction}d; drop direction={direction!r}."
        )
    return found


def default_loss(task: str) -> torch.nn.Module:
    """Cross-entropy for class labels, mean squared error for float targets."""
    return torch.nn.CrossEntropyLoss() if task == CLASSIFICATION else torch.nn.MSELoss()


def loss_name(loss: Callable) -> str:
    """The loss trained on (`loss=`, or the task's default) as a resume compares it, stable
    from one run of a script to the next (a repr may hold a memory address): a loss
    module's class and settings ('CrossEntropyLoss(label_smoothing=0.2, ...)', a weight
    tensor by a digest of its values), a function's name and a digest of its code (two
    lambdas differ; a named one is its module and name), a partial's function and arguments."""
    if isinstance(loss, functools.partial):
        given = [*map(repr, loss.args), *(f"{k}={v!r}" for k, v in sorted(loss.keywords.items()))]
        return f"partial({loss_name(loss.func)}, {', '.join(given)})"
    if isinstance(loss, torch.nn.Module):
        settings = [f"{key}={value!r}" for key, value in sorted(vars(loss).items())
                    if not key.startswith("_") and key != "training"
                    and isinstance(value, (bool, int, float, str, type(None)))]
        settings += [f"{key}=<{_digest(tensor.detach().cpu().numpy().tobytes())}>"
                     for key, tensor in sorted(loss.named_buffers())]
        return f"{type(loss).__name__}({', '.join(settings)})"
    named = loss if hasattr(loss, "__qualname__") else type(loss)
    name = f"{getattr(named, '__module__', '')}.{named.__qualname__}".lstrip(".")
    code = getattr(loss, "__code__", None)
    if code is None or "<" not in name:  # a library's function: its name says which
        return name
    return f"{name}<{_digest(_code_bytes(code))}>"


def code_digest(function: Callable) -> str:
    """A digest of a function's code ('' for a callable without any): another body under
    the same name has another digest (comments aside; another Python version may too)."""
    while isinstance(function, functools.partial):
        function = function.func
    code = getattr(function, "__code__", None)  # a callable object's: none (not told apart)
    return _digest(_code_bytes(code)) if code is not None else ""


def _code_bytes(code: types.CodeType) -> bytes:
    """A function's code as bytes stable from one run to the next: a nested code object (a
    comprehension's, on Python 3.11) is itself in its repr, which holds its address and
    line; without one, the bytes are those of autolr's first digests (stored sweeps)."""
    consts = tuple(f"<code {_digest(_code_bytes(c))}>" if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.co_code + repr(consts).encode()


_MODULE_LOSS = re.compile(r"(\w+)\((.*)\)")
_SETTING = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|<[0-9a-f]+>|[^,]+)")


def same_loss(stored: str, now: str) -> bool:
    """Do two `loss_name`s name the same loss? A loss module's settings are compared where
    both name one: a torch release that adds a setting (at its default) to a loss class
    must not refuse the resume of a sweep stored before it."""
    if stored == now:
        return True
    old, new = _MODULE_LOSS.fullmatch(stored), _MODULE_LOSS.fullmatch(now)
    if not (old and new) or old[1] != new[1]:
        return False
    old_settings, new_settings = (dict(_SETTING.findall(m[2])) for m in (old, new))
    # a tensor (a class weight, by digest) is there only when given: one side alone is
    # another loss, not another torch
    tensors = {key for settings in (old_settings, new_settings)
               for key, value in settings.items() if value.startswith("<")}
    return all(old_settings.get(key) == new_settings.get(key)
               for key in (old_settings.keys() & new_settings.keys()) | tensors)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]
