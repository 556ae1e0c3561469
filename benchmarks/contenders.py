"""The sampler + pruner combinations compared in replay, each as a small recipe.

Two kinds of objective:
- "autolr": autolr's own Optuna objective (`autolr.backends.optuna.make_objective`, which
  samples `SearchSpace.sample` and reports through `OptunaReporter`), with autolr's
  sampler (`sweep_sampler`: TPE, space-filling start) and pruner (`make_pruner`): what
  `autolr.tune` really runs;
- "plain": what a user writes today: `suggest_float("lr", log=True)`, categorical
  schedule and batch size, a report per epoch, `should_prune()`, and a diverged trial
  pruned once its epoch ends (the NaN shows at the epoch's validation).

Ray Tune's ASHA with random search is emulated in replay by Optuna's random sampler and
its SuccessiveHalvingPruner, which is asynchronous successive halving, with Ray's
ASHAScheduler defaults (grace period 1, reduction factor 4, max_t = the epochs).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from autolr.backends.optuna import sweep_sampler
from autolr.checked_halving import RUNG_FRACTIONS, CheckedHalvingPruner
from autolr.delegating import DelegatingSampler
from autolr.pruning import DecayAwareMedianPruner
from autolr.robust import DEFAULT_EXTRA_SEEDS
from autolr.sweep import Sweep

#: checked halving's rung fractions with one earlier than the default's, as ASHA starts
EARLY_LADDER = (1 / 16, *RUNG_FRACTIONS)


@dataclass(frozen=True)
class Recipe:
    """How one contender samples and prunes."""

    name: str
    description: str
    kind: str  # "autolr" or "plain"
    # "plain": seed -> sampler; "autolr": the Sweep (space, seed, baseline) -> sampler
    sampler: Callable[[Any], optuna.samplers.BaseSampler]
    # n_evals -> an Optuna pruner (for "autolr" recipes wrapped in autolr's AutoLRPruner by
    # make_pruner), or a make_pruner name ("auto", "none", ...) for "autolr" recipes
    pruner: Callable[[int], optuna.pruners.BasePruner | None] | str
    confirm_seeds: int = DEFAULT_EXTRA_SEEDS  # autolr's robust pick ("autolr" recipes only)
    confirm_after: int | None = None  # None: the robust pick runs at the end only
    # "autolr" recipes: search the lr relative to the batch size (SearchSpace.lr_scaling)
    lr_scaling: str = "none"
    # "autolr" recipes: centre the lr range on a range test's suggestion ("valley"),
    # PRIOR_DECADES either side, the test's cost charged first (replay.prior_space)
    lr_prior: str | None = None
    # "autolr" recipes: the first trial trains at a range test's suggestion ("valley"), with
    # this schedule at the smallest batch, the test's cost charged first (replay.first_trial)
    first_schedule: str | None = None
    finder_place: int = 0  # the place in the plan of that trial (0: the first)


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


def _random(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def _autolr_sampler(sweep: Sweep) -> optuna.samplers.BaseSampler:
    return sweep_sampler(sweep)


def _autolr_random_start(sweep: Sweep) -> optuna.samplers.BaseSampler:
    return sweep_sampler(sweep, design_trials=0)


def _autolr_design10(sweep: Sweep) -> optuna.samplers.BaseSampler:
    return sweep_sampler(sweep, design_trials=10)


class _ExploreFamilies(DelegatingSampler):
    """`base`, except that a share of its trials past the start-up (drawn from the trial
    number) take a schedule family drawn uniformly instead of TPE's: TPE settles on a
    family early and leaves the others thinly tried."""

    def __init__(self, base: optuna.samplers.BaseSampler, share: float, seed: int) -> None:
        super().__init__(base)
        self.share, self.seed = share, seed

    def sample_relative(self, study, trial, search_space):
        params = self.base.sample_relative(study, trial, search_space)
        if "schedule" in params:
            draw = random.Random(zlib.crc32(f"{self.seed}:{trial.number}".encode()))
            if draw.random() < self.share:
                params["schedule"] = draw.choice(search_space["schedule"].choices)
        return params


def _explore_families(share: float) -> Callable[[Sweep], optuna.samplers.BaseSampler]:
    return lambda sweep: _ExploreFamilies(sweep_sampler(sweep), share, sweep.seed)


def _median(n_evals: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner()


def _sha(n_evals: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner()


def _asha(n_evals: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)


def _none(n_evals: int) -> None:
    return None


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("autolr", "autolr.tune defaults: TPE (multivariate, group, 10 start-up trials, "
           "the first 5 from a space-filling design, the default config as trial 10 "
           "where the space holds it) + "
           "autolr pruner (checked halving: the decay-aware median plus successive halving, "
           "reduction 4, from the earliest of 1/9, 1/4, 1/3 of the run whose rungs the "
           "sweep's 2 best finished trials would have passed; LR-aware stall, divergence) + "
           "robust pick (the leader re-trained on 2 more seeds at the end)",
           "autolr", _autolr_sampler, "auto"),
    Recipe("autolr-decay-median", "autolr defaults with pruner='decay_median': the "
           "decay-aware median rule alone (the default pruner until 2026-12-04)",
           "autolr", _autolr_sampler, "decay_median"),
    Recipe("optuna-tpe-median", "plain Optuna: TPE + MedianPruner (both at defaults)",
           "plain", _tpe, _median),
    Recipe("optuna-tpe", "plain Optuna: TPE, no pruning", "plain", _tpe, _none),
    Recipe("optuna-tpe-sha", "plain Optuna: TPE + SuccessiveHalvingPruner (defaults)",
           "plain", _tpe, _sha),
    Recipe("random", "random search, no pruning", "plain", _random, _none),
    Recipe("random-median", "random search + MedianPruner", "plain", _random, _median),
    Recipe("ray-asha-like", "random search + ASHA (grace 1, reduction 4), emulated with "
           "Optuna's SuccessiveHalvingPruner", "plain", _random, _asha),
    # autolr with its other settings (for issue 8: what to make the default). They were
    # measured when the decay-aware median rule was the default pruner, and keep it
    # (pruner "decay_median") so that their rows stay reproducible. Those below
    # autolr-design10 were measured before the space-filling start, against
    # autolr-random-start, and keep its sampler for the same reason
    Recipe("autolr-random-start", "autolr-decay-median with TPE's own random start-up "
           "trials (no space-filling design)", "autolr", _autolr_random_start,
           "decay_median"),
    Recipe("autolr-design10", "autolr-decay-median with all 10 of TPE's start-up trials "
           "from the space-filling design", "autolr", _autolr_design10, "decay_median"),
    Recipe("autolr-nopruner", "autolr (random start), pruner='none' (divergence + stall "
           "only)", "autolr", _autolr_random_start, "none"),
    Recipe("autolr-sha", "autolr (random start), pruner='successive_halving'", "autolr",
           _autolr_random_start, "successive_halving"),
    Recipe("autolr-median", "autolr (random start) with Optuna's MedianPruner from mid-run "
           "(pruner='median'; the default before the decay-aware rule)", "autolr",
           _autolr_random_start, "median"),
    Recipe("autolr-decay-early", "autolr (random start), decay-aware median from a tenth of "
           "the run on, after 3 complete trials", "autolr", _autolr_random_start,
           lambda n: DecayAwareMedianPruner(n, start_fraction=0.1, n_startup_trials=3)),
    Recipe("autolr-confirm0", "autolr (random start) without the robust pick (confirm_seeds=0)",
           "autolr", _autolr_random_start, "decay_median", 0),
    Recipe("autolr-confirm-during", "autolr (random start), leaders also confirmed during the "
           "sweep from 10 complete trials on", "autolr", _autolr_random_start, "decay_median",
           DEFAULT_EXTRA_SEEDS, 10),
    Recipe("autolr-budgeted", "autolr (random start), pruner='budgeted': successive halving "
           "over rungs that each train the whole schedule compressed (1/9, 1/3, all epochs)",
           "autolr", _autolr_random_start, "budgeted"),
    Recipe("autolr-sqrt", "autolr (random start), the lr searched relative to the batch size "
           "(lr_scaling='sqrt': lr x sqrt(batch / smallest batch))", "autolr",
           _autolr_random_start, "decay_median", lr_scaling="sqrt"),
    Recipe("autolr-linear", "autolr (random start), the lr searched relative to the batch size "
           "(lr_scaling='linear': lr x batch / smallest batch)", "autolr", _autolr_random_start,
           "decay_median", lr_scaling="linear"),
    Recipe("autolr-strict-ladder", "autolr, its checked halving accepting a ladder only "
           "where both checked trials were judged at every rung (not in warmup or a ramp, "
           "against 3 trials at least)", "autolr", _autolr_sampler,
           lambda n: CheckedHalvingPruner(n, require_judged=True)),
    Recipe("autolr-early-ladder", "autolr, its checked halving also offered a ladder from "
           "1/16 of the run (rungs at 1/16, 1/4: with 20 evaluations those of Ray's ASHA, "
           "grace 1, reduction 4)", "autolr", _autolr_sampler,
           lambda n: CheckedHalvingPruner(n, rung_fractions=EARLY_LADDER)),
    Recipe("autolr-valley-onecycle-11", "autolr-valley-onecycle-first, that trial placed "
           "after the default config's (trial 11), the test's cost still charged first",
           "autolr", _autolr_sampler, "auto", first_schedule="one_cycle", finder_place=11),
    Recipe("autolr-explore-families", "autolr, a third of its trials after the start-up "
           "taking a schedule family drawn uniformly instead of TPE's", "autolr",
           _explore_families(1 / 3), "auto"),
    Recipe("autolr-valley-prior", "autolr, its lr range first narrowed to 1.5 decades either "
           "side of fastai's valley from a range test at the smallest batch (the median of "
           "`python -m benchmarks finder`'s 3 tests), that test's cost charged first",
           "autolr", _autolr_sampler, "auto", lr_prior="valley"),
    Recipe("autolr-valley-cosine-first", "autolr, its first trial at fastai's valley from a "
           "range test at the smallest batch (run for each sweep, on its seed), cosine, no "
           "warmup (the design's trials after it), the test's cost charged first", "autolr",
           _autolr_sampler, "auto", first_schedule="cosine"),
    Recipe("autolr-valley-onecycle-first", "autolr-valley-cosine-first with one-cycle "
           "(fastai's recipe: lr_find, then fit_one_cycle at the valley)",
           "autolr", _autolr_sampler, "auto", first_schedule="one_cycle"),
)}

# autolr-valley-prior reads `python -m benchmarks finder`'s results, and the first-trial
# recipes run range tests: named in --contenders only
DEFAULT_REPLAY = tuple(name for name in RECIPES
                       if not RECIPES[name].lr_prior and not RECIPES[name].first_schedule)
