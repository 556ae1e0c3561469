"""The optimizers a search may choose, by name (a registry that fails loudly)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from autolr.errors import unknown_name

OptimizerFactory = Callable[[Iterable[Any], float, float], torch.optim.Optimizer]

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adamw": lambda params, lr, wd: torch.optim.AdamW(params, lr=lr, weight_decay=wd),
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: torch.optim.SGD(
        params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd
    ),
    "rmsprop": lambda params, lr, wd: torch.optim.RMSprop(params, lr=lr, weight_decay=wd),
    "adagrad": lambda params, lr, wd: torch.optim.Adagrad(params, lr=lr, weight_decay=wd),
}

# The plain-PyTorch spelling of each, for the "use it" snippet of results and reports.
OPTIMIZER_CODE: dict[str, str] = {
    "adamw": "torch.optim.AdamW(model.parameters(), lr={lr!r}, weight_decay={wd!r})",
    "adam": "torch.optim.Adam(model.parameters(), lr={lr!r}, weight_decay={wd!r})",
    "sgd": "torch.optim.SGD(model.parameters(), lr={lr!r}, momentum=0.9, nesterov=True, "
    "weight_decay={wd!r})",
    "rmsprop": "torch.optim.RMSprop(model.parameters(), lr={lr!r}, weight_decay={wd!r})",
    "adagrad": "torch.optim.Adagrad(model.parameters(), lr={lr!r}, weight_decay={wd!r})",
}


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)
    return name


def make_optimizer(name: str, params: Iterable[Any], lr: float,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """A torch optimizer by name: adamw, adam, sgd (momentum 0.9, Nesterov), rmsprop, adagrad."""
    return OPTIMIZERS[check_optimizer(name)](params, lr, weight_decay)
