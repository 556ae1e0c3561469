"""Learning-rate schedules as pure functions, and the registry that names them.

Every schedule is `multiplier(step, total_steps, **params) -> float`: the factor applied
to the base learning rate at optimizer step `step` (0-based) of a run of `total_steps`.
No hidden state: the training loop, the torch adapter and the report all call the very
same function. Warmup is a wrapper that works with every family.

>>> from autolr import schedules
>>> round(schedules.multiplier("cosine", 50, 100), 3)
0.5
>>> schedules.multiplier("constant", 0, 100, warmup_steps=9)
0.1
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from autolr.dims import Choice, Dim, Float, Int
from autolr.errors import InvalidSpaceError, unknown_name

ScheduleFn = Callable[..., float]


def _cosine_between(start: float, end: float, fraction: float) -> float:
    """Half a cosine from `start` (fraction 0) to `end` (fraction 1)."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * fraction))


def constant(step: int, total_steps: int) -> float:
    """The base learning rate throughout."""
    return 1.0


def step_decay(step: int, total_steps: int, *, step_fraction: float = 0.33,
               gamma: float = 0.1) -> float:
    """Multiply by `gamma` every `step_fraction` of training."""
    period = max(1, round(step_fraction * total_steps))
    return gamma ** (step // period)


def multistep(step: int, total_steps: int, *, first: float = 0.5, second: float = 0.75,
              gamma: float = 0.1) -> float:
    """Multiply by `gamma` at two milestones, given as fractions of training."""
    progress = step / total_steps
    return gamma ** ((progress >= first) + (progress >= second))


def exponential(step: int, total_steps: int, *, final_fraction: float = 0.01) -> float:
    """Decay geometrically, reaching `final_fraction` of the base rate at the end."""
    return final_fraction ** (step / total_steps)


def cosine(step: int, total_steps: int, *, min_fraction: float = 0.0) -> float:
    """Half a cosine from the base rate down to `min_fraction` of it."""
    return _cosine_between(1.0, min_fraction, step / total_steps)


def cosine_restarts(step: int, total_steps: int, *, cycles: int = 3, cycle_mult: int = 1,
                    min_fraction: float = 0.0) -> float:
    """SGDR: `cycles` cosine decays, each `cycle_mult` times longer than the last."""
    progress = step / total_steps
    if cycle_mult == 1:  # in whole numbers: 15 / 100 / (1 / 20) came out at 2.999...
        index = min(step * cycles // total_steps, cycles - 1)
        return _cosine_between(1.0, min_fraction,
                               min((step * cycles - index * total_steps) / total_steps, 1.0))
    # cycle k has length L*m^k; the cycles fill the run: L*(m^c - 1)/(m - 1) = 1, so
    # cycle k starts at (m^k - 1)/(m^c - 1). Worked in m^(k - c) <= 1, which stays in
    # floats' range for any number of cycles (m^c overflowed past about 1000)
    tail = float(cycle_mult) ** -cycles  # m^-c: 0.0 once it underflows

    def start_of(k: int) -> float:
        return (float(cycle_mult) ** (k - cycles) - tail) / (1.0 - tail)

    position = progress * (1.0 - tail) + tail  # = m^(k-c) at the start of cycle k
    index = cycles + math.floor(math.log(position, cycle_mult)) if position > 0 else 0
    index = min(max(index, 0), cycles - 1)
    # the logarithm in floats can put a cycle's first step at the end of the one before
    # (1.5**k): checked against the cycles' starts, a hair of rounding allowed
    while index + 1 < cycles and progress >= start_of(index + 1) - 1e-12:
        index += 1
    while index > 0 and progress < start_of(index) - 1e-12:
        index -= 1
    start = start_of(index)
    length = start_of(index + 1) - start if index + 1 < cycles else 1.0 - start
    if length <= 0.0:  # step 0 with cycles so many that the first is below floats' reach
        return 1.0
    return _cosine_between(1.0, min_fraction, min(max((progress - start) / length, 0.0), 1.0))


def cyclic(step: int, total_steps: int, *, cycles: int = 2,
           base_fraction: float = 0.1) -> float:
    """Triangular cycles between `base_fraction` of the base rate and the base rate."""
    position = (step / total_steps * cycles) % 1.0
    triangle = 1.0 - abs(2.0 * position - 1.0)  # 0 -> 1 -> 0 within each cycle
    return base_fraction + (1.0 - base_fraction) * triangle


def one_cycle(step: int, total_steps: int, *, pct_start: float = 0.3,
              div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """Smith's one-cycle in torch's OneCycleLR's cosine form (same div_factor and
    final_div_factor): up to the peak, then down. Like the other schedules here it runs
    on progress = step / total_steps, so it peaks at step pct_start * total_steps (torch:
    one step sooner) and its last step is a step short of the final rate (torch reaches
    it): the same curve, about one step later (the two differ most on short runs and
    steep phases: by 3% of the peak rate over 100 steps at pct_start 0.3, 9% at 0.1)."""
    initial = 1.0 / div_factor
    final = initial / final_div_factor
    progress = step / total_steps
    if progress < pct_start:
        # rise from base/div_factor to the peak rate
        return _cosine_between(initial, 1.0, progress / pct_start)
    # anneal from the peak to far below the starting rate
    return _cosine_between(1.0, final, (progress - pct_start) / (1.0 - pct_start))


def linear(step: int, total_steps: int, *, end_fraction: float = 0.0) -> float:
    """Straight line from the base rate to `end_fraction` of it."""
    return 1.0 - (1.0 - end_fraction) * step / total_steps


def polynomial(step: int, total_steps: int, *, power: float = 2.0,
               end_fraction: float = 0.0) -> float:
    """Polynomial decay `(1 - progress)^power` towards `end_fraction`."""
    return end_fraction + (1.0 - end_fraction) * (1.0 - step / total_steps) ** power


def inverse_sqrt(step: int, total_steps: int, *, timescale: float = 0.05) -> float:
    """Transformer-style 1/sqrt decay; `timescale` (a fraction of training) sets its pace."""
    timescale_steps = max(1.0, timescale * total_steps)
    return 1.0 / math.sqrt(1.0 + step / timescale_steps)


@dataclass(frozen=True)
class ScheduleInfo:
    """One registry entry: the function, the parameters a search tunes, one line of docs."""

    name: str
    function: ScheduleFn
    params: Mapping[str, Dim] = field(default_factory=dict)
    description: str = ""

    def defaults(self) -> dict[str, Any]:
        """The function's own default for every parameter after (step, total_steps) that
        can be passed by keyword: `def f(step, total, gamma=0.5)` or `(..., *, gamma=0.5)`."""
        parameters = list(inspect.signature(self.function).parameters.values())
        return {
            p.name: p.default
            for index, p in enumerate(parameters)
            if p.default is not p.empty and (
                p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and index >= 2))
        }


_REGISTRY: dict[str, ScheduleInfo] = {}


#: keyword names the schedule helpers pass themselves: a schedule's own would clash
RESERVED_PARAMS = frozenset({"name", "step", "total_steps", "warmup_steps", "optimizer",
                             "steps_per_epoch", "epochs"})


def register(name: str, function: ScheduleFn, *, params: Mapping[str, Dim] | None = None,
             description: str = "", overwrite: bool = False) -> ScheduleInfo:
    """Add a schedule `function(step, total_steps, **params) -> float` under `name`.

    `params` maps keyword parameters of `function` to the dimensions a search tunes
    (`autolr.dims.Float`, `Int`, `Choice`); the others keep their defaults.

    >>> from autolr import schedules
    >>> def halve_midway(step, total_steps):
    ...     return 1.0 if step < total_steps // 2 else 0.5
    >>> _ = schedules.register("halve_midway", halve_midway, overwrite=True)
    >>> schedules.multiplier("halve_midway", 60, 100)
    0.5
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidSpaceError(
            f"a schedule name must be a Python identifier such as 'my_decay', but got {name!r}."
        )
    if name in _REGISTRY and not overwrite:
        raise InvalidSpaceError(
            f"a schedule named {name!r} exists already; pass overwrite=True to replace it."
        )
    if not callable(function):
        raise InvalidSpaceError(
            f"a schedule must be a function (step, total_steps, **params) -> float, "
            f"but got {function!r}."
        )
    bad = {key: dim for key, dim in (params or {}).items()
           if not isinstance(dim, (Float, Int, Choice))}
    if bad:
        raise InvalidSpaceError(
            f"schedule {name!r}: params must map names to autolr.dims.Float, Int or Choice, "
            f"such as {{'gamma': Float(0.05, 0.5, log=True)}}, but got {bad!r}."
        )
    info = ScheduleInfo(name, function, MappingProxyType(dict(params or {})), description)
    keywords = info.defaults()
    taken = sorted(set(keywords) & RESERVED_PARAMS)
    if taken:  # multipliers(name, total_steps, warmup_steps=..., **params) passes these
        raise InvalidSpaceError(
            f"schedule {name!r} has keyword parameter(s) {taken}, names autolr passes "
            f"itself ({', '.join(sorted(RESERVED_PARAMS))}); rename them.")
    unknown = set(info.params) - set(keywords)
    if unknown:
        raise InvalidSpaceError(
            f"schedule {name!r} searches {sorted(unknown)}, which are not keyword parameters "
            f"with defaults of its function; its keyword parameters are {sorted(keywords)}."
        )
    _check_factors(name, function, {})  # at registration, not mid-sweep
    _REGISTRY[name] = info
    return info


def get(name: str) -> ScheduleInfo:
    """The registry entry for `name`; an unknown name raises and lists the valid ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        error = unknown_name("schedule", name, _REGISTRY)
        raise type(error)(f"{error} A schedule of your own (as in a sweep loaded from a file) "
                          "must be registered first in this session: "
                          f"autolr.schedules.register({name!r}, function).") from None


def names() -> list[str]:
    """Every registered schedule name, built-in ones first."""
    return list(_REGISTRY)


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `params` for schedule `name`; return them merged over the defaults."""
    info = get(name)
    defaults = info.defaults()
    unknown = set(params) - set(defaults)
    if unknown:
        raise InvalidSpaceError(
            f"schedule {name!r} has no parameter {sorted(unknown)}; "
            f"its parameters are {sorted(defaults) or 'none'}."
        )
    for key, value in params.items():  # an integer parameter counts something (cycles)
        if isinstance(info.params.get(key), Int) and not (
                isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and value >= 1):
            raise InvalidSpaceError(f"schedule {name!r}: {key} must be an integer >= 1, but "
                                    f"got {key}={value!r}.")
    if params and is_builtin(name):  # a user's own parameters are checked as it runs
        _check_fractions(name, params)
        _check_factors(name, info.function, params)
    return {**defaults, **params}


# the built-in schedules' parameters that are a share of the peak rate or of the run: a
# cosine to min_fraction=7 would end at 7 times its peak, a schedule no one means
_FRACTIONS = ("min_fraction", "final_fraction", "base_fraction", "end_fraction", "gamma",
              "pct_start", "step_fraction", "first", "second")
# and those that scale or shape it, where 0 or less has no meaning (a negative polynomial
# power ends at a million times the peak)
_POSITIVE = ("power", "timescale", "div_factor", "final_div_factor", "cycle_mult")


def _check_fractions(name: str, params: Mapping[str, Any]) -> None:
    for key in _FRACTIONS:
        value = params.get(key)
        if value is not None and not (isinstance(value, numbers.Real) and 0 <= value <= 1):
            raise InvalidSpaceError(f"schedule {name!r}: {key} is a fraction, between 0 and 1, "
                                    f"but got {key}={value!r}.")
    for key in _POSITIVE:
        value = params.get(key)
        if value is not None and not (isinstance(value, numbers.Real)
                                      and not isinstance(value, bool) and value > 0):
            raise InvalidSpaceError(f"schedule {name!r}: {key} must be a number > 0, but got "
                                    f"{key}={value!r}.")
    for key, below_one in (("div_factor", "start above its peak, the learning rate searched"),
                           ("final_div_factor", "end above its start")):
        value = params.get(key)
        if value is not None and value < 1:
            raise InvalidSpaceError(
                f"schedule {name!r}: {key} divides the rate (as torch's OneCycleLR's does) "
                f"and must be >= 1, but got {key}={value!r}: the schedule would {below_one}.")
    if params.get("cycle_mult") is not None and params["cycle_mult"] < 1:
        raise InvalidSpaceError(f"schedule {name!r}: cycle_mult is how many times longer each "
                                "cycle is than the last and must be >= 1 (as torch's T_mult), "
                                f"but got cycle_mult={params['cycle_mult']!r}.")
    if params.get("step_fraction") == 0:  # a drop every step: gamma**step, gone in a few
        raise InvalidSpaceError(f"schedule {name!r}: step_fraction is the share of the run "
                                "between drops and must be > 0, but got step_fraction=0.")
    pct_start = params.get("pct_start")
    if pct_start in (0, 1):  # a one-cycle with no way up, or no way down
        raise InvalidSpaceError(f"schedule {name!r}: pct_start is the share of the run spent "
                                f"rising, strictly between 0 and 1, but got {pct_start=}.")


def _check_factors(name: str, function: ScheduleFn, params: Mapping[str, Any]) -> None:
    """The function must give a finite factor >= 0 (sampled over a 10-step run)."""
    given = f" with {dict(params)}" if params else ""
    for step in (0, 5, 9):
        try:
            value = function(step, 10, **params)
        except Exception as error:  # e.g. a division by a parameter of 0
            raise InvalidSpaceError(f"schedule {name!r}{given} fails at step {step} of 10: "
                                    f"{type(error).__name__}: {error}") from None
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise InvalidSpaceError(
                f"schedule {name!r}{given} must return a finite factor >= 0, "
                f"but returned {value!r} at step {step} of 10."
            )


def multiplier(name: str, step: int, total_steps: int, *, warmup_steps: int = 0,
               **params: Any) -> float:
    """The factor for `step` of schedule `name`, with a linear warmup of `warmup_steps`.

    After warmup the family runs over the remaining steps, so its shape is kept whole;
    the warmup ramps linearly up to the value the family starts at.
    """
    function = get(name).function
    if total_steps < 1:
        raise InvalidSpaceError(f"total_steps must be >= 1, but got {total_steps=}.")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, numbers.Integral):
        # a fraction here (best_config's warmup_fraction, say) would pass as ~no warmup
        raise InvalidSpaceError(
            f"warmup_steps is a whole number of optimizer steps, but got {warmup_steps!r}; "
            "for a fraction of training use round(fraction * total_steps).")
    if not 0 <= warmup_steps < total_steps:
        raise InvalidSpaceError(
            f"warmup must be shorter than training: 0 <= warmup_steps < total_steps, "
            f"but got {warmup_steps=} with {total_steps=}."
        )
    step = min(max(step, 0), total_steps - 1)  # stepping past the end holds the last value
    decay_steps = total_steps - warmup_steps
    if step < warmup_steps:
        # linear ramp, as nanoGPT's get_lr: (step + 1) / (warmup + 1) of the first value
        return (step + 1) / (warmup_steps + 1) * function(0, decay_steps, **params)
    return function(step - warmup_steps, decay_steps, **params)


def multipliers(name: str, total_steps: int, *, warmup_steps: int = 0,
                **params: Any) -> list[float]:
    """The factor at every step of a run: what the training loop applies, step by step."""
    _check_run(name, total_steps, params)
    return [
        multiplier(name, step, total_steps, warmup_steps=warmup_steps, **params)
        for step in range(total_steps)
    ]


def _check_run(name: str, total_steps: Any, params: dict[str, Any]) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) \
            or total_steps < 1:
        raise InvalidSpaceError(f"a schedule runs over total_steps >= 1 optimizer steps, but "
                                f"got {total_steps=}.")
    check_params(name, params)


def is_builtin(name: str) -> bool:
    """Whether `name` is autolr's own schedule this session (not a user's, nor a built-in
    name overwritten with one)."""
    # the name asked first: a user's name may not be registered in this session
    return name in BUILTIN and get(name).function.__module__ == __name__


def source(name: str) -> str | None:
    """The Python source of schedule `name`'s function, with the helper it calls and no
    import of autolr: for the code snippet a user pastes into a project that does not
    install autolr. None for a user's schedule (registered, or a built-in name
    overwritten), whose code may lean on anything in its module."""
    if not is_builtin(name):
        return None
    function = get(name).function
    code = inspect.getsource(function)
    if f"{_cosine_between.__name__}(" in code:
        code = inspect.getsource(_cosine_between) + "\n\n" + code
    return code


def lambda_lr(optimizer: Any, name: str, total_steps: int, *, warmup_steps: int = 0,
              **params: Any) -> Any:
    """A `torch.optim.lr_scheduler.LambdaLR` running schedule `name`; call `.step()`
    after every optimizer step.

    >>> import torch
    >>> from autolr import schedules
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> sched = schedules.lambda_lr(opt, "linear", 10)
    >>> for _ in range(5):
    ...     opt.step(); sched.step()
    >>> round(opt.param_groups[0]["lr"], 4)
    0.05
    """
    from torch.optim.lr_scheduler import LambdaLR

    _check_run(name, total_steps, params)
    # each step's factor when it is asked for: a table of the whole run up front cost
    # seconds and hundreds of MB for runs of millions of steps
    return LambdaLR(optimizer, lambda step: multiplier(
        name, step, total_steps, warmup_steps=warmup_steps, **params))


for _function, _params, _description in [
    (constant, {}, "the base learning rate throughout"),
    (step_decay, {"step_fraction": Float(0.2, 0.5), "gamma": Float(0.05, 0.5, log=True)},
     "drop by gamma every step_fraction of training"),
    (multistep, {"gamma": Float(0.05, 0.5, log=True)},
     "drop by gamma at 50% and 75% of training"),
    (exponential, {"final_fraction": Float(1e-3, 0.3, log=True)},
     "geometric decay to final_fraction of the base rate"),
    (cosine, {}, "half a cosine down to zero"),
    (cosine_restarts, {"cycles": Int(2, 4), "cycle_mult": Choice((1, 2))},
     "SGDR: cosine decays restarted 2-4 times"),
    (cyclic, {"cycles": Int(1, 6), "base_fraction": Float(0.01, 0.5, log=True)},
     "triangular cycles between base_fraction and the base rate"),
    (one_cycle, {"pct_start": Float(0.1, 0.5)}, "Smith's one-cycle: up to the peak, then down"),
    (linear, {}, "straight line down to zero"),
    (polynomial, {"power": Float(0.5, 3.0)}, "(1 - progress)^power decay"),
    (inverse_sqrt, {"timescale": Float(0.01, 0.3, log=True)}, "1/sqrt decay, as transformers"),
]:
    register(_function.__name__.replace("step_decay", "step"), _function,
             params=_params, description=_description)

#: The families autolr ships (registered above); user schedules come after them.
BUILTIN: tuple[str, ...] = tuple(_REGISTRY)
