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
#: a best of 6 one-run trials on shuffled digits labels reached 0.111)
NOTHING_SHARE = 0.02


def constant_prediction(data: TrainValData, loss_fn: Callable, metric: Metric,
                        output_shape: Sequence[int]) -> dict[str, Any] | None:
    """{'value': the metric of the best constant output, 'prediction': what it is}, or
    None where no constant can stand in for the model's output (a loss of one's own that
    reads another shape, a metric that fails on it).

    Classification: the logits of the training labels' shares (smoothed, so a class absent
    from training costs a finite loss), which predicts the most common class. Regression:
    the training targets' mean or median, whichever scores better (the median is MAE's
    best constant)."""
    n_val = len(data.y_val)
    if data.task == CLASSIFICATION:
        classes = output_shape[0] if output_shape else 0
        if classes < (data.n_classes or 0) or tuple(output_shape[1:]) != tuple(
                data.y_val.shape[1:]):
            return None
        labels = data.y_train[data.y_train != IGNORED_LABEL].long()
        counts = torch.bincount(labels.cpu(), minlength=classes).double()
        logits = torch.log((counts + 1.0) / (counts.sum() + classes)).float()
        shape = (1, classes) + (1,) * (len(output_shape) - 1)
        outputs = logits.to(data.y_val.device).view(shape).expand(n_val, *output_shape)
        common = int(counts.argmax())
        candidates = {f"the training labels' shares, class {common} for every row": outputs}
    else:
        if tuple(output_shape) != tuple(data.y_train.shape[1:]):
            return None
        targets = data.y_train.float()
        candidates = {
            f"the training targets' {name} for every row":
                centre.to(data.y_val.dtype).expand(n_val, *output_shape)
            for name, centre in (("mean", targets.mean(dim=0)),
                                 ("median", targets.median(dim=0).values))}
    scored = {}
    for words, outputs in candidates.items():
        try:
            value = _score(outputs.contiguous(), data, loss_fn, metric)
        except Exception:  # a loss or metric of one's own that reads something else
            return None
        if math.isfinite(value):
            scored[words] = value
    if not scored:
        return None
    sign = -1.0 if metric.direction == MAXIMIZE else 1.0
    words = min(scored, key=lambda w: sign * scored[w])
    return {"value": scored[words], "prediction": words}


@torch.no_grad()
def _score(outputs: torch.Tensor, data: TrainValData, loss_fn: Callable,
           metric: Metric) -> float:
    """As `training.evaluate` scores a model's outputs (copies of the targets, too)."""
    if metric.function is None:
        return float(loss_fn(outputs, data.y_val.clone()))
    return float(metric.function(outputs, data.y_val.clone()))


def learned_nothing(best_value: float | None, chance: dict[str, Any] | None, metric: str,
                    direction: str) -> bool:
    """Whether a best value is no better than the constant prediction `chance`: within
    `NOTHING_SHARE` of its distance from a perfect score (`PERFECT_SCORES`, else 0)."""
    if best_value is None or not chance or not math.isfinite(best_value):
        return False
    constant = float(chance["value"])
    sign = -1.0 if direction == MAXIMIZE else 1.0
    margin = NOTHING_SHARE * abs(constant - PERFECT_SCORES.get(metric, 0.0))
    return sign * (constant - best_value) <= margin
