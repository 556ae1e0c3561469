"""A sweep that learned nothing says so: the constant prediction's score, and the warning."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

import autolr
from autolr.chance import constant_prediction, learned_nothing
from autolr.data import CLASSIFICATION, IGNORED_LABEL, REGRESSION, TrainValData
from autolr.metrics import METRICS, Metric


def classes(train: list[int], val: list[int], n_classes: int = 3) -> TrainValData:
    return TrainValData(torch.zeros(len(train), 2), torch.tensor(train),
                        torch.zeros(len(val), 2), torch.tensor(val), CLASSIFICATION, n_classes)


def targets(train: list[float], val: list[float]) -> TrainValData:
    return TrainValData(torch.zeros(len(train), 2), torch.tensor(train).reshape(-1, 1),
                        torch.zeros(len(val), 2), torch.tensor(val).reshape(-1, 1), REGRESSION)


def test_classification_predicts_the_training_shares() -> None:
    data = classes([0, 1, 1, 1, 2, 2], [1, 1, 0, 2])
    accuracy = constant_prediction(data, torch.nn.CrossEntropyLoss(), METRICS["accuracy"], (3,))
    assert accuracy["value"] == pytest.approx(0.5)  # class 1, half of the validation labels
    assert "class 1 for every row" in accuracy["prediction"]
    loss = constant_prediction(data, torch.nn.CrossEntropyLoss(), METRICS["val_loss"], (3,))
    shares = np.array([2, 4, 3]) / 9  # one added to each count of 6
    assert loss["value"] == pytest.approx(-np.mean(np.log(shares[[1, 1, 0, 2]])), rel=1e-5)


def test_a_class_missing_from_training_costs_a_finite_loss() -> None:
    loss = constant_prediction(classes([0, 0, 1], [2, 0]), torch.nn.CrossEntropyLoss(),
                               METRICS["val_loss"], (3,))
    assert math.isfinite(loss["value"])


def test_per_position_labels_leave_padding_out() -> None:
    train = torch.tensor([[0, 1, IGNORED_LABEL], [1, 1, IGNORED_LABEL]])
    val = torch.tensor([[1, 0, IGNORED_LABEL]])
    data = TrainValData(torch.zeros(2, 3), train, torch.zeros(1, 3), val, CLASSIFICATION, 2)
    chance = constant_prediction(data, torch.nn.CrossEntropyLoss(), METRICS["accuracy"], (2, 3))
    assert chance["value"] == pytest.approx(0.5)  # class 1 on 1 of the 2 counted positions


def test_regression_takes_the_better_of_mean_and_median() -> None:
    data = targets([0.0, 0.0, 0.0, 10.0], [0.0, 0.0])
    mse = constant_prediction(data, torch.nn.MSELoss(), METRICS["mse"], (1,))
    mae = constant_prediction(data, torch.nn.MSELoss(), METRICS["mae"], (1,))
    assert "median" in mae["prediction"] and mae["value"] == pytest.approx(0.0)
    # mean 2.5 (mse 6.25) against median 0 (mse 0): mse too prefers the median here
    assert mse["value"] == pytest.approx(0.0)
    spread = targets([0.0, 1.0, 2.0, 9.0], [2.0, 4.0])  # mean 3, median 1.5
    assert "mean" in constant_prediction(spread, torch.nn.MSELoss(), METRICS["mse"],
                                         (1,))["prediction"]


def test_a_loss_of_ones_own_gets_the_constant_that_fits_it() -> None:
    # a weighted cross-entropy: its best constant leans to the weighted class (helper-39:
    # the plain shares' 0.796 left a bias-only model at 0.656 unwarned)
    data = classes([0] * 40 + [1] * 60, [0] * 4 + [1] * 6, n_classes=2)
    weighted = torch.nn.CrossEntropyLoss(weight=torch.tensor([3.0, 1.0]))
    chance = constant_prediction(data, weighted, METRICS["val_loss"], (2,))
    p = 120 / 180  # class 0's weighted share
    assert chance["value"] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)),
                                            rel=1e-3)
    # BCE on 0/1 targets (a regression task by dtype): the logit of the positives' share,
    # not their mean taken as a logit
    flags = targets([1.0] + [0.0] * 9, [1.0] + [0.0] * 9)
    bce = constant_prediction(flags, torch.nn.BCEWithLogitsLoss(), METRICS["val_loss"], (1,))
    assert bce["value"] == pytest.approx(-(0.1 * math.log(0.1) + 0.9 * math.log(0.9)),
                                         rel=1e-3)
    assert "fits the training rows best under the loss" in bce["prediction"]

    def gaussian_nll(out, y):  # a mean and a log-variance a target
        return (0.5 * (out[:, 1:] + (y - out[:, :1]) ** 2 / out[:, 1:].exp())).mean()
    spread = targets([0.0, 2.0, 4.0, 6.0], [3.0, 3.0])
    nll = constant_prediction(spread, gaussian_nll, METRICS["val_loss"], (2,))
    assert nll["value"] == pytest.approx(0.5 * math.log(5.0), rel=1e-3)  # mean 3, variance 5


def test_no_constant_where_none_can_be_scored() -> None:
    data = targets([0.0, 1.0], [1.0])
    failing = Metric("own", "maximize", lambda out, y: 1 / 0)
    assert constant_prediction(data, torch.nn.MSELoss(), failing, (1,)) is None
    assert constant_prediction(classes([0, 2], [2]), torch.nn.CrossEntropyLoss(),
                               METRICS["accuracy"], (2,)) is None  # 3 classes, 2 outputs
    # a loss with no minimum: no constant fits it, and none other is scored by it
    assert constant_prediction(data, lambda out, y: out.sum(), METRICS["val_loss"], (2,)) is None


@pytest.mark.parametrize(("best", "metric", "direction", "nothing"), [
    (0.10, "accuracy", "maximize", True),    # at chance
    (0.115, "accuracy", "maximize", True),   # within 2% of chance's 0.9 error
    (0.12, "accuracy", "maximize", False),
    (2.26, "val_loss", "minimize", True),    # 1.7% below chance's 2.30
    (2.2, "val_loss", "minimize", False),
    (2.5, "val_loss", "minimize", True),     # worse than chance
    (0.05, "r2", "maximize", False),
])
def test_learned_nothing_within_a_share_of_the_error(best, metric, direction, nothing) -> None:
    chance = {"value": {"accuracy": 0.1, "val_loss": 2.3, "r2": -0.001}[metric],
              "prediction": "x"}
    assert learned_nothing(best, chance, metric, direction) is nothing
    assert learned_nothing(best, None, metric, direction) is False  # unknown: no warning


def test_a_sweep_on_shuffled_labels_says_it_learned_nothing(digits, mlp, tmp_path, caplog):
    X, y = digits
    shuffled = np.random.default_rng(0).permutation(y)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    with caplog.at_level(logging.WARNING, logger="autolr"):
        result = autolr.tune(mlp, (X, shuffled), n_trials=12, epochs=2, metric="accuracy",
                             storage=storage, progress=False)
    assert result.chance["value"] == pytest.approx(np.bincount(shuffled).max() / len(y),
                                                   abs=0.05)
    assert result.learned_nothing and "learned nothing" in caplog.text
    assert "standard error on these validation labels" in result.learned_nothing
    assert "learned nothing" in result.summary()
    # kept with the sweep: a report from storage or a saved result says it too
    assert autolr.load(storage).learned_nothing == result.learned_nothing
    saved = autolr.TuneResult.load(result.save(tmp_path / "r.json"))
    assert saved.chance == result.chance
    page = saved.report(tmp_path / "r.html").read_text("utf-8")
    assert "cannot be told from a model that learned nothing" in page
    assert "a constant prediction (learned nothing)" in page
    assert "the band below spans learning rates that all learned about as little" in page


def test_a_sweep_that_learned_says_nothing_of_it(digits, mlp, caplog):
    with caplog.at_level(logging.WARNING, logger="autolr"):
        result = autolr.tune(mlp, digits, n_trials=4, epochs=2, progress=False)
    assert result.chance["value"] == pytest.approx(math.log(10), rel=0.02)  # balanced classes
    assert result.learned_nothing is None and "learned nothing" not in caplog.text
