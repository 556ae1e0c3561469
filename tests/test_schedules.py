"""Schedules as pure functions: exact values, registry-wide properties, the torch adapter."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch

from autolr import schedules
from autolr.dims import Choice, Float, Int
from autolr.errors import AutoLRError, InvalidSpaceError, UnknownNameError
from autolr.space import SearchSpace, TrialConfig

BUILT_IN = schedules.names()  # collected before any test registers its own


def cos_half(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry, so schedules a test registers vanish after it."""
    monkeypatch.setattr(schedules, "_REGISTRY", dict(schedules._REGISTRY))
    return schedules


# --- exact values of every family at known points ------------------------------------

EXACT = [
    # (name, params, total_steps, step, expected)
    ("constant", {}, 100, 0, 1.0),
    ("constant", {}, 100, 99, 1.0),
    ("step", {"step_fraction": 0.25, "gamma": 0.5}, 100, 0, 1.0),
    ("step", {"step_fraction": 0.25, "gamma": 0.5}, 100, 24, 1.0),
    ("step", {"step_fraction": 0.25, "gamma": 0.5}, 100, 25, 0.5),
    ("step", {"step_fraction": 0.25, "gamma": 0.5}, 100, 50, 0.25),
    ("step", {"step_fraction": 0.25, "gamma": 0.5}, 100, 99, 0.125),
    ("step", {}, 100, 32, 1.0),  # defaults: period round(0.33 * 100) = 33, gamma 0.1
    ("step", {}, 100, 33, 0.1),
    ("step", {}, 100, 99, 0.001),
    ("multistep", {}, 100, 0, 1.0),
    ("multistep", {}, 100, 49, 1.0),
    ("multistep", {}, 100, 50, 0.1),  # first milestone at 50%
    ("multistep", {}, 100, 74, 0.1),
    ("multistep", {}, 100, 75, 0.01),  # second at 75%
    ("multistep", {}, 100, 99, 0.01),
    ("multistep", {"gamma": 0.5}, 100, 75, 0.25),
    ("exponential", {}, 100, 0, 1.0),
    ("exponential", {}, 100, 50, 0.1),  # sqrt(0.01): halfway in log space
    ("exponential", {}, 100, 99, 0.01**0.99),
    ("exponential", {"final_fraction": 0.25}, 100, 50, 0.5),
    ("cosine", {}, 100, 0, 1.0),
    ("cosine", {}, 100, 25, 0.5 * (1 + math.cos(math.pi / 4))),
    ("cosine", {}, 100, 50, 0.5),
    ("cosine", {}, 100, 99, 0.5 * (1 + math.cos(0.99 * math.pi))),
    ("cosine", {"min_fraction": 0.1}, 100, 50, 0.55),
    ("linear", {}, 100, 0, 1.0),
    ("linear", {}, 100, 50, 0.5),
    ("linear", {}, 100, 99, 0.01),
    ("linear", {"end_fraction": 0.2}, 100, 50, 0.6),
    ("polynomial", {}, 100, 0, 1.0),
    ("polynomial", {}, 100, 50, 0.25),  # (1 - 0.5)^2
    ("polynomial", {}, 100, 99, 0.01**2),
    ("polynomial", {"power": 0.5}, 100, 75, 0.5),
    ("polynomial", {"power": 1.0, "end_fraction": 0.5}, 100, 50, 0.75),
    ("inverse_sqrt", {}, 100, 0, 1.0),  # timescale 0.05 * 100 = 5 steps
    ("inverse_sqrt", {}, 100, 15, 0.5),  # 1 / sqrt(1 + 15/5)
    ("inverse_sqrt", {}, 100, 40, 1 / 3),  # 1 / sqrt(1 + 40/5)
    ("inverse_sqrt", {}, 10, 3, 0.5),  # the timescale is at least one step
    ("cyclic", {}, 100, 0, 0.1),  # 2 cycles from base_fraction 0.1 up to 1 and back
    ("cyclic", {}, 100, 10, 0.1 + 0.9 * 0.4),
    ("cyclic", {}, 100, 25, 1.0),  # top of the first triangle
    ("cyclic", {}, 100, 50, 0.1),  # cycle boundary: back at the base
    ("cyclic", {}, 100, 75, 1.0),
    ("cyclic", {}, 100, 99, 0.1 + 0.9 * 0.04),
    ("cyclic", {"cycles": 1, "base_fraction": 0.5}, 100, 50, 1.0),
    ("one_cycle", {}, 100, 0, 1 / 25),  # starts at base / div_factor
    ("one_cycle", {}, 100, 15, cos_half(1 / 25, 1.0, 0.5)),  # halfway up
    ("one_cycle", {}, 100, 30, 1.0),  # the peak, at pct_start
    ("one_cycle", {}, 100, 65, cos_half(1.0, 1 / 25 / 1e4, 0.5)),  # halfway down
    ("one_cycle", {"pct_start": 0.5, "div_factor": 10.0}, 100, 0, 0.1),
    ("one_cycle", {"pct_start": 0.5, "div_factor": 10.0}, 100, 50, 1.0),
    ("one_cycle", {}, 100, 99, cos_half(1.0, 4e-6, 69 / 70)),
    # SGDR, cycle_mult 1: three equal cycles of 30 steps, restarting at 30 and 60
    ("cosine_restarts", {"cycles": 3}, 90, 0, 1.0),
    ("cosine_restarts", {"cycles": 3}, 90, 15, 0.5),
    ("cosine_restarts", {"cycles": 3}, 90, 29, cos_half(1, 0, 29 / 30)),
    ("cosine_restarts", {"cycles": 3}, 90, 30, 1.0),
    ("cosine_restarts", {"cycles": 3}, 90, 45, 0.5),
    ("cosine_restarts", {"cycles": 3}, 90, 60, 1.0),
    ("cosine_restarts", {"cycles": 3}, 90, 89, cos_half(1, 0, 29 / 30)),
    ("cosine_restarts", {"cycles": 2, "min_fraction": 0.2}, 100, 25, 0.6),
    # SGDR, cycle_mult 2: cycles of 10, 20 and 40 steps, restarting at 10 and 30
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 0, 1.0),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 5, 0.5),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 9, cos_half(1, 0, 0.9)),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 10, 1.0),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 20, 0.5),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 29, cos_half(1, 0, 19 / 20)),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 30, 1.0),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 50, 0.5),
    ("cosine_restarts", {"cycles": 3, "cycle_mult": 2}, 70, 69, cos_half(1, 0, 39 / 40)),
]


