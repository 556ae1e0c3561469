"""What a sweep searches: the learning rate, schedule family, warmup, batch size, optimizer.

A `SearchSpace` is validated when it is made, so a bad one fails before any training.
Presets are TOML files in the top-level `search_spaces/` folder (shipped in the wheel).

>>> from autolr import SearchSpace
>>> space = SearchSpace(lr=(1e-4, 1e-1), schedules=("constant", "cosine"))
>>> space.batch_sizes
(16, 32, 64, 128, 256)
>>> SearchSpace.preset("default").lr
(1e-05, 1.0)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from autolr import schedules
from autolr.dims import Choice, Dim, Float, Int
from autolr.errors import InvalidSpaceError, unknown_name
from autolr.optimizers import check_optimizer

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _is_real(value: Any) -> bool:
    """A Python or numpy number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrialConfig:
    """One point of the space: everything needed to train once."""

    lr: float
    schedule: str = "constant"
    schedule_params: Mapping[str, Any] = field(default_factory=dict)
    warmup_fraction: float = 0.0
    batch_size: int = 32
    optimizer: str = "adamw"
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: numpy numbers (from result.trials) become Python's
        if not (_is_real(self.lr) and math.isfinite(self.lr) and self.lr > 0):
            raise InvalidSpaceError(f"lr must be a finite number > 0, but got lr={self.lr!r}.")
        set_(self, "lr", float(self.lr))
        set_(self, "schedule_params", schedules.check_params(self.schedule, self.schedule_params))
        if not (_is_real(self.warmup_fraction) and 0.0 <= self.warmup_fraction < 1.0):
            raise InvalidSpaceError(
                "warmup_fraction is the share of training spent warming up and must be in "
                f"[0, 1), but got warmup_fraction={self.warmup_fraction!r}."
            )
        set_(self, "warmup_fraction", float(self.warmup_fraction))
        whole = _is_real(self.batch_size) and float(self.batch_size).is_integer()  # 32.0 too
        if not (whole and self.batch_size >= 1):
            raise InvalidSpaceError(
                f"batch_size must be an integer >= 1, but got batch_size={self.batch_size!r}."
            )
        set_(self, "batch_size", int(self.batch_size))
        check_optimizer(self.optimizer)
        if not (_is_real(self.weight_decay) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise InvalidSpaceError(
                f"weight_decay must be a number >= 0, but got weight_decay={self.weight_decay!r}."
            )
        set_(self, "weight_decay", float(self.weight_decay))

    def warmup_steps(self, total_steps: int) -> int:
        """Warmup length in optimizer steps, always shorter than the run."""
        return min(round(self.warmup_fraction * total_steps), total_steps - 1)

    def multipliers(self, total_steps: int) -> list[float]:
        """The schedule's factor at every step of a `total_steps` run, warmup included."""
        return schedules.multipliers(
            self.schedule, total_steps, warmup_steps=self.warmup_steps(total_steps),
            **self.schedule_params,
        )

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["schedule_params"] = dict(self.schedule_params)
        return result

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TrialConfig:
        if isinstance(config, TrialConfig):
            return config
        if not isinstance(config, Mapping):
            raise InvalidSpaceError(
                f"a config must be a dict such as TuneResult.best_config, but got {config!r}."
            )
        valid = {f.name for f in fields(cls)}
        unknown = set(config) - valid
        if unknown:
            raise InvalidSpaceError(
                f"unknown config key(s) {sorted(unknown)}; valid keys are {sorted(valid)}."
            )
        if "lr" not in config:
            raise InvalidSpaceError(f"a config needs an 'lr', such as {{'lr': 1e-3}}, but got "
                                    f"{dict(config)!r}.")
        return cls(**config)


DEFAULT_REFERENCE_BATCH = 256  # lr_reference_batch: the batch a scaled lr range is at
#: The config a user would try without autolr: AdamW at 1e-3, constant, batch 32.
BASELINE = TrialConfig(lr=1e-3, schedule="constant", batch_size=32, optimizer="adamw")


@dataclass(frozen=True)
class SearchSpace:
    """The ranges and choices a sweep samples from.

    lr: (low, high), searched on a log scale.  schedules: family names from
    `autolr.schedules.names()`, each with its own conditional parameters.  warmup:
    (low, high) as fractions of training (0 allowed).  batch_sizes: candidates, those
    larger than the train set are dropped.  optimizers: names from adamw, adam, sgd,
    rmsprop, adagrad.  weight_decay: a fixed value, or (low, high) searched on a log scale.
    lr_scaling: "none", or "linear" / "sqrt" to search the learning rate relative to the
    batch size: `lr` is then the range at `lr_reference_batch`, and a trial at batch b
    trains at lr * (b / lr_reference_batch) (linear rule) or its square root (sqrt rule).
    schedule_params: per family, ranges or fixed values of its own for any of the family's
    parameters (`schedules.get(name).defaults()`), e.g. {"cosine_restarts": {"cycles":
    (2, 3)}, "cosine": {"min_fraction": 0.1}}: (low, high) for a number, a list for a
    choice, a single value to fix it (fixed, it is not searched). A parameter the family
    does not search (cosine's min_fraction) is kept at its default unless named here.
    """

    lr: tuple[float, float] = (1e-5, 1.0)
    schedules: tuple[str, ...] = schedules.BUILTIN
    warmup: tuple[float, float] = (0.0, 0.2)
    batch_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    optimizers: tuple[str, ...] = ("adamw",)
    weight_decay: float | tuple[float, float] = 0.0
    lr_scaling: str = "none"
    lr_reference_batch: int = DEFAULT_REFERENCE_BATCH
    description: str = ""
    schedule_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise lists from TOML/dicts into tuples
        for name in ("lr", "schedules", "warmup", "batch_sizes", "optimizers", "weight_decay"):
            value = getattr(self, name)
            if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # a numpy array
                set_(self, name, value.tolist())  # of Python values: names are str, not np.str_
        lr = _pair("lr", self.lr)
        if not (lr[0] > 0 and lr[0] < lr[1]):
            raise InvalidSpaceError(
                f"the learning-rate range needs 0 < low < high, such as (1e-5, 1.0), "
                f"but got lr={lr}" + (
                    f"; the learning rate is what autolr searches: to train one, use "
                    f"autolr.train(model, data, {{'lr': {lr[0]!r}, ...}})." if lr[0] == lr[1]
                    and lr[0] > 0 else ".")
            )
        set_(self, "lr", lr)
        set_(self, "schedules", _names("schedules", self.schedules))
        for name in self.schedules:
            schedules.get(name)
        warmup = _pair("warmup", self.warmup)
        if not (0.0 <= warmup[0] <= warmup[1] < 1.0):
            raise InvalidSpaceError(
                "warmup is a fraction of training: it needs 0 <= low <= high < 1, such as "
                f"(0.0, 0.2), but got warmup={warmup}."
            )
        set_(self, "warmup", warmup)
        sizes = tuple(self.batch_sizes) if _is_sequence(self.batch_sizes) else ()
        if not sizes or not all(_is_int(b) and b >= 1 for b in sizes):
            raise InvalidSpaceError(
                "batch_sizes needs one or more integers >= 1, such as (32, 64, 128), "
                f"but got batch_sizes={self.batch_sizes!r}."
            )
        set_(self, "batch_sizes", tuple(sorted({int(b) for b in sizes})))
        set_(self, "optimizers", _names("optimizers", self.optimizers))
        for name in self.optimizers:
            check_optimizer(name)
        if _is_sequence(self.weight_decay):
            wd = _pair("weight_decay", self.weight_decay)
            if not 0 < wd[0] <= wd[1]:
                raise InvalidSpaceError(
                    "a searched weight_decay range is log-scaled and needs 0 < low <= high, "
                    f"such as (1e-6, 1e-2), but got weight_decay={wd}."
                )
            set_(self, "weight_decay", wd)
        elif not (_is_real(self.weight_decay) and math.isfinite(self.weight_decay)
                  and self.weight_decay >= 0):
            raise InvalidSpaceError(
                "weight_decay must be a number >= 0 or a (low, high) range, "
                f"but got weight_decay={self.weight_decay!r}."
            )
        else:
            set_(self, "weight_decay", float(self.weight_decay))

        set_(self, "schedule_params", _schedule_params(self.schedule_params, self.schedules))
        if not isinstance(self.lr_scaling, str) or self.lr_scaling not in _LR_SCALING_EXPONENTS:
            raise InvalidSpaceError(
                f"lr_scaling must be one of {', '.join(_LR_SCALING_EXPONENTS)}, "
                f"but got lr_scaling={self.lr_scaling!r}."
            )
        if not (_is_int(self.lr_reference_batch) and self.lr_reference_batch >= 1):
            raise InvalidSpaceError(
                "lr_reference_batch must be an integer >= 1, such as 256, "
                f"but got lr_reference_batch={self.lr_reference_batch!r}."
            )
        if self.lr_scaling == "none" and self.lr_reference_batch != DEFAULT_REFERENCE_BATCH:
            raise InvalidSpaceError(
                f"lr_reference_batch={self.lr_reference_batch} has no effect with "
                "lr_scaling='none'; set lr_scaling='linear' or 'sqrt' to search the "
                "learning rate relative to the batch size, or leave lr_reference_batch out."
            )

    def lr_factor(self, batch_size: int) -> float:
        """What the searched learning rate is multiplied by at this batch size."""
        exponent = _LR_SCALING_EXPONENTS[self.lr_scaling]
        return (batch_size / self.lr_reference_batch) ** exponent

    def usable_batch_sizes(self, n_train: int) -> tuple[int, ...]:
        """The batch sizes that fit in a train set of `n_train` rows."""
        usable = tuple(b for b in self.batch_sizes if b <= n_train)
        if not usable:
            raise InvalidSpaceError(
                f"every batch size in {self.batch_sizes} is larger than the {n_train} "
                f"training rows; add a batch size <= {n_train}, or give more data."
            )
        return usable

    def sample(self, trial: Any, n_train: int) -> TrialConfig:
        """Ask an Optuna trial for one config (define-by-run, conditional per family)."""
        schedule = Choice(self.schedules).suggest(trial, "schedule")
        params = {name: dim.suggest(trial, f"{schedule}.{name}")
                  for name, dim in self.schedule_dims(schedule).items()}
        batch_size = Choice(self.usable_batch_sizes(n_train)).suggest(trial, "batch_size")
        return TrialConfig(
            lr=Float(*self.lr, log=True).suggest(trial, "lr") * self.lr_factor(batch_size),
            schedule=schedule,
            schedule_params=params,
            # rounded: Optuna's step grid gives 0.15000000000000002 for 0.15
            warmup_fraction=round(self.warmup_dim().suggest(trial, "warmup_fraction"), 9),
            batch_size=batch_size,
            optimizer=Choice(self.optimizers).suggest(trial, "optimizer"),
            weight_decay=(
                Float(*self.weight_decay, log=True).suggest(trial, "weight_decay")
                if isinstance(self.weight_decay, tuple) else float(self.weight_decay)
            ),
        )

    def schedule_dims(self, family: str) -> dict[str, Dim]:
        """The dimensions `sample` searches for a family's parameters: the family's own,
        narrowed or fixed by `schedule_params`."""
        dims = dict(schedules.get(family).params)
        for name, given in self.schedule_params.get(family, {}).items():
            dims[name] = _narrowed(family, name, given)
        return dims

    def config_from_params(self, params: Mapping[str, Any], n_train: int) -> TrialConfig:
        """The config that `sample` gave for these Optuna params (e.g. from Ray's searcher):
        `sample` replayed on a FixedTrial, so values the space fixes are filled in too."""
        import optuna

        return self.sample(optuna.trial.FixedTrial(dict(params)), n_train)

    def warmup_dim(self) -> Float:
        low, high = self.warmup
        # a grid of 9 points, so that "no warmup" (or the low end) can be sampled exactly;
        # the step in decimal, as Optuna checks it: (0.2 - 0.02) / 8 in floats is a hair
        # over 0.0225, and Optuna would drop 0.2 from the grid (with a warning)
        span = Decimal(str(high)) - Decimal(str(low))
        step = float(span / 8)
        if high == low or span % Decimal(str(step)):
            # no float step divides it (1/3 to 0.5): Optuna would cut the high end off the
            # grid, so the range is searched whole instead
            return Float(low, high)
        return Float(low, high, step=step)

    def params_for(self, config: TrialConfig, n_train: int) -> dict[str, Any] | None:
        """The Optuna params that reproduce `config`, or None when it lies outside."""
        searched_lr = config.lr / self.lr_factor(config.batch_size)
        inside = (
            self.lr[0] <= searched_lr <= self.lr[1]
            and config.schedule in self.schedules
            and self.warmup[0] <= config.warmup_fraction <= self.warmup[1]
            and config.batch_size in self.usable_batch_sizes(n_train)
            and config.optimizer in self.optimizers
            and (config.weight_decay == self.weight_decay if not isinstance(
                self.weight_decay, tuple) else Float(*self.weight_decay).contains(
                config.weight_decay))
            and all(dim.contains(config.schedule_params[name])
                    for name, dim in self.schedule_dims(config.schedule).items())
        )
        if not inside:
            return None
        params = {
            "lr": searched_lr, "schedule": config.schedule,
            "warmup_fraction": config.warmup_fraction, "batch_size": config.batch_size,
            "optimizer": config.optimizer, "weight_decay": config.weight_decay,
        }
        params.update({f"{config.schedule}.{k}": v for k, v in config.schedule_params.items()
                       if k in self.schedule_dims(config.schedule)})
        return params

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["schedule_params"] = {family: dict(given)
                                     for family, given in self.schedule_params.items()}
        return values

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, source: str = "the space") -> SearchSpace:
        valid = {f.name for f in fields(cls)}
        unknown = set(spec) - valid
        if unknown:
            raise InvalidSpaceError(
                f"unknown key(s) {sorted(unknown)} in {source}; valid keys are {sorted(valid)}."
            )
        return cls(**spec)

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchSpace:
        path = Path(path) if isinstance(path, str) else path  # or an importlib Traversable
        try:
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidSpaceError(f"no search-space file at {str(path)!r}.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise InvalidSpaceError(f"{path} is not valid TOML: {error}.") from None
        except OSError as error:  # a folder, say
            raise InvalidSpaceError(f"cannot read the search-space file {str(path)!r}: "
                                    f"{error.strerror or error}.") from None
        return cls.from_dict(spec, source=str(path))

    @classmethod
    def preset(cls, name: str) -> SearchSpace:
        """A preset from `search_spaces/` by name; `presets()` lists them."""
        files = _preset_files()
        if name not in files:
            error = unknown_name("preset", name, files)
            raise type(error)(f"{error} A space of your own is a path ending in .toml"
                              + (f": {name!r} is a file; rename it to end in .toml "
                                 f"({str(Path(name).with_suffix('.toml'))!r})."
                                 if Path(name).is_file() else ".")) from None
        return cls.from_toml(files[name])


def presets() -> dict[str, str]:
    """Preset name -> its one-line description."""
    return {name: SearchSpace.from_toml(path).description
            for name, path in sorted(_preset_files().items())}


def load_space(space: str | Mapping[str, Any] | SearchSpace) -> SearchSpace:
    """A SearchSpace from a preset name, a path to a .toml file, a dict, or itself."""
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return SearchSpace.from_dict(space)
    if isinstance(space, (str, Path)):
        if str(space).lower().endswith(".toml"):
            return SearchSpace.from_toml(space)
        return SearchSpace.preset(str(space))
    raise InvalidSpaceError(
        "space must be a preset name (see autolr.presets()), a path to a .toml file, a dict "
        f"or a SearchSpace, but got {type(space).__name__}."
    )


def _preset_files() -> dict[str, Any]:
    folder = resources.files("autolr.search_spaces")
    return {item.name[:-5]: item for item in folder.iterdir() if item.name.endswith(".toml")}


_LR_SCALING_EXPONENTS = {"none": 0.0, "linear": 1.0, "sqrt": 0.5}


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool (True is no batch size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pair(name: str, value: Any) -> tuple[float, float]:
    if not (_is_sequence(value) and len(value) == 2 and all(_is_real(v) for v in value)):
        raise InvalidSpaceError(f"{name} must be a (low, high) pair of numbers, but got {value!r}.")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InvalidSpaceError(f"{name} needs finite bounds, but got {name}={(low, high)}.")
    return low, high


def _schedule_params(value: Any, families: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`SearchSpace.schedule_params` checked against the families' parameters, with
    ranges and choices as tuples."""
    example = "such as {'cosine_restarts': {'cycles': (2, 3)}}"
    if not isinstance(value, Mapping):
        raise InvalidSpaceError(f"schedule_params maps a family to its parameters, {example}, "
                                f"but got schedule_params={value!r}.")
    checked: dict[str, dict[str, Any]] = {}
    for family, given in value.items():
        if family not in families:
            raise InvalidSpaceError(
                f"schedule_params names {family!r}, which is not among the space's schedules "
                f"({', '.join(families)}); add it to schedules or drop its entry.")
        own = schedules.get(family).defaults()
        if not isinstance(given, Mapping) or not set(given) <= set(own):
            raise InvalidSpaceError(
                f"schedule_params[{family!r}] maps {family}'s parameters "
                f"({', '.join(own) or 'none'}) to ranges or values, {example}, but got "
                f"{given!r}.")
        checked[family] = {}
        for name, spec in given.items():
            spec = tuple(spec) if _is_sequence(spec) else spec
            # numpy numbers as Python's: the settings a resume compares are JSON
            spec = (tuple(_plain(v) for v in spec) if isinstance(spec, tuple)
                    else _plain(spec))
            dim = _narrowed(family, name, spec)
            for end in (dim.choices if isinstance(dim, Choice) else (dim.low, dim.high)):
                schedules.check_params(family, {name: end})  # each end a valid value
            checked[family][name] = spec
    return checked


def _plain(value: Any) -> Any:
    """A numpy number as the Python number it holds; anything else as it is."""
    return value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") \
        else value


def _narrowed(family: str, name: str, spec: Any) -> Dim:
    """The dimension `spec` makes of a family's parameter: a range, a choice list or one
    value (fixed). A searched parameter keeps its kind (integer, log scale, choices); one
    the family keeps at its default takes the kind of that default."""
    where = f"schedule_params[{family!r}][{name!r}]"
    info = schedules.get(family)
    dim, default = info.params.get(name), info.defaults()[name]
    if isinstance(dim, Choice) or (dim is None and not _is_real(default)):
        choices = spec if isinstance(spec, tuple) else (spec,)
        if not choices or (dim is not None and not all(c in dim.choices for c in choices)):
            raise InvalidSpaceError(f"{where} must be one or more of "
                                    f"{list(dim.choices) if dim else 'its values'}, but got "
                                    f"{spec!r}.")
        return Choice(choices)
    whole = isinstance(dim, Int) or (dim is None and _is_int(default))
    log = dim is not None and dim.log
    ok = _is_int if whole else _is_real
    low, high = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, spec)
    if not (ok(low) and ok(high) and low <= high):
        example = f"({dim.low}, {dim.high})" if dim is not None else f"{default!r}"
        raise InvalidSpaceError(f"{where} must be one value or a (low, high) pair of "
                                f"{'integers' if whole else 'numbers'} with low <= high, such "
                                f"as {example}, but got {spec!r}.")
    if log and low <= 0:
        raise InvalidSpaceError(f"{where} is searched on a log scale and needs low > 0, but "
                                f"got {spec!r}.")
    return Int(int(low), int(high), log=log) if whole else Float(float(low), float(high),
                                                                 log=log)


def _names(name: str, value: Any) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value) if _is_sequence(value) else ()
    if not names:
        raise InvalidSpaceError(f"{name} needs at least one name, but got {name}={value!r}.")
    odd = next((n for n in names if not isinstance(n, str)), None)
    if odd is not None:  # a nested list was a TypeError (unhashable) further on
        example = {"schedules": "'cosine'", "optimizers": "'adamw'"}.get(name, "'a name'")
        raise InvalidSpaceError(f"{name} holds names such as {example}, but got {odd!r} in "
                                f"{name}={value!r}.")
    return tuple(dict.fromkeys(names))  # drop repeats, keep the order
