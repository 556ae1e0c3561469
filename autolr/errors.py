"""Errors autolr raises on bad input (every message says what would be accepted), and when
a sweep stops part way."""

from __future__ import annotations

from collections.abc import Iterable


class AutoLRError(ValueError):
    """Base class of autolr's errors: most often a bad argument, caught before any
    training starts; also a sweep with no completed trial asked for its best config, a
    file that cannot be written, and `SweepStopped`."""


class InvalidDataError(AutoLRError):
    """The data cannot be trained on as given."""


class InvalidModelError(AutoLRError):
    """The model is not usable: wrong type, failing forward, wrong output shape."""


class InvalidSpaceError(AutoLRError):
    """A search space, preset or schedule parameter is malformed."""


class SweepStopped(AutoLRError):
    """Not bad input: the sweep stopped part way (a worker process died, killed by the
    system, say); its finished trials are kept, and running it again resumes it."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a sweep that had no storage: its finished trials would
    have gone with the call, so they come with the interrupt, in `result` (a TuneResult:
    `except autolr.SweepInterrupted as stop: result = stop.result`; in a notebook,
    `sys.last_value.result`). Still a KeyboardInterrupt: a script stops as it did. With a
    storage the trials are kept there, and the same call resumes the sweep."""

    def __init__(self, records: list) -> None:
        self.records, self.result = records, None  # `tune` makes the result of them
        super().__init__(
            f"interrupted: the {len(records)} finished trial(s) are in this exception's "
            ".result (except autolr.SweepInterrupted as stop: result = stop.result; in a "
            "notebook, sys.last_value.result); pass storage= to keep a sweep's trials on "
            "disk, and resume it by running the same call again.")


class UnknownNameError(AutoLRError):
    """A name (schedule, preset, optimizer, metric) that is not registered."""


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> UnknownNameError:
    """The one wording for an unknown registry name: list what exists."""
    choices = ", ".join(sorted(valid))
    return UnknownNameError(f"unknown {kind} {name!r}; valid {kind}s are: {choices}.")


def unknown_study(storage: object, study_name: str | None, names: Iterable[str]) -> AutoLRError:
    """The one wording for a stored sweep that is not there: say what the storage holds."""
    names = list(names)
    listed = ", ".join(map(repr, names))
    if not names:
        return AutoLRError(f"{str(storage)!r} holds no sweep yet: run autolr.tune (or "
                           "`autolr tune`) with this storage first, or check the path.")
    if study_name is None:
        return AutoLRError(f"{str(storage)!r} holds {len(names)} sweeps ({listed}); say "
                           "which with study_name= (`--study` on the command line).")
    return AutoLRError(f"no study {study_name!r} in {str(storage)!r}; it holds: {listed}.")