@pytest.mark.parametrize(("name", "params", "total", "step", "expected"), EXACT)
def test_exact_values(name, params, total, step, expected):
    assert schedules.multiplier(name, step, total, **params) == pytest.approx(
        expected, rel=1e-12, abs=1e-12)


def test_every_built_in_family_has_exact_value_tests():
    assert {case[0] for case in EXACT} == set(BUILT_IN)


def test_one_cycle_peaks_at_pct_start():
    values = schedules.multipliers("one_cycle", 200, pct_start=0.25)
    assert values.index(max(values)) == 50
    assert max(values) == 1.0
    assert values[:51] == sorted(values[:51])  # rises to the peak...
    assert values[50:] == sorted(values[50:], reverse=True)  # ...then only falls


@pytest.mark.parametrize("cycle_mult", [1, 2])
@pytest.mark.parametrize("cycles", [2, 3, 4])
def test_sgdr_restarts_exactly_at_cycle_boundaries(cycles, cycle_mult):
    unit = 7  # steps in the first cycle
    lengths = [unit * cycle_mult**k for k in range(cycles)]
    total = sum(lengths)
    values = schedules.multipliers("cosine_restarts", total, cycles=cycles,
                                   cycle_mult=cycle_mult)
    starts = [sum(lengths[:k]) for k in range(cycles)]
    restarts = [s for s in range(1, total) if values[s] > values[s - 1]]
    assert restarts == starts[1:]
    for start in starts:
        assert values[start] == pytest.approx(1.0)


