"""Shared fixtures: `seed` makes a test's randomness repeatable."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture
def seed() -> int:
    """Seed Python's, numpy's and torch's global generators with 0; return the seed."""
    value = 0
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits, scaled to [0, 1]: (X, y)."""
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture
def mlp():
    """A factory of the small digits MLP (64-32-10) the end-to-end tests tune."""
    def make() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                   torch.nn.Linear(32, 10))
    return make
