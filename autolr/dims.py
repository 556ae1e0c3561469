"""Search dimensions as plain data, shared by schedules and the search space.

A dimension knows how to ask an Optuna trial for a value (`suggest`); the Ray backend
drives the same trials through Tune's Optuna searcher, so this is the only sampling code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autolr.errors import InvalidSpaceError


@dataclass(frozen=True)
class Float:
    """A float in [low, high], log-scaled if `log`, optionally on a grid of `step`."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise InvalidSpaceError(
                f"a range needs finite bounds, but got low={self.low}, high={self.high}."
            )
        if self.low > self.high:
            raise InvalidSpaceError(
                f"a range needs low <= high, but got low={self.low}, high={self.high}."
            )
        if self.log and self.low <= 0:
            raise InvalidSpaceError(
                f"a log-scaled range needs low > 0, but got low={self.low}."
            )

    def suggest(self, trial: Any, name: str) -> float:
        if self.low == self.high:
            return float(self.low)
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise InvalidSpaceError(
                f"an integer range needs low <= high, but got low={self.low}, high={self.high}."
            )

    def suggest(self, trial: Any, name: str) -> int:
        if self.low == self.high:
            return int(self.low)
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of values."""

    choices: tuple

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise InvalidSpaceError("a choice needs at least one option, but got an empty list.")

    def suggest(self, trial: Any, name: str) -> Any:
        if len(self.choices) == 1:
            return self.choices[0]
        return trial.suggest_categorical(name, list(self.choices))

    def contains(self, value: Any) -> bool:
        return value in self.choices


Dim = Float | Int | Choice