def test_sgdr_with_more_cycles_than_floats_reach_still_runs_and_ends_decayed():
    # 2**1100 overflowed a float: a sweep drawing cycles=1100 with cycle_mult=2 failed mid-run
    values = schedules.multipliers("cosine_restarts", 100, cycles=1100, cycle_mult=2)
    assert values[0] == 1.0 and values[50] == pytest.approx(1.0)  # the last cycle's start
    assert values[-1] < 0.01 and all(0.0 <= v <= 1.0 for v in values)
    assert values == pytest.approx(schedules.multipliers("cosine_restarts", 100, cycles=60,
                                                         cycle_mult=2))


def _sgdr_exactly(step: int, total: int, cycles: int, mult: float) -> float:
    """SGDR in exact fractions: cycle k starts at (m^k - 1) / (m^c - 1) of the run."""
    from fractions import Fraction

    m, progress = Fraction(mult), Fraction(step, total)
    starts = [Fraction(k, cycles) if m == 1 else (m**k - 1) / (m**cycles - 1)
              for k in range(cycles + 1)]
    k = max(i for i in range(cycles) if starts[i] <= progress)
    return cos_half(1, 0, float((progress - starts[k]) / (starts[k + 1] - starts[k])))


@pytest.mark.parametrize("mult", [1, 1.5, 2, 3])
@pytest.mark.parametrize("cycles", [2, 3, 5, 8, 20])
def test_sgdr_restarts_on_the_exact_step_whatever_the_rounding(mult, cycles):
    # floats put a cycle's first step at the end of the one before: 15 / 100 / (1 / 20)
    # is 2.999..., and log base 1.5 of a cycle's start a hair under a whole number
    for total in (10, 37, 100, 250):
        got = schedules.multipliers("cosine_restarts", total, cycles=cycles, cycle_mult=mult)
        assert got == pytest.approx([_sgdr_exactly(s, total, cycles, mult)
                                     for s in range(total)], abs=1e-9)


def test_a_searched_range_reaching_one_cycle_factors_below_one_is_refused():
    with pytest.raises(InvalidSpaceError, match="div_factor=0.5: the schedule would start"):
        SearchSpace(schedules=("one_cycle",),
                    schedule_params={"one_cycle": {"div_factor": (0.5, 25.0)}})
    with pytest.raises(InvalidSpaceError, match=r"cycle_mult .* must be >= 1 \(as torch's "
                                                r"T_mult\), but got cycle_mult=0.5"):
        TrialConfig(0.1, "cosine_restarts", schedule_params={"cycles": 3, "cycle_mult": 0.5})


# --- properties of the whole registry ---------------------------------------------------

