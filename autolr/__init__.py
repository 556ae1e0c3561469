"""autolr: find the learning rate, schedule, warmup and batch size of a PyTorch model.

>>> import autolr
>>> "cosine" in autolr.schedules.names()
True
"""

from __future__ import annotations

import logging

from autolr import schedules
from autolr._tune import Trained, load, report, train, tune
from autolr.errors import (
    AutoLRError,
    InvalidDataError,
    InvalidModelError,
    InvalidSpaceError,
    UnknownNameError,
)
from autolr.result import TrialRecord, TuneResult
from autolr.space import SearchSpace, TrialConfig, presets

__all__ = [
    "AutoLRError", "InvalidDataError", "InvalidModelError", "InvalidSpaceError",
    "SearchSpace", "Trained", "TrialConfig", "TrialRecord", "TuneResult", "UnknownNameError",
    "load", "presets", "report", "schedules", "train", "tune",
]
__version__ = "0.1.0"

logging.getLogger("autolr").addHandler(logging.NullHandler())
