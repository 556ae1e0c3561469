"""A model file for the `autolr` command: it defines model() and data().

    autolr tune examples/cli_model.py --trials 20 --epochs 10 --report report.html

model() builds a fresh network (called once per trial, seeded, so every trial starts from
the same weights); data() returns anything autolr.tune accepts, here (X, y).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler


def model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))


def data():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y