def _extreme_params(name: str) -> list[dict]:
    """Defaults, and every searched parameter at each end of its search range."""
    cases = [{}]
    for key, dim in schedules.get(name).params.items():
        ends = dim.choices if isinstance(dim, Choice) else (dim.low, dim.high)
        cases += [{key: value} for value in ends]
    return cases


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("total", [1, 2, 3, 7, 100, 1001])
def test_finite_and_non_negative(name, total):
    for params in _extreme_params(name):
        for warmup in sorted({0, total // 10, total - 1}):
            values = schedules.multipliers(name, total, warmup_steps=warmup, **params)
            assert len(values) == total
            assert all(math.isfinite(v) and v >= 0 for v in values), (params, warmup)


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize(("total", "warmup"), [(100, 1), (100, 10), (50, 49), (1000, 200)])
def test_warmup_ramps_up_into_the_family(name, total, warmup):
    function = schedules.get(name).function
    first = function(0, total - warmup)  # the family runs over the steps after warmup
    values = schedules.multipliers(name, total, warmup_steps=warmup)
    # step 0 of the ramp: 1/(warmup+1) of the family's first value
    assert values[0] == pytest.approx(first / (warmup + 1))
    # monotone increasing during warmup, and continuous into the family at warmup_steps
    ramp = values[:warmup + 1]
    assert all(a < b for a, b in zip(ramp[:-1], ramp[1:], strict=True))
    assert values[warmup] == pytest.approx(first)
    assert values[warmup - 1] == pytest.approx(first * warmup / (warmup + 1))
    # after warmup, the family's whole shape over the remaining steps
    assert values[warmup:] == [function(s, total - warmup) for s in range(total - warmup)]


@pytest.mark.parametrize("name", BUILT_IN)
def test_no_warmup_is_the_family_itself(name):
    function = schedules.get(name).function
    assert schedules.multipliers(name, 60) == [function(s, 60) for s in range(60)]


@pytest.mark.parametrize("name", BUILT_IN)
def test_stepping_past_the_end_holds_the_last_value(name):
    last = schedules.multiplier(name, 49, 50, warmup_steps=5)
    for step in (50, 51, 500):
        assert schedules.multiplier(name, step, 50, warmup_steps=5) == last
    assert schedules.multiplier(name, -3, 50) == schedules.multiplier(name, 0, 50)


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize(("warmup", "total"), [(10, 10), (11, 10), (1, 1), (-1, 10)])
def test_warmup_not_shorter_than_training_raises(name, warmup, total):
    with pytest.raises(InvalidSpaceError, match=r"warmup.*0 <= warmup_steps < total_steps"):
        schedules.multiplier(name, 0, total, warmup_steps=warmup)
    with pytest.raises(InvalidSpaceError, match="warmup_steps"):
        schedules.multipliers(name, total, warmup_steps=warmup)


@pytest.mark.parametrize("warmup", [0.2, 2.5, True])
def test_warmup_steps_that_are_not_a_whole_number_of_steps_raise(warmup):
    # best_config's warmup_fraction passed as warmup_steps ran as (almost) no warmup
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(InvalidSpaceError, match=r"warmup_steps is a whole number of "
                       r"optimizer steps, .*round\(fraction \* total_steps\)"):
        schedules.lambda_lr(opt, "cosine", 100, warmup_steps=warmup)
    assert schedules.multiplier("cosine", 0, 100, warmup_steps=np.int64(9)) == 0.1


def test_total_steps_below_one_raises():
    with pytest.raises(InvalidSpaceError, match="total_steps must be >= 1"):
        schedules.multiplier("cosine", 0, 0)


@pytest.mark.parametrize("name", BUILT_IN)
def test_registry_entries_describe_themselves(name):
    info = schedules.get(name)
    assert info.name == name
    assert info.description
    assert set(info.params) <= set(info.defaults())
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass: FrozenInstanceError
        info.name = "other"


# --- the registry -------------------------------------------------------------------------

def test_unknown_name_raises_and_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="unknown schedule 'cosin'") as error:
        schedules.get("cosin")
    assert isinstance(error.value, AutoLRError)
    for name in BUILT_IN:
        assert name in str(error.value)
    # a user's schedule named by a sweep loaded from a file: say how to bring it back
    assert "autolr.schedules.register('cosin', function)" in str(error.value)
    with pytest.raises(UnknownNameError, match="valid schedules are: constant, cosine"):
        schedules.multiplier("nope", 0, 10)
    with pytest.raises(UnknownNameError, match="unknown schedule"):
        schedules.get(["cosine"])  # unhashable: still the same error


def test_check_params_rejects_unknown_parameters_and_lists_them():
    with pytest.raises(InvalidSpaceError, match=r"no parameter \['gama'\].*'gamma'"):
        schedules.check_params("step", {"gama": 0.5})
    with pytest.raises(InvalidSpaceError, match="its parameters are none"):
        schedules.multipliers("constant", 10, power=2)
    assert schedules.check_params("step", {"gamma": 0.5}) == {"step_fraction": 0.33,
                                                               "gamma": 0.5}


def _halving(step: int, total_steps: int, *, at: float = 0.5, factor: float = 0.5) -> float:
    return 1.0 if step < at * total_steps else factor


def test_register_a_user_schedule(registry):
    info = registry.register("halving", _halving, params={"at": Float(0.2, 0.8)},
                             description="halve once")
    assert registry.get("halving") is info
    assert registry.names()[-1] == "halving"
    assert info.defaults() == {"at": 0.5, "factor": 0.5}
    assert registry.multipliers("halving", 10, at=0.3) == [1.0] * 3 + [0.5] * 7
    assert registry.multiplier("halving", 0, 10, warmup_steps=1) == 0.5  # warmup wraps it
    assert TrialConfig(lr=0.1, schedule="halving").multipliers(4) == [1, 1, 0.5, 0.5]


def test_a_registered_schedule_is_searched_by_search_space(registry):
    registry.register("halving", _halving, params={"at": Float(0.2, 0.8)})
    space = SearchSpace(schedules=("halving", "constant"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        config = space.sample(trial, n_train=1000)
        seen.add(config.schedule)
        if config.schedule == "halving":
            assert 0.2 <= trial.params["halving.at"] <= 0.8
            assert config.schedule_params == {"at": trial.params["halving.at"], "factor": 0.5}
        study.tell(trial, 1.0)
    assert seen == {"halving", "constant"}


def test_register_with_a_plain_defaulted_parameter(registry):
    def decay(step, total_steps, gamma=0.5):  # not keyword-only: still searchable
        return gamma ** (step / total_steps)

    registry.register("decay", decay, params={"gamma": Float(0.1, 0.9)})
    assert registry.get("decay").defaults() == {"gamma": 0.5}
    assert registry.multiplier("decay", 5, 10, gamma=0.25) == 0.5


def test_register_a_lambda(registry):
    registry.register("flat", lambda step, total_steps: 0.5)
    assert registry.multipliers("flat", 3) == [0.5, 0.5, 0.5]


def test_duplicate_names_need_overwrite(registry):
    with pytest.raises(InvalidSpaceError, match="exists already.*overwrite=True"):
        registry.register("cosine", _halving)
    registry.register("cosine", _halving, overwrite=True)
    assert registry.get("cosine").function is _halving


@pytest.mark.parametrize("bad", [math.nan, -0.5, math.inf, "1.0", None])
def test_a_function_returning_a_bad_factor_is_rejected_at_registration(registry, bad):
    with pytest.raises(InvalidSpaceError, match="must return a finite factor >= 0"):
        registry.register("broken", lambda step, total_steps: bad)
    assert "broken" not in registry.names()


def test_a_factor_going_bad_late_in_the_run_is_rejected(registry):
    def late_nan(step, total_steps):
        return math.nan if step > total_steps // 2 else 1.0

    with pytest.raises(InvalidSpaceError, match=r"returned nan at step 9 of 10"):
        registry.register("late_nan", late_nan)


@pytest.mark.parametrize("key", ["gamma", "step", "total_steps"])
def test_params_naming_a_non_keyword_raises(registry, key):
    with pytest.raises(InvalidSpaceError, match=rf"searches \['{key}'\].*'at', 'factor'"):
        registry.register("halving", _halving, params={key: Float(0.1, 0.9)})
    assert "halving" not in registry.names()


def test_params_must_be_dimensions(registry):
    with pytest.raises(InvalidSpaceError, match="Float, Int or Choice"):
        registry.register("halving", _halving, params={"at": (0.2, 0.8)})


@pytest.mark.parametrize("name", ["", "two words", "1st", None])
def test_names_must_be_identifiers(registry, name):
    with pytest.raises(InvalidSpaceError, match="Python identifier"):
        registry.register(name, _halving)


def test_register_needs_a_function(registry):
    with pytest.raises(InvalidSpaceError, match="must be a function"):
        registry.register("number", 0.5)


def test_dims_validate_their_bounds():
    with pytest.raises(InvalidSpaceError, match="finite"):
        Float(0.0, math.inf)
    with pytest.raises(InvalidSpaceError, match="low <= high"):
        Float(1.0, 0.5)
    with pytest.raises(InvalidSpaceError, match="log-scaled range needs low > 0"):
        Float(0.0, 1.0, log=True)
    with pytest.raises(InvalidSpaceError, match="low <= high"):
        Int(3, 2)
    with pytest.raises(InvalidSpaceError, match="at least one option"):
        Choice(())


# --- the torch adapter ------------------------------------------------------------------

def _run(optimizer, scheduler, steps: int) -> list[float]:
    """The lr used at each optimizer step, stepping the scheduler after every step."""
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


@pytest.mark.parametrize("name", BUILT_IN)
def test_lambda_lr_gives_the_multipliers_over_a_whole_run(name):
    optimizer = _optimizer(0.1)
    scheduler = schedules.lambda_lr(optimizer, name, 40, warmup_steps=4)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    expected = [0.1 * m for m in schedules.multipliers(name, 40, warmup_steps=4)]
    lrs = _run(optimizer, scheduler, 45)  # five steps past the end hold the last value
    assert lrs == pytest.approx(expected + [expected[-1]] * 5, rel=1e-12)


def test_lambda_lr_passes_schedule_params_and_checks_them():
    optimizer = _optimizer(1.0)
    scheduler = schedules.lambda_lr(optimizer, "step", 8, step_fraction=0.25, gamma=0.5)
    assert _run(optimizer, scheduler, 8) == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    with pytest.raises(InvalidSpaceError, match="no parameter"):
        schedules.lambda_lr(_optimizer(), "step", 8, gama=0.5)


def test_cosine_matches_torch_cosine_annealing_lr():
    total = 500
    ours = _optimizer(0.3)
    theirs = _optimizer(0.3)
    mine = _run(ours, schedules.lambda_lr(ours, "cosine", total), total)
    torch_lrs = _run(theirs, torch.optim.lr_scheduler.CosineAnnealingLR(
        theirs, T_max=total, eta_min=0.0), total)
    # torch updates cosine annealing recursively, so allow float round-off only
    assert mine == pytest.approx(torch_lrs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("total", "pct_start", "div_factor", "final_div_factor"),
                         [(1000, 0.3, 25.0, 1e4), (400, 0.25, 10.0, 100.0),
                          (101, 0.5, 25.0, 1e4)])
def test_one_cycle_matches_torch_one_cycle_lr(total, pct_start, div_factor, final_div_factor):
    ours = _optimizer(1.0)
    theirs = _optimizer(1.0)
    params = {"pct_start": pct_start, "div_factor": div_factor,
              "final_div_factor": final_div_factor}
    mine = _run(ours, schedules.lambda_lr(ours, "one_cycle", total, **params), total)
    torch_lrs = _run(theirs, torch.optim.lr_scheduler.OneCycleLR(
        theirs, max_lr=1.0, total_steps=total, anneal_strategy="cos", three_phase=False,
        cycle_momentum=False, **params), total)
    assert mine[0] == torch_lrs[0] == pytest.approx(1.0 / div_factor)
    # Off by one, on purpose: torch's OneCycleLR ends its phases at steps pct_start*T - 1
    # and T - 1 (it reaches the final rate on the last step); autolr, like every family
    # here and like CosineAnnealingLR(T_max=T), measures progress as step / T, so its
    # peak is one step later and its last step is one step short of the final rate.
    # Shifting a cosine by one step changes it by at most about pi / (2 * phase length),
    # so the curves agree within a few 1/T.
    peak = pct_start * total
    if peak == int(peak):  # the peak falls on a step: torch's comes one step earlier
        assert mine.index(max(mine)) == peak
        assert torch_lrs.index(max(torch_lrs)) == peak - 1
    assert max(abs(a - b) for a, b in zip(mine, torch_lrs, strict=True)) < 4.0 / total
    final = 1.0 / div_factor / final_div_factor
    assert torch_lrs[-1] == pytest.approx(final)
    assert final < mine[-1] < final + 10.0 / total**2  # one step short of the final rate


@pytest.mark.parametrize("name, params", [
    ("cosine", {"min_fraction": 7}), ("cosine_restarts", {"min_fraction": -0.1}),
    ("exponential", {"final_fraction": 1.5}), ("cyclic", {"base_fraction": 2.0}),
    ("step", {"gamma": 3.0}), ("one_cycle", {"pct_start": 1.2}),
])
def test_a_built_in_fraction_outside_0_to_1_is_rejected(name, params):
    # min_fraction=7 gave factors from 1 to 7: a factor >= 0, but not a decay anyone means
    key, value = next(iter(params.items()))
    with pytest.raises(InvalidSpaceError, match=rf"{name}.*{key} is a fraction, between 0 "
                                                rf"and 1, but got {key}={value}"):
        schedules.check_params(name, params)
    assert schedules.check_params(name, {key: 0.5})[key] == 0.5


@pytest.mark.parametrize("total", [0, -3, 2.5, True])
def test_a_run_of_no_steps_is_refused_by_name(total):
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(InvalidSpaceError, match=r"total_steps >= 1 optimizer steps"):
        schedules.lambda_lr(opt, "cosine", total)  # was a raw IndexError


def test_a_parameter_named_as_autolr_passes_it_is_refused_at_registration(registry):
    # it registered, then every trial failed: "multipliers() got multiple values for 'name'"
    def clash(step, total_steps, warmup_steps=0):
        return 1.0

    with pytest.raises(InvalidSpaceError, match=r"keyword parameter\(s\) \['warmup_steps'\]"):
        schedules.register("clash", clash)


def test_a_schedule_that_goes_negative_at_some_step_fails_its_trial_naming_it(registry):
    # registration samples a few steps; a fixed parameter can make it negative: the trial
    # trained on gradient ascent and was recorded complete
    from sklearn.datasets import load_digits

    import autolr

    def level(step, total_steps, a=1.0):
        return a

    schedules.register("level", level)
    X, y = load_digits(return_X_y=True)
    result = autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=1, epochs=1,
                         space={"schedules": ["level"], "schedule_params": {"level": {"a": -0.5}}},
                         progress=False, confirm_seeds=0, range_test=False)
    record = result.records[0]
    assert record.state == "failed"
    assert "schedule 'level' gave a learning-rate factor of -0.0333" in record.reason


def test_numpy_numbers_in_schedule_params_are_plain_numbers():
    # they passed SearchSpace, then tune failed: 'float32 is not JSON serializable'
    space = SearchSpace(schedules=("cosine_restarts",),
                        schedule_params={"cosine_restarts": {"cycles": np.int64(3),
                                                             "min_fraction": np.float32(0.25)}})
    given = space.schedule_params["cosine_restarts"]
    assert type(given["cycles"]) is int and type(given["min_fraction"]) is float


def test_a_resume_with_a_schedule_registered_with_other_ranges_is_refused(registry, tmp_path):
    # it resumed silently, drawing its later trials from another space
    from sklearn.datasets import load_digits

    import autolr

    def hold(step, total_steps, keep=0.5):
        return 1.0 if step < keep * total_steps else 0.1

    X, y = load_digits(return_X_y=True)
    settings = dict(space={"schedules": ["hold"]}, epochs=1, progress=False, confirm_seeds=0,
                    range_test=False, storage=str(tmp_path / "s.log"), study_name="s")
    schedules.register("hold", hold, params={"keep": Float(0.2, 0.8)})
    autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=2, **settings)
    autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=3, **settings)  # the same
    schedules.register("hold", hold, params={"keep": Float(0.05, 0.1)}, overwrite=True)
    with pytest.raises(AutoLRError, match=r"own_schedules: stored .*Float\(low=0\.2"):
        autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=4, **settings)


