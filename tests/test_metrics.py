"""The number a sweep optimises: names, directions, task checks and values."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from autolr.data import CLASSIFICATION, REGRESSION
from autolr.errors import AutoLRError, UnknownNameError
from autolr.metrics import MAXIMIZE, MINIMIZE, default_loss, resolve_metric


@pytest.mark.parametrize(("name", "task", "direction"), [
    ("val_loss", CLASSIFICATION, MINIMIZE),
    ("val_loss", REGRESSION, MINIMIZE),
    ("accuracy", CLASSIFICATION, MAXIMIZE),
    ("mse", REGRESSION, MINIMIZE),
    ("mae", REGRESSION, MINIMIZE),
    ("r2", REGRESSION, MAXIMIZE),
])
def test_names_and_directions(name, task, direction):
    metric = resolve_metric(name, task)
    assert (metric.name, metric.direction) == (name, direction)
    assert resolve_metric(name, task, direction).direction == direction


@pytest.mark.parametrize("task", [CLASSIFICATION, REGRESSION])
def test_none_is_the_validation_loss(task):
    metric = resolve_metric(None, task)
    assert (metric.name, metric.direction, metric.function) == ("val_loss", MINIMIZE, None)


def test_accuracy_on_regression_says_what_to_do():
    with pytest.raises(AutoLRError,
                       match=r"metric 'accuracy' needs a classification task, but this data is "
                             r"regression \(inferred from the dtype of y\); use one of "
                             r"\['mae', 'mse', 'r2', 'val_loss'\], or pass y as integer labels"):
        resolve_metric("accuracy", REGRESSION)


@pytest.mark.parametrize("name", ["mse", "mae", "r2"])
def test_regression_metrics_on_classification_say_what_to_do(name):
    with pytest.raises(AutoLRError, match=r"needs a regression task.*\['accuracy', 'val_loss'\]"
                                          r".*pass y as floats"):
        resolve_metric(name, CLASSIFICATION)


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(UnknownNameError,
                       match="unknown metric 'f1'; valid metrics are: accuracy, mae, mse, r2, "
                             "val_loss"):
        resolve_metric("f1", CLASSIFICATION)


def test_direction_is_validated():
    with pytest.raises(AutoLRError, match="direction must be 'minimize' or 'maximize'"):
        resolve_metric(None, CLASSIFICATION, "up")
    with pytest.raises(AutoLRError, match="'accuracy' is always maximized; drop direction"):
        resolve_metric("accuracy", CLASSIFICATION, MINIMIZE)
    with pytest.raises(AutoLRError, match="'mse' is always minimized"):
        resolve_metric("mse", REGRESSION, MAXIMIZE)


def test_a_callable_metric():
    def balanced(outputs, targets):
        return (outputs.argmax(1) == targets).float().mean()

    metric = resolve_metric(balanced, CLASSIFICATION, MAXIMIZE)
    assert (metric.name, metric.direction, metric.function) == ("balanced", MAXIMIZE, balanced)
    # no default: a score minimized by mistake would pick the worst config
    with pytest.raises(AutoLRError, match=r"\(balanced\) needs its direction: "
                                          r"direction='maximize' for a score"):
        resolve_metric(balanced, CLASSIFICATION)


def test_accuracy_over_positions_leaves_padding_out():
    logits = torch.tensor([[[2.0, 0.0, 0.0],    # (batch 1, C 2, 3 tokens):
                            [0.0, 1.0, 1.0]]])  # predicts 0, 1, 1
    tags = torch.tensor([[0, 0, -100]])  # the third token is padding: 1 of 2, not 1 of 3
    assert float(resolve_metric("accuracy", CLASSIFICATION).function(logits, tags)) == 0.5


OUTPUTS = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
TARGETS = torch.tensor([[1.0], [2.0], [2.0], [6.0]])


@pytest.mark.parametrize(("name", "expected", "sklearn_fn"), [
    ("mse", 1.25, mean_squared_error),  # (0 + 0 + 1 + 4) / 4
    ("mae", 0.75, mean_absolute_error),  # (0 + 0 + 1 + 2) / 4
    ("r2", 1 - 5 / 14.75, r2_score),  # residual 5; total around the mean 2.75 is 14.75
])
def test_regression_values_on_a_tiny_example(name, expected, sklearn_fn):
    value = resolve_metric(name, REGRESSION).function(OUTPUTS, TARGETS)
    assert float(value) == pytest.approx(expected)
    assert float(value) == pytest.approx(sklearn_fn(TARGETS.numpy(), OUTPUTS.numpy()))


def test_r2_is_one_for_a_perfect_fit_and_zero_for_the_mean():
    r2 = resolve_metric("r2", REGRESSION).function
    assert float(r2(TARGETS, TARGETS)) == pytest.approx(1.0)
    assert float(r2(torch.full_like(TARGETS, 2.75), TARGETS)) == pytest.approx(0.0)


def test_r2_with_two_targets_is_variance_weighted():
    outputs = torch.tensor([[1.0, 10.0], [2.0, 21.0], [3.0, 29.0], [4.0, 42.0]])
    targets = torch.tensor([[1.5, 10.0], [2.0, 20.0], [2.5, 30.0], [4.5, 40.0]])
    value = resolve_metric("r2", REGRESSION).function(outputs, targets)
    assert float(value) == pytest.approx(
        r2_score(targets.numpy(), outputs.numpy(), multioutput="variance_weighted"))


def test_accuracy_on_a_tiny_example():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    targets = torch.tensor([0, 1, 2, 2])  # the third is predicted as class 0
    value = resolve_metric("accuracy", CLASSIFICATION).function(logits, targets)
    assert float(value) == 0.75


def test_default_loss():
    assert isinstance(default_loss(CLASSIFICATION), torch.nn.CrossEntropyLoss)
    assert isinstance(default_loss(REGRESSION), torch.nn.MSELoss)


def test_a_loss_is_the_same_loss_when_a_newer_torch_adds_a_setting_to_its_class():
    from autolr.metrics import loss_name, same_loss

    plain = loss_name(torch.nn.CrossEntropyLoss())
    newer_torch = plain[:-1] + ", new_option=False)"  # a release adds one, at its default
    assert same_loss(plain, newer_torch) and same_loss(newer_torch, plain)
    smoothed = loss_name(torch.nn.CrossEntropyLoss(label_smoothing=0.2))
    weighted = loss_name(torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0])))
    assert not same_loss(plain, smoothed)  # a setting both name, changed
    assert not same_loss(plain, weighted) and not same_loss(weighted, plain)  # a weight
    assert not same_loss(plain, loss_name(torch.nn.MSELoss()))
    assert not same_loss("torch.nn.functional.mse_loss", "torch.nn.functional.l1_loss")
