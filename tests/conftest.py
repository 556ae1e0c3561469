"""Shared fixtures: `seed` makes a test's randomness repeatable."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture
def seed() -> int:
    """Seed Python's, numpy's and torch's global generators with 0; return the seed."""
    value = 0
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value