def hold_half(step: int, total_steps: int) -> float:  # a module's: named without a digest
    return 1.0 if step < total_steps // 2 else 0.1


def test_an_own_schedule_edited_after_the_sweep_is_handed_out_with_a_warning(
        registry, tmp_path):
    import warnings

    from sklearn.datasets import load_digits

    import autolr
    from autolr.reporting.data import extract
    from autolr.storage import open_storage

    X, y = load_digits(return_X_y=True)
    storage = str(tmp_path / "s.log")
    settings = dict(space={"schedules": ["hold_half"]}, epochs=1, progress=False,
                    confirm_seeds=0, range_test=False, storage=storage, study_name="s")
    schedules.register("hold_half", hold_half)
    result = autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=2, **settings)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the code the sweep trained: no warning
        result.code(), result.make_scheduler(optimizer, 10, 1)

    def edited(step: int, total_steps: int) -> float:  # the same name, another body
        return 1.0 if step < total_steps // 4 else 0.1

    edited.__module__, edited.__qualname__ = hold_half.__module__, hold_half.__qualname__
    schedules.register("hold_half", edited, overwrite=True)
    said = (r"registered under the function the sweep trained \((tests\.)?test_schedules\."
            r"hold_half\), but its code is not the same")
    for read in (result, autolr.load(storage, "s")):
        with pytest.warns(UserWarning, match=said):
            read.make_scheduler(optimizer, 10, 1)
        with pytest.warns(UserWarning, match=said):
            read.code()
    with pytest.warns(UserWarning, match=said):  # its code() too
        data = extract(result)  # drawn (with the code as it is now), the caveat beside it
    assert data.best_schedule is not None and "its code is not the same" in data.schedule_note
    # a resume compares the function's name, as before: an edited function resumes, and
    # so does a sweep an older autolr stored without its code's digest
    autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=3, **settings)
    study = optuna.load_study(study_name="s", storage=open_storage(storage))
    stored = study.user_attrs["own_schedules"]
    study.set_user_attr("own_schedules", {name: {k: v for k, v in own.items() if k != "code"}
                                          for name, own in stored.items()})
    older = autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=4, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no digest stored: nothing to compare
        older.code()


