"""autolr: find the learning rate, schedule, warmup and batch size of a PyTorch model.

>>> import autolr
>>> "cosine" in autolr.schedules.names()
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public names are loaded on first use (PEP 562): `import autolr` then costs nothing,
# so the `autolr` command can answer Ctrl-C and SIGTERM while torch is still loading.
_WHERE = {
    "Trained": "autolr._tune", "load": "autolr._tune", "report": "autolr._tune",
    "train": "autolr._tune", "tune": "autolr._tune",
    "AutoLRError": "autolr.errors", "InvalidDataError": "autolr.errors",
    "InvalidModelError": "autolr.errors", "InvalidSpaceError": "autolr.errors",
    "UnknownNameError": "autolr.errors", "SweepStopped": "autolr.errors",
    "SweepInterrupted": "autolr.errors",
    "TrialRecord": "autolr.result", "TuneResult": "autolr.result",
    "SearchSpace": "autolr.space", "TrialConfig": "autolr.space", "presets": "autolr.space",
}
__all__ = [
    "AutoLRError", "InvalidDataError", "InvalidModelError", "InvalidSpaceError",
    "SearchSpace", "SweepInterrupted", "SweepStopped", "Trained", "TrialConfig",
    "TrialRecord", "TuneResult", "UnknownNameError",
    "load", "presets", "report", "schedules", "train", "tune",
]
__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see
    from autolr import schedules
    from autolr._tune import Trained, load, report, train, tune
    from autolr.errors import (
        AutoLRError,
        InvalidDataError,
        InvalidModelError,
        InvalidSpaceError,
        SweepInterrupted,
        SweepStopped,
        UnknownNameError,
    )
    from autolr.result import TrialRecord, TuneResult
    from autolr.space import SearchSpace, TrialConfig, presets


def __getattr__(name: str) -> Any:
    if name == "schedules":
        return importlib.import_module("autolr.schedules")
    if name not in _WHERE:
        raise AttributeError(f"module 'autolr' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


# No NullHandler on the "autolr" logger: with none configured, Python's last-resort
# handler prints its warnings (a failed trial, a timeout that cut the sweep short, a
# metric not finite before training) to stderr; its info lines need logging configured.
