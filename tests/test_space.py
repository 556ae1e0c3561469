"""SearchSpace: defaults, validation, presets, sampling with real Optuna trials."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from autolr import schedules
from autolr.errors import AutoLRError, InvalidSpaceError, UnknownNameError
from autolr.space import (
    BASELINE,
    SearchSpace,
    TrialConfig,
    _preset_files,
    load_space,
    presets,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


# --- defaults -------------------------------------------------------------------------

def test_defaults():
    space = SearchSpace()
    assert space.lr == (1e-5, 1.0)
    assert space.schedules == schedules.BUILTIN  # user-registered ones join only when named
    assert space.warmup == (0.0, 0.2)
    assert space.batch_sizes == (16, 32, 64, 128, 256)
    assert space.optimizers == ("adamw",)
    assert space.weight_decay == 0.0


def test_lists_are_normalised():
    space = SearchSpace(lr=[1e-4, 1], schedules=["cosine", "constant", "cosine"],
                        warmup=[0, 0.1], batch_sizes=[64, 16, 64, np.int64(32)],
                        optimizers="sgd", weight_decay=[1e-5, 1e-2])
    assert space.lr == (1e-4, 1.0)
    assert space.schedules == ("cosine", "constant")  # repeats dropped, order kept
    assert space.warmup == (0.0, 0.1)
    assert space.batch_sizes == (16, 32, 64)
    assert all(type(b) is int for b in space.batch_sizes)
    assert space.optimizers == ("sgd",)
    assert space.weight_decay == (1e-5, 1e-2)


def test_baseline_is_adamw_1e3_constant_batch_32():
    assert (BASELINE.lr, BASELINE.schedule, BASELINE.batch_size, BASELINE.optimizer,
            BASELINE.warmup_fraction, BASELINE.weight_decay) == (1e-3, "constant", 32,
                                                                  "adamw", 0.0, 0.0)


# --- validation -------------------------------------------------------------------------

BAD_SPACES = [
    ({"lr": (0.0, 1.0)}, r"0 < low < high, such as \(1e-5, 1.0\)"),
    ({"lr": (-1e-3, 1.0)}, "0 < low < high"),
    ({"lr": (1e-2, 1e-3)}, "0 < low < high"),
    ({"lr": (1e-3, 1e-3)}, r"to train one, use autolr.train\(model, data, \{'lr': 0.001, ...\}\)"),
    ({"lr": (1e-3, 1e-3)}, "0 < low < high"),
    ({"lr": (math.nan, 1.0)}, "lr needs finite bounds"),
    ({"lr": (1e-5, math.inf)}, "lr needs finite bounds"),
    ({"lr": 1e-3}, r"lr must be a \(low, high\) pair"),
    ({"lr": (1e-5, 1.0, 2.0)}, r"lr must be a \(low, high\) pair"),
    ({"lr": ("1e-5", 1.0)}, r"lr must be a \(low, high\) pair"),
    ({"schedules": ()}, "schedules needs at least one name"),
    ({"schedules": []}, "schedules needs at least one name"),
    ({"warmup": (0.0, 1.0)}, r"0 <= low <= high < 1, such as \(0.0, 0.2\)"),
    ({"warmup": (-0.1, 0.2)}, "0 <= low <= high < 1"),
    ({"warmup": (0.3, 0.1)}, "0 <= low <= high < 1"),
    ({"warmup": (0.0, math.nan)}, "warmup needs finite bounds"),
    ({"batch_sizes": ()}, r"integers >= 1, such as \(32, 64, 128\)"),
    ({"batch_sizes": (0, 32)}, "integers >= 1"),
    ({"batch_sizes": (-16,)}, "integers >= 1"),
    ({"batch_sizes": (32.0,)}, "integers >= 1"),
    ({"batch_sizes": ("32",)}, "integers >= 1"),
    ({"batch_sizes": (True,)}, "integers >= 1"),
    ({"batch_sizes": 32}, "integers >= 1"),
    ({"optimizers": ()}, "optimizers needs at least one name"),
    ({"weight_decay": -1e-4}, "weight_decay must be a number >= 0 or a"),
    ({"weight_decay": math.nan}, "weight_decay must be a number >= 0"),
    ({"weight_decay": "1e-4"}, "weight_decay must be a number >= 0"),
    ({"weight_decay": True}, "weight_decay must be a number >= 0"),
    ({"weight_decay": (0.0, 1e-2)}, r"0 < low <= high, such as \(1e-6, 1e-2\)"),
    ({"weight_decay": (1e-2, 1e-4)}, "0 < low <= high"),
    ({"weight_decay": (1e-4, math.inf)}, "weight_decay needs finite bounds"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_SPACES)
def test_bad_space_raises_an_autolr_error_naming_the_fix(kwargs, message):
    with pytest.raises(InvalidSpaceError, match=message) as error:
        SearchSpace(**kwargs)
    assert isinstance(error.value, AutoLRError)
    assert isinstance(error.value, ValueError)


def test_unknown_schedule_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown schedule 'cosin'") as error:
        SearchSpace(schedules=("cosine", "cosin"))
    assert isinstance(error.value, AutoLRError)
    for name in schedules.names():
        assert name in str(error.value)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(UnknownNameError,
                       match="unknown optimizer 'adamx'; valid optimizers are: "
                             "adagrad, adam, adamw, rmsprop, sgd"):
        SearchSpace(optimizers=("adamw", "adamx"))


def test_fixed_and_searched_weight_decay_are_accepted():
    assert SearchSpace(weight_decay=1e-4).weight_decay == 1e-4
    assert SearchSpace(weight_decay=0).weight_decay == 0
    assert SearchSpace(weight_decay=(1e-4, 1e-4)).weight_decay == (1e-4, 1e-4)


# --- presets and loading --------------------------------------------------------------

PRESETS = sorted(_preset_files())


def test_there_is_a_default_preset():
    assert "default" in PRESETS
    default = SearchSpace.preset("default")
    assert dataclasses.replace(default, description="") == SearchSpace()


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads(name):
    space = SearchSpace.preset(name)
    assert isinstance(space, SearchSpace)
    assert space.description
    assert presets()[name] == space.description
    assert load_space(name) == space


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown preset 'defualt'; valid presets are: "
                                               + ", ".join(PRESETS)):
        load_space("defualt")


def test_a_space_file_not_ending_in_toml_is_told_its_new_name(tmp_path):
    (tmp_path / "mine.txt").write_text("lr = [1e-4, 1e-1]\n")
    with pytest.raises(UnknownNameError, match=r"is a file; rename it to end in .toml "
                                               r"\('.*mine.toml'\)"):  # it asked "mine.txt.toml?"
        load_space(str(tmp_path / "mine.txt"))


def test_a_typo_in_a_toml_names_the_key_and_the_valid_keys(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('learning_rate = [1e-4, 1e-1]\nschedules = ["cosine"]\n')
    with pytest.raises(InvalidSpaceError,
                       match=r"unknown key\(s\) \['learning_rate'\] in .*mine.toml; valid keys "
                             r"are \['batch_sizes', 'description', 'lr', 'lr_reference_batch', "
                             r"'lr_scaling', 'optimizers', 'schedule_params', 'schedules', "
                             r"'warmup', 'weight_decay'\]"):
        load_space(path)


def test_a_bad_value_in_a_toml_is_validated(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('lr = [1.0, 1e-4]\n')
    with pytest.raises(InvalidSpaceError, match="0 < low < high"):
        load_space(str(path))


def test_invalid_toml_and_missing_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("lr = [1e-4,\n")
    with pytest.raises(InvalidSpaceError, match="is not valid TOML"):
        load_space(path)
    with pytest.raises(InvalidSpaceError, match="no search-space file at"):
        load_space(tmp_path / "absent.toml")


def test_load_space_accepts_name_path_dict_and_space(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text('description = "small"\nlr = [1e-4, 1e-1]\n'
                    'schedules = ["cosine", "one_cycle"]\nbatch_sizes = [32]\n')
    expected = SearchSpace(lr=(1e-4, 1e-1), schedules=("cosine", "one_cycle"),
                           batch_sizes=(32,), description="small")
    assert load_space(path) == expected
    assert load_space(str(path)) == expected
    assert load_space({"lr": [1e-4, 1e-1], "schedules": ["cosine", "one_cycle"],
                       "batch_sizes": [32], "description": "small"}) == expected
    assert load_space(expected) is expected
    assert load_space("default") == SearchSpace.preset("default")
    assert load_space(SearchSpace().to_dict()) == SearchSpace()


def test_load_space_rejects_other_types():
    with pytest.raises(InvalidSpaceError, match="preset name .* a path to a .toml file, a dict"):
        load_space(42)


def test_a_dict_with_an_unknown_key_names_it():
    with pytest.raises(InvalidSpaceError, match=r"\['batch_size'\] in the space; valid keys"):
        load_space({"batch_size": [32]})


# --- sampling with real Optuna trials ---------------------------------------------------

def test_sample_stays_inside_the_space_and_names_conditional_params():
    space = SearchSpace(lr=(1e-4, 1e-1), optimizers=("adamw", "sgd"),
                        weight_decay=(1e-6, 1e-2), warmup=(0.0, 0.4))
    s = study()
    seen_schedules, seen_optimizers = set(), set()
    for _ in range(150):
        trial = s.ask()
        config = space.sample(trial, n_train=1000)
        assert isinstance(config, TrialConfig)
        assert 1e-4 <= config.lr <= 1e-1
        assert 0.0 <= config.warmup_fraction <= 0.4
        assert config.batch_size in space.batch_sizes
        assert config.optimizer in ("adamw", "sgd")
        assert 1e-6 <= config.weight_decay <= 1e-2
        info = schedules.get(config.schedule)
        conditional = {f"{config.schedule}.{p}" for p in info.params}
        # only the sampled family's parameters are asked for, each named {family}.{param}
        assert set(trial.params) == {"lr", "schedule", "warmup_fraction", "batch_size",
                                     "optimizer", "weight_decay"} | conditional
        for param, dim in info.params.items():
            value = trial.params[f"{config.schedule}.{param}"]
            assert dim.contains(value)
            assert config.schedule_params[param] == value
        assert config.schedule_params == {**info.defaults(), **config.schedule_params}
        seen_schedules.add(config.schedule)
        seen_optimizers.add(config.optimizer)
        s.tell(trial, 1.0)
    assert seen_schedules == set(space.schedules)
    assert seen_optimizers == {"adamw", "sgd"}


@pytest.mark.parametrize("low, high", [(0.0, 0.2), (0.02, 0.2), (0.05, 0.3), (0.01, 0.15)])
def test_warmup_ends_of_the_range_are_reachable_without_a_warning(low, high, recwarn):
    # (0.02, 0.2): the adamw-transformer preset, whose step in floats once lost the top
    space = SearchSpace(warmup=(low, high))
    s = study(1)
    warmups = set()
    for _ in range(100):
        trial = s.ask()
        warmups.add(space.sample(trial, n_train=1000).warmup_fraction)
        s.tell(trial, 1.0)
    assert min(warmups) == low and max(warmups) == pytest.approx(high, abs=1e-9)
    assert len(warmups) == 9  # a grid of nine points
    assert not [w for w in recwarn if "not divisible by `step`" in str(w.message)]


def test_a_warmup_range_no_float_step_divides_is_searched_whole(recwarn):
    # (1/3, 0.5): a ninth-point grid step in floats does not divide the range, and Optuna
    # cut 0.5 off the grid: the top of the range was never drawn
    space = SearchSpace(warmup=(1 / 3, 0.5))
    s = study(1)
    warmups = []
    for _ in range(60):
        trial = s.ask()
        warmups.append(space.sample(trial, n_train=1000).warmup_fraction)
        s.tell(trial, 1.0)
    assert 1 / 3 <= min(warmups) and max(warmups) <= 0.5 and max(warmups) > 0.49
    assert not [w for w in recwarn if "not divisible by `step`" in str(w.message)]
    from autolr.design import startup_design  # the designed start draws from it too

    design = [point["warmup_fraction"] for point in startup_design(space, 1000, 5, seed=0)]
    assert len(set(design)) == 5 and all(1 / 3 <= w <= 0.5 for w in design)


def test_fixed_choices_are_not_asked_for():
    space = SearchSpace(schedules=("cosine",), warmup=(0.1, 0.1), batch_sizes=(32,))
    trial = study().ask()
    config = space.sample(trial, n_train=100)
    assert set(trial.params) == {"lr"}
    assert (config.schedule, config.warmup_fraction, config.batch_size) == ("cosine", 0.1, 32)


def test_batch_sizes_above_the_train_set_are_never_sampled():
    space = SearchSpace(batch_sizes=(16, 32, 64, 128, 256))
    assert space.usable_batch_sizes(100) == (16, 32, 64)
    assert space.usable_batch_sizes(64) == (16, 32, 64)
    s = study(2)
    sizes = set()
    for _ in range(60):
        trial = s.ask()
        sizes.add(space.sample(trial, n_train=100).batch_size)
        s.tell(trial, 1.0)
    assert sizes == {16, 32, 64}


def test_every_batch_size_too_big_raises():
    space = SearchSpace(batch_sizes=(32, 64))
    message = r"every batch size in \(32, 64\) is larger than the 10 training rows; add a " \
              r"batch size <= 10"
    with pytest.raises(InvalidSpaceError, match=message):
        space.usable_batch_sizes(10)
    with pytest.raises(InvalidSpaceError, match=message):
        space.sample(study().ask(), n_train=10)


@pytest.mark.parametrize("config", [
    BASELINE,
    TrialConfig(lr=0.01, schedule="one_cycle", schedule_params={"pct_start": 0.25},
                warmup_fraction=0.1, batch_size=64),
    TrialConfig(lr=0.02, schedule="cosine_restarts",
                schedule_params={"cycles": 3, "cycle_mult": 2}, warmup_fraction=0.05,
                batch_size=16, optimizer="sgd", weight_decay=1e-4),
])
def test_params_for_round_trips_through_enqueue_trial(config):
    space = SearchSpace(optimizers=("adamw", "sgd"), weight_decay=(1e-6, 1e-2)) \
        if config.optimizer == "sgd" else SearchSpace()
    params = space.params_for(config, n_train=1000)
    assert params is not None
    s = study()
    s.enqueue_trial(params)
    assert space.sample(s.ask(), n_train=1000) == config


def test_params_for_a_config_outside_the_space_is_none():
    space = SearchSpace(lr=(1e-4, 1e-1), schedules=("cosine",), batch_sizes=(16, 32))
    assert space.params_for(BASELINE, 1000) is None  # constant is not searched
    inside = TrialConfig(lr=1e-3, schedule="cosine", batch_size=32)
    assert space.params_for(inside, 1000) is not None
    assert space.params_for(inside, 20) is None  # batch 32 does not fit 20 rows
    assert space.params_for(TrialConfig(lr=1.0, schedule="cosine"), 1000) is None
    assert space.params_for(TrialConfig(lr=1e-3, schedule="cosine", optimizer="sgd"),
                            1000) is None



# --- a family's own parameters: schedule_params ---------------------------------------

def test_schedule_params_narrow_or_fix_what_a_family_searches():
    space = SearchSpace(schedules=("cosine_restarts", "one_cycle", "cyclic"), schedule_params={
        "cosine_restarts": {"cycles": [3, 4], "cycle_mult": 1},  # range; fixed choice
        "one_cycle": {"pct_start": 0.3},  # fixed
        "cyclic": {"base_fraction": (0.1, 0.2), "cycles": 2}})
    s = study()
    seen: dict[str, set] = {"cycles": set(), "base_fraction": set()}
    for _ in range(120):
        trial = s.ask()
        config = space.sample(trial, n_train=1000)
        p = config.schedule_params
        if config.schedule == "cosine_restarts":
            assert p["cycles"] in (3, 4) and p["cycle_mult"] == 1
            assert "cosine_restarts.cycle_mult" not in trial.params  # fixed: not asked
            seen["cycles"].add(p["cycles"])
        elif config.schedule == "one_cycle":
            assert p["pct_start"] == 0.3 and "one_cycle.pct_start" not in trial.params
        else:
            assert 0.1 <= p["base_fraction"] <= 0.2 and p["cycles"] == 2
            seen["base_fraction"].add(p["base_fraction"])
        s.tell(trial, 1.0)
    assert seen["cycles"] == {3, 4} and len(seen["base_fraction"]) > 5


def test_schedule_params_set_a_parameter_the_family_keeps_at_its_default():
    fixed = SearchSpace(schedules=("cosine",), schedule_params={"cosine": {"min_fraction": 0.1}})
    trial = study().ask()
    config = fixed.sample(trial, n_train=1000)
    assert config.schedule_params == {"min_fraction": 0.1} and "cosine.min_fraction" not in (
        trial.params)
    # the run decays to a tenth, not to zero
    assert schedules.multiplier("cosine", 99, 100, **config.schedule_params) == pytest.approx(
        0.1, abs=1e-3)
    searched = SearchSpace(schedules=("cosine",),
                           schedule_params={"cosine": {"min_fraction": (0.0, 0.2)}})
    s = study()
    values = set()
    for _ in range(20):
        trial = s.ask()
        value = searched.sample(trial, n_train=1000).schedule_params["min_fraction"]
        assert 0.0 <= value <= 0.2 and trial.params["cosine.min_fraction"] == value
        values.add(value)
        s.tell(trial, 1.0)
    assert len(values) == 20
    default_end = TrialConfig(lr=1e-3, schedule="cosine")  # min_fraction 0: outside
    assert fixed.params_for(default_end, 1000) is None


@pytest.mark.parametrize("schedule_params, message", [
    ({"cosine": {"x": 1}}, "not among the space's schedules"),
    ({"one_cycle": {"pct": 0.3}},
     r"one_cycle's parameters \(pct_start, div_factor, final_div_factor\)"),
    ({"one_cycle": 0.3}, r"one_cycle's parameters"),
    ({"one_cycle": {"div_factor": (5, "x")}}, r"such as 25\.0, but got \(5, 'x'\)"),
    ({"one_cycle": {"pct_start": (0.5, 0.1)}}, "low <= high"),
    ({"one_cycle": {"pct_start": "0.3"}}, r"a \(low, high\) pair of numbers"),
    ({"one_cycle": {"pct_start": (0.1, 0.2, 0.3)}}, "one value or a"),
    ({"cosine_restarts": {"cycles": (0, 2)}}, "cycles"),  # not a valid value of the family
    ({"cosine_restarts": {"cycles": 2.5}}, "pair of integers"),
    ({"cosine_restarts": {"cycle_mult": 3}}, r"one or more of \[1, 2\]"),
    ({"step": {"gamma": (0.0, 0.5)}}, "log scale and needs low > 0"),
    ([("one_cycle", {})], "maps a family to its parameters"),
])
def test_bad_schedule_params_name_the_fix(schedule_params, message):
    schedules_ = ("one_cycle", "cosine_restarts", "step")
    with pytest.raises(InvalidSpaceError, match=message):
        SearchSpace(schedules=schedules_, schedule_params=schedule_params)


def test_schedule_params_load_from_toml_and_round_trip(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('schedules = ["cosine_restarts", "one_cycle"]\n'
                    "[schedule_params.cosine_restarts]\ncycles = [2, 3]\n"
                    "[schedule_params.one_cycle]\npct_start = 0.25\n")
    space = load_space(path)
    assert space.schedule_params == {"cosine_restarts": {"cycles": (2, 3)},
                                     "one_cycle": {"pct_start": 0.25}}
    assert SearchSpace.from_dict(space.to_dict()) == space


def test_params_for_respects_schedule_params():
    space = SearchSpace(schedule_params={"one_cycle": {"pct_start": 0.3},
                                         "cosine_restarts": {"cycles": (2, 3)}})
    fixed = TrialConfig(lr=1e-3, schedule="one_cycle", schedule_params={"pct_start": 0.3})
    params = space.params_for(fixed, 1000)
    assert params is not None
    s = study()
    s.enqueue_trial(params)
    assert space.sample(s.ask(), n_train=1000) == fixed
    assert space.params_for(TrialConfig(lr=1e-3, schedule="one_cycle",
                                        schedule_params={"pct_start": 0.4}), 1000) is None
    assert space.params_for(TrialConfig(lr=1e-3, schedule="cosine_restarts",
                                        schedule_params={"cycles": 4}), 1000) is None

# --- TrialConfig ------------------------------------------------------------------------

def test_trial_config_fills_in_schedule_defaults():
    config = TrialConfig(lr=0.1, schedule="one_cycle", schedule_params={"pct_start": 0.2})
    assert config.schedule_params == {"pct_start": 0.2, "div_factor": 25.0,
                                      "final_div_factor": 1e4}


def test_trial_config_dict_round_trip():
    config = TrialConfig(lr=0.01, schedule="step", schedule_params={"gamma": 0.5},
                         warmup_fraction=0.1, batch_size=64, optimizer="sgd",
                         weight_decay=1e-4)
    assert TrialConfig.from_dict(config.to_dict()) == config
    assert TrialConfig.from_dict(config) is config


def test_trial_config_from_dict_rejects_unknown_keys():
    with pytest.raises(InvalidSpaceError,
                       match=r"unknown config key\(s\) \['learning_rate'\]; valid keys are "
                             r"\['batch_size', 'lr', 'optimizer', 'schedule', "):
        TrialConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(InvalidSpaceError, match="a config must be a dict"):
        TrialConfig.from_dict([("lr", 1e-3)])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"lr": 0.0}, InvalidSpaceError, "lr must be a finite number > 0"),
    ({"lr": math.nan}, InvalidSpaceError, "lr must be a finite number > 0"),
    ({"lr": 1e-3, "schedule": "cosin"}, UnknownNameError, "valid schedules are"),
    ({"lr": 1e-3, "schedule_params": {"gamma": 0.1}}, InvalidSpaceError, "no parameter"),
    ({"lr": 1e-3, "warmup_fraction": 1.0}, InvalidSpaceError, r"must be in \[0, 1\)"),
    ({"lr": 1e-3, "batch_size": 0}, InvalidSpaceError, "batch_size must be an integer >= 1"),
    ({"lr": 1e-3, "optimizer": "lion"}, UnknownNameError, "valid optimizers are"),
    ({"lr": 1e-3, "weight_decay": -1.0}, InvalidSpaceError, "weight_decay must be a number >= 0"),
    ({"lr": 1e-3, "weight_decay": None}, InvalidSpaceError, "weight_decay must be a number >= 0"),
    ({"lr": "1e-3"}, InvalidSpaceError, "lr must be a finite number > 0"),
    ({"lr": 1e-3, "batch_size": 32.5}, InvalidSpaceError, "batch_size must be an integer"),
    ({"lr": 1e-3, "batch_size": True}, InvalidSpaceError, "batch_size must be an integer"),
    ({"lr": 1e-3, "schedule": "cyclic", "schedule_params": {"cycles": 0}}, InvalidSpaceError,
     "cycles must be an integer >= 1, but got cycles=0"),
    ({"lr": 1e-3, "schedule": "exponential", "schedule_params": {"final_fraction": -0.5}},
     InvalidSpaceError, "final_fraction is a fraction, between 0 and 1"),
    ({"lr": 1e-3, "schedule": "linear", "schedule_params": {"end_fraction": 3}},
     InvalidSpaceError, "end_fraction is a fraction, between 0 and 1, but got end_fraction=3"),
    ({"lr": 1e-3, "schedule": "polynomial", "schedule_params": {"power": -1.0}},
     InvalidSpaceError, "power must be a number > 0, but got power=-1.0"),
    ({"lr": 1e-3, "schedule": "one_cycle", "schedule_params": {"div_factor": 0}},
     InvalidSpaceError, "div_factor must be a number > 0"),
    # below 1 one-cycle would start above its peak, or end above its start
    ({"lr": 1e-3, "schedule": "one_cycle", "schedule_params": {"div_factor": 0.5}},
     InvalidSpaceError, "div_factor=0.5: the schedule would start above its peak"),
    ({"lr": 1e-3, "schedule": "one_cycle", "schedule_params": {"final_div_factor": 0.1}},
     InvalidSpaceError, "final_div_factor=0.1: the schedule would end above its start"),
    ({"lr": 1e-3, "schedule": "step", "schedule_params": {"step_fraction": 0}},
     InvalidSpaceError, "step_fraction is the share of the run between drops and must be > 0"),
])
def test_trial_config_validates(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrialConfig(**kwargs)


def test_trial_config_takes_numpy_numbers_as_from_result_trials():
    config = TrialConfig(lr=np.float32(0.5), batch_size=np.int64(64),
                         warmup_fraction=np.float64(0.1), weight_decay=np.float32(0.0))
    assert config == TrialConfig(lr=float(np.float32(0.5)), batch_size=64, warmup_fraction=0.1)
    assert type(config.lr) is float and type(config.batch_size) is int
    assert TrialConfig(lr=1e-3, batch_size=32.0).batch_size == 32  # a pandas column of floats
    with pytest.raises(InvalidSpaceError, match="a config needs an 'lr'"):
        TrialConfig.from_dict({"batch_size": 32})
    space = SearchSpace(lr=(np.float32(1e-4), np.float64(0.1)), weight_decay=np.float32(0.01))
    assert space.lr == pytest.approx((1e-4, 0.1)) and type(space.weight_decay) is float


@pytest.mark.parametrize("name", schedules.names())
@pytest.mark.parametrize(("total", "warmup"), [(1, 0.0), (1, 0.5), (2, 0.99), (37, 0.1),
                                               (500, 0.2)])
def test_trial_config_multipliers_cover_every_step(name, total, warmup):
    config = TrialConfig(lr=0.1, schedule=name, warmup_fraction=warmup)
    assert 0 <= config.warmup_steps(total) < total
    values = config.multipliers(total)
    assert len(values) == total
    assert values == schedules.multipliers(name, total,
                                           warmup_steps=config.warmup_steps(total))


def test_warmup_steps_rounds_the_fraction():
    config = TrialConfig(lr=0.1, warmup_fraction=0.1)
    assert config.warmup_steps(1000) == 100
    assert config.warmup_steps(14) == 1
    assert config.warmup_steps(1) == 0


def test_preset_files_are_shipped_in_the_package():
    # found through importlib.resources, so they work from an installed wheel too
    for path in _preset_files().values():
        assert Path(str(path)).suffix == ".toml"


def test_config_from_params_replays_sample():
    space = SearchSpace()
    config = TrialConfig(lr=0.01, schedule="one_cycle", schedule_params={"pct_start": 0.25},
                         warmup_fraction=0.1, batch_size=64)
    assert space.config_from_params(space.params_for(config, 1000), 1000) == config
    trial = study().ask()
    sampled = space.sample(trial, 1000)
    assert space.config_from_params(trial.params, 1000) == sampled


@pytest.mark.parametrize("scaling, exponent", [("linear", 1.0), ("sqrt", 0.5), ("none", 0.0)])
def test_lr_relative_to_batch_size(scaling, exponent):
    space = SearchSpace(lr=(1e-3, 1e-3 * 1.0000001), batch_sizes=(64, 1024),
                        lr_scaling=scaling, lr_reference_batch=256)
    trial_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {}
    for _ in range(20):
        config = space.sample(trial_study.ask(), n_train=5000)
        seen[config.batch_size] = config.lr
    for batch, lr in seen.items():
        assert lr == pytest.approx(1e-3 * (batch / 256) ** exponent, rel=1e-6)
    baseline = TrialConfig(lr=seen[1024], batch_size=1024)
    params = space.params_for(baseline, 5000)
    assert params["lr"] == pytest.approx(1e-3, rel=1e-6)
    assert space.config_from_params(params, 5000).lr == pytest.approx(seen[1024])


def test_unknown_lr_scaling_names_the_valid_ones():
    with pytest.raises(InvalidSpaceError, match="none, linear, sqrt"):
        SearchSpace(lr_scaling="quadratic")


def test_numpy_arrays_are_lists_of_their_values():
    import numpy as np

    given = {"schedules": np.array(["cosine", "linear"]), "batch_sizes": np.array([16, 32]),
             "lr": np.array([1e-4, 1e-1])}
    space = SearchSpace(**given)
    assert space.schedules == ("cosine", "linear") and type(space.schedules[0]) is str
    assert space.batch_sizes == (16, 32) and space.lr == (1e-4, 1e-1)
    assert list(given["schedules"]) == ["cosine", "linear"]  # the user's, untouched


def test_a_toml_path_that_is_a_folder_or_not_text_is_a_space_error(tmp_path):
    # IsADirectoryError / UnicodeDecodeError tracebacks, exit 1 from the CLI
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(InvalidSpaceError, match="cannot read the search-space file"):
        SearchSpace.from_toml(folder)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"lr = [\xff\xfe]")
    with pytest.raises(InvalidSpaceError, match="is not valid TOML"):
        SearchSpace.from_toml(binary)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(schedules=[["cosine"]]), r"schedules holds names such as 'cosine', but got \['cosine'\]"),
    (dict(optimizers=[["adamw"]]), r"optimizers holds names such as 'adamw', but got \['adamw'\]"),
    (dict(lr_scaling=["linear"]), "lr_scaling must be one of none, linear, sqrt"),
    (dict(lr_scaling={}), "lr_scaling must be one of none, linear, sqrt"),
])
def test_unhashable_names_are_space_errors_not_type_errors(kwargs, message):
    with pytest.raises(InvalidSpaceError, match=message):
        SearchSpace(**kwargs)
