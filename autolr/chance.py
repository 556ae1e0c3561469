"""What a model that learned nothing scores: the best constant prediction, fitted to the
training targets and scored on the validation set as a trial is. A sweep whose best config
is no better has tuned noise (labels shuffled apart from their inputs, unscaled inputs, an
output the loss cannot read): its report would show a learning-rate optimum that means
nothing, so the result says so instead.

>>> import torch
>>> from autolr.data import TrainValData
>>> from autolr.metrics import METRICS
>>> labels = torch.tensor([0, 0, 0, 1])
>>> data = TrainValData(torch.zeros(4, 2), labels, torch.zeros(4, 2), labels, "classification", 2)
>>> chance = constant_prediction(data, torch.nn.CrossEntropyLoss(), METRICS["accuracy"], (2,))
>>> print(chance["value"], "by", chance["prediction"])
0.75 by the training labels' shares, class 0 for every row
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from autolr.data import CLASSIFICATION, IGNORED_LABEL, TrainValData
from autolr.metrics import MAXIMIZE, PERFECT_SCORES, Metric

#: a best config within this share of the constant prediction's distance from a perfect
#: score learned nothing worth tuning (chance's accuracy 0.1 on 10 classes: up to 0.118;
#: a best of 6 one-run trials on shuffled digits labels reached 0.111). Only where the
#: perfect score is known: a loss or an error (0), accuracy and r2 (1)
NOTHING_SHARE = 0.02
#: ...or within this many standard errors of accuracy on the validation labels at chance's
#: rate: on breast_cancer's 114 validation rows one row is 0.9% and a shuffled sweep's best
#: came out one row above chance (the share alone asked for 0.7%)
NOTHING_STANDARD_ERRORS = 2.0
#: the fitted constant: at most this many training rows x outputs a row (a subsample: it
#: takes a few LBFGS steps), and none where one row's outputs alone are more
FIT_ELEMENTS = 2_000_000
FIT_STEPS = 100


def constant_prediction(data: TrainValData, loss_fn: Callable, metric: Metric,
                        output_shape: Sequence[int]) -> dict[str, Any] | None:
    """{'value': the metric of the best constant output, 'prediction': what it is, and for
    accuracy 'standard_error'}, or None where no constant can stand in for the model's
    output (a metric that fails on it).

    The candidates: the constant output that minimises the training loss over the training
    rows (any loss: a weighted cross-entropy, BCE on 0/1 targets, a mean and a variance a
    target); for classification, the logits of the training labels' shares (smoothed, so a
    class absent from training costs a finite loss); for regression, the targets' mean and
    median (MAE's best constant). The one the metric scores best is kept."""
    candidates = {}  # the plainer first: a tie keeps the one easier to say
    if data.task == CLASSIFICATION:
        shares = _label_shares(data, output_shape)
        if shares is not None:
            candidates.update(shares)
    elif tuple(output_shape) == tuple(data.y_train.shape[1:]):
        targets = data.y_train.float()
        for name, centre in (("mean", targets.mean(dim=0)),
                             ("median", targets.median(dim=0).values)):
            candidates[f"the training targets' {name} for every row"] = centre
    fitted = _fitted_constant(data, loss_fn, output_shape)
    if fitted is not None:
        words = "the constant output that fits the training rows best under the loss"
        if data.task == CLASSIFICATION and len(output_shape) == 1:  # what it predicts
            words += f", class {int(fitted.argmax())} for every row"
        candidates[words] = fitted
    scored = {}
    for words, constant in candidates.items():
        outputs = constant.to(data.y_val.device, data.y_val.dtype
                              if data.task != CLASSIFICATION else torch.float32)
        try:
            value = _score(outputs.expand(len(data.y_val), *output_shape).contiguous(), data,
                           loss_fn, metric)
        except Exception:  # a loss or metric of one's own that reads something else
            continue
        if math.isfinite(value):
            scored[words] = value
    if not scored:
        return None
    sign = -1.0 if metric.direction == MAXIMIZE else 1.0
    words = min(scored, key=lambda w: sign * scored[w])
    chance = {"value": scored[words], "prediction": words}
    if metric.name == "accuracy":  # the built-in one: its noise is a binomial's
        counted = int((data.y_val != IGNORED_LABEL).sum())
        p = min(max(scored[words], 0.0), 1.0)
        chance["standard_error"] = math.sqrt(p * (1 - p) / max(counted, 1))
    return chance


def _label_shares(data: TrainValData, output_shape: Sequence[int]
                  ) -> dict[str, torch.Tensor] | None:
    """The training labels' shares as logits, shaped as one row's output; None where the
    output holds no logit a class (one logit for two classes, with BCE)."""
    classes = output_shape[0] if output_shape else 0
    if classes < (data.n_classes or 0) or tuple(output_shape[1:]) != tuple(
            data.y_val.shape[1:]):
        return None
    labels = data.y_train[data.y_train != IGNORED_LABEL].long()
    counts = torch.bincount(labels.cpu(), minlength=classes).double()
    logits = torch.log((counts + 1.0) / (counts.sum() + classes)).float()
    shape = (classes,) + (1,) * (len(output_shape) - 1)
    common = int(counts.argmax())
    return {f"the training labels' shares, class {common} for every row":
            logits.view(shape).expand(*output_shape)}


def _fitted_constant(data: TrainValData, loss_fn: Callable,
                     output_shape: Sequence[int]) -> torch.Tensor | None:
    """The one row's output that minimises `loss_fn` over (a subsample of) the training
    rows, by LBFGS from zero; None where it cannot be fitted (too large, a loss that fails
    on it or goes non-finite)."""
    per_row = math.prod(output_shape)
    rows = min(len(data.y_train), FIT_ELEMENTS // max(per_row, 1))
    if rows < 1:
        return None
    generator = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(data.y_train), generator=generator)[:rows]
    targets = data.y_train[chosen.to(data.y_train.device)]
    constant = torch.zeros(tuple(output_shape), device=targets.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([constant], max_iter=FIT_STEPS,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(constant.expand(rows, *output_shape), targets.clone())
        loss.backward()
        return loss

    try:
        with torch.enable_grad():
            optimizer.step(closure)
    except Exception:  # a loss of one's own that wants something else (a model's extras)
        return None
    fitted = constant.detach()
    return fitted if bool(torch.isfinite(fitted).all()) else None


@torch.no_grad()
def _score(outputs: torch.Tensor, data: TrainValData, loss_fn: Callable,
           metric: Metric) -> float:
    """As `training.evaluate` scores a model's outputs (copies of the targets, too)."""
    if metric.function is None:
        return float(loss_fn(outputs, data.y_val.clone()))
    return float(metric.function(outputs, data.y_val.clone()))


def learned_nothing(best_value: float | None, chance: dict[str, Any] | None, metric: str,
                    direction: str) -> bool:
    """Whether a best value cannot be told from the constant prediction `chance`: within
    `NOTHING_SHARE` of its distance from a perfect score where that is known (a metric
    minimised: 0; `PERFECT_SCORES`), within `NOTHING_STANDARD_ERRORS` of accuracy's noise,
    or no better at all (a score of one's own, maximised: its perfect score is unknown)."""
    if best_value is None or not chance or not math.isfinite(best_value):
        return False
    constant = float(chance["value"])
    sign = -1.0 if direction == MAXIMIZE else 1.0
    perfect = PERFECT_SCORES.get(metric, None if direction == MAXIMIZE else 0.0)
    margin = NOTHING_SHARE * abs(constant - perfect) if perfect is not None else 0.0
    margin = max(margin, NOTHING_STANDARD_ERRORS * float(chance.get("standard_error") or 0.0))
    return sign * (constant - best_value) <= margin