def test_make_scheduler_steps_lazily_and_refuses_what_is_not_an_optimizer(registry):
    from autolr.result import TuneResult
    from tests.test_report_data import rec

    calls = []

    def counted(step: int, total_steps: int, floor: float = 0.1) -> float:
        calls.append(step)
        return max(floor, 1.0 - step / total_steps)

    schedules.register("counted", counted)
    result = TuneResult([rec(0, "complete", 0.1, 0.2, schedule="counted",
                             schedule_params={"floor": np.float64(0.25)})], epochs=4)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    result.best_record.config  # noqa: B018 - checking it tries the schedule on a few steps
    calls.clear()
    scheduler = result.make_scheduler(optimizer, 10**4, 10**3)  # ten million steps
    assert len(calls) < 5  # not a table of the whole run up front
    for _ in range(3):
        optimizer.step(), scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 3 / 10**7))
    with pytest.raises(AutoLRError, match="optimizer must be a torch.optim.Optimizer"):
        result.make_scheduler(torch.nn.Linear(2, 1), 10, 2)
    # the pasted lines run as written: a numpy value written as a plain number
    code = result.code()
    assert "schedule_params = {'floor': 0.25}" in code
    assert "# 'counted' is your own schedule: register it first" in code
    # a record without its steps: the sweep's epochs, your loader's batches
    unknown = TuneResult([rec(0, "complete", 0.1, 0.2, steps_run=0)], epochs=4)
    assert "steps_per_epoch, epochs = len(train_loader), 4  #" in unknown.code()
