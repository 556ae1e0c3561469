"""The benchmark harness: compute/regret accounting, replay determinism, the plain loop's
schedules, the LR-finder suggestions, and `python -m benchmarks --quick` end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from autolr import schedules
from autolr.backends.optuna import DESIGN_TRIALS
from autolr.space import TrialConfig
from benchmarks import accounting, lr_finder, oracle, plain_loop, replay, start, tasks
from benchmarks.__main__ import _live_contenders, main
from benchmarks.accounting import Event
from benchmarks.contenders import DEFAULT_REPLAY, RECIPES
from benchmarks.oracle import GridCache, Run

# -- accounting ------------------------------------------------------------------------------

def _events() -> list[Event]:
    return [Event("a", "complete", 10, 1.0, 0.50),   # 0.5 FTE, incumbent a
            Event("b", "pruned", 5, 0.5),             # 0.75 FTE
            Event("c", "diverged", 2.5, 0.2),         # 0.875 FTE
            Event("d", "complete", 10, 1.0, 0.60),    # 1.375 FTE, worse: a stays
            Event("e", "complete", 10, 1.0, 0.40)]    # 1.875 FTE, incumbent e


REGRET = {"a": 0.30, "d": 0.0, "e": 0.04}


def test_trajectory_counts_epochs_as_fte_and_keeps_the_best_observed_trial() -> None:
    points = accounting.trajectory(_events(), 20, REGRET.get)
    assert [p.fte for p in points] == pytest.approx([0.5, 0.75, 0.875, 1.375, 1.875])
    assert [p.incumbent for p in points] == ["a", "a", "a", "a", "e"]
    assert points[-1].seconds == pytest.approx(3.7)


def test_regret_is_the_incumbents_seed_mean_regret_not_the_luckiest_value() -> None:
    points = accounting.trajectory(_events(), 20, REGRET.get)
    assert accounting.regret_at(points, 0.4) == math.inf  # nothing complete yet
    assert accounting.regret_at(points, 1.0) == 0.30
    # d (regret 0) ran, but its observed value was worse than a's: a stays recommended
    assert accounting.regret_at(points, 1.5) == 0.30
    assert accounting.regret_at(points, 2.0) == 0.04
    assert accounting.first_within(points, 0.05) == (pytest.approx(1.875), pytest.approx(3.7))
    assert accounting.first_within(points, 0.01) == (math.inf, math.inf)


def test_diverged_share_and_kept_winner() -> None:
    events = _events()
    assert accounting.diverged_share(events, 20, budget=1.0) == pytest.approx(0.125 / 0.875)
    assert accounting.completed_any(events, {"d"}, 20, budget=2.0)
    assert not accounting.completed_any(events, {"d"}, 20, budget=1.0)
    assert not accounting.completed_any(events, {"b"}, 20, budget=2.0)  # pruned only
    scored = accounting.score(events, 20, REGRET.get, winners={"e"})
    assert scored.regret[2.0] == 0.04 and scored.kept_winner
    assert accounting.SweepMetrics.from_json(json.loads(json.dumps(scored.to_json()))) == scored


def test_a_rerun_revises_the_incumbent() -> None:
    events = [*_events(), Event("e", "rerun", 20, 2.0, 0.70)]  # e was a lucky draw
    points = accounting.trajectory(events, 20, REGRET.get)
    assert points[-2].incumbent == "e" and points[-1].incumbent == "a"



def test_the_sweeps_own_pick_is_the_incumbent_with_the_value_it_reported() -> None:
    # e has the lowest value seen (0.40), but the sweep recommended a, telling 0.9
    events = [*_events(), Event("a", accounting.PICK, 0.0, 0.0, 0.9)]
    points = accounting.trajectory(events, 20, REGRET.get)
    assert points[-2].incumbent == "e"
    assert points[-1].incumbent == "a" and points[-1].estimate == 0.9
    assert points[-1].fte == points[-2].fte  # a pick costs nothing


# -- replay ----------------------------------------------------------------------------------

@pytest.fixture
def synthetic(tmp_path) -> GridCache:
    """The tiny task's grid with made-up curves: no training. lr 1.0 diverges mid-epoch."""
    task = tasks.get("tiny")
    cache = GridCache(task, tmp_path / "tiny.json")
    for config in task.configs():
        key = tasks.key_of(config)
        for seed in range(task.grid_seeds + task.confirm_seeds):
            if config.lr == 1.0:
                cache.runs.setdefault(key, {})[seed] = Run((2.0,), "diverged", 1.5, 0.1)
                continue
            end = 0.2 + abs(math.log10(config.lr) + 1) * 0.3 + 0.01 * seed + (
                0.05 if config.schedule == "cosine" else 0.0)
            curve = tuple(end + (2.3 - end) * 0.5**e for e in range(1, task.epochs + 1))
            cache.runs.setdefault(key, {})[seed] = Run(curve, "complete", task.epochs, 0.4)
    for epochs, seed, config in cache.missing_rungs():  # budgeted rungs: 1 of 4 epochs
        short = cache.runs[tasks.key_of(config)][seed]
        cache.rungs.setdefault(epochs, {}).setdefault(tasks.key_of(config), {})[seed] = (
            Run(short.values[:epochs], short.state, min(short.epochs, epochs), 0.1))
    return cache


def test_budgeted_replay_reads_the_rung_grid_and_counts_its_cost(synthetic) -> None:
    recipe = replay.RECIPES["autolr-budgeted"]
    events = replay.run_sweep(recipe, synthetic, seed=2, max_fte=6)
    assert events == replay.run_sweep(recipe, synthetic, seed=2, max_fte=6)
    rungs = [e for e in events if e.state == "rung"]
    assert rungs and all(e.epochs == 1 and e.value is None for e in rungs)  # never the pick
    complete = [e for e in events if e.state == "complete"]
    assert complete and all(e.epochs == synthetic.task.epochs for e in complete)
    assert len(rungs) > len(complete)  # most trials stopped after the one-epoch rung
    trainer = replay.ReplayTrainer(synthetic, seed=0)
    short = trainer(TrialConfig(lr=0.1, batch_size=32, optimizer="sgd"), None, epochs=1)
    assert short.state == "complete" and short.epochs_run == 1 and len(short.values) == 1
    assert trainer.epochs_run == 1 and trainer.events[-1].state == "rung"


def test_autolrs_replay_starts_from_the_space_filling_design(synthetic) -> None:
    # the tiny grid's lrs are 0.01, 0.1 and 1 (1 diverges): the design's first trials
    # cover the three decades on every sweep seed, and both families within two trials
    for seed in range(10):
        events = replay.run_sweep(RECIPES["autolr"], synthetic, seed, max_fte=6)
        first = [e.key for e in events if e.state != "rerun"][:DESIGN_TRIALS]
        assert {key.split("|lr")[1] for key in first} == {"0.01", "0.1", "1"}, first
        assert {key.split("|")[0] for key in first[:2]} == {"constant", "cosine"}, first


def test_a_first_trial_recipe_runs_a_range_test_then_trains_its_valley(synthetic) -> None:
    recipe = RECIPES["autolr-valley-cosine-first"]
    events = replay.run_sweep(recipe, synthetic, seed=1, max_fte=6)
    test = lr_finder.range_test(synthetic.task, seed=1)  # what the recipe ran: seeded alike
    assert events[0].key == "range test" and events[0].epochs == pytest.approx(test.epochs)
    grid_lr = synthetic.task.grid.snap(TrialConfig(lr=test.valley(), schedule="cosine",
                                                   batch_size=32, optimizer="sgd"))
    assert events[1].key == grid_lr  # trial 0: the valley, cosine, the smallest batch
    assert recipe.name not in DEFAULT_REPLAY  # it trains range tests: named on request


def test_start_scores_the_incumbent_at_each_small_budget(synthetic) -> None:
    found = start.measure(synthetic, range(3), recipes=("autolr", "random"), max_fte=5,
                          log=lambda message: None)
    assert set(found) == {"autolr", "random"} and len(found["autolr"]) == 3
    for rows in found.values():
        for row in rows:
            assert set(row) == {"1", "2", "3", "5"}
            regrets = [row[b] for b in ("1", "2", "3", "5")]
            assert regrets[-1] is not None  # 5 FTE: something has completed
            assert all(r >= -1e-12 for r in regrets if r is not None)  # none beats the oracle
    table = start.markdown(found)
    assert table.splitlines()[0] == "| contender | @1 FTE | @2 FTE | @3 FTE | @5 FTE |"


def test_versus_random_separates_a_real_loss_from_a_tie() -> None:
    # at 1 FTE both draw from the same regrets (a tie); at 5 FTE autolr is 10 points
    # behind on every sweep (a real loss); at 2 FTE nothing of autolr's has completed
    same = [0.01 * (i % 7) for i in range(60)]
    found = {"autolr": [{"1": r, "2": None, "5": r + 0.10} for r in same],
             "random": [{"1": r, "2": r, "5": r} for r in reversed(same)]}
    gaps = start.versus(found)
    assert set(gaps) == {"1", "5"}
    diff, low, high = gaps["1"]
    assert diff == 0 and low < 0 < high
    diff, low, high = gaps["5"]
    assert abs(diff - 0.10) < 1e-9 and 0 < low <= diff <= high
    line = start.versus_line(found)
    assert "@5 +10.0 [" in line and line.rstrip().endswith("behind beyond the noise at @5 FTE.")
    assert start.versus_line({"autolr": found["autolr"]}) == ""
    # live: the pick each sweep ended with is compared as "final", left out when a
    # sweep stored before it was recorded lacks it
    for row, regret in zip(found["autolr"], same, strict=True):
        row["final"] = regret + 0.2
    line = start.versus_line(found, budgets=("1", "final"))
    assert "final pick +20.0 [" not in line  # random's sweeps have no final pick
    for row, regret in zip(found["random"], reversed(same), strict=True):
        row["final"] = regret
    line = start.versus_line(found, budgets=("1", "final"))
    assert "@1 +0.0 [" in line and "final pick +20.0 [" in line
    assert line.rstrip().endswith("behind beyond the noise at final pick.")


def test_replay_is_deterministic_and_charges_what_trials_ran(synthetic) -> None:
    for name in ("autolr", "optuna-tpe-median", "ray-asha-like", "random"):
        recipe = replay.RECIPES[name]
        first = replay.run_sweep(recipe, synthetic, seed=3, max_fte=6)
        again = replay.run_sweep(recipe, synthetic, seed=3, max_fte=6)
        assert first == again, name
        assert sum(e.epochs for e in first) >= 6 * synthetic.task.epochs
        for event in first:
            if event.state == "diverged":  # autolr stops mid-epoch; a plain loop at its end
                assert event.epochs == (1.5 if recipe.kind == "autolr" else 2.0)
            if event.state == "complete":
                assert event.epochs == synthetic.task.epochs and event.value is not None
    assert synthetic.oracle()[0] == "constant|b32|w0|lr0.1"


def test_fte_to_within_counts_a_sweep_that_got_there_before_the_pick_runs(synthetic) -> None:
    # below pick_from(recipe) FTE tune() skips the robust pick: a sweep that got within 5%
    # by then counts at the budget where it did, not at the first budget with a pick
    recipe = replay.RECIPES["autolr"]
    means, oracle = synthetic.means(), synthetic.oracle()[1]
    for seed in range(6):
        events = replay.run_sweep(recipe, synthetic, seed, 20)
        anytime = accounting.score(events, synthetic.task.epochs,
                                   lambda key: means[key] / oracle - 1.0, max_budget=20)
        scored = replay.replay(synthetic, ["autolr"], range(seed, seed + 1), 20,
                               log=lambda _: None)["autolr"][0]
        if anytime.fte_to_within < replay.pick_from(recipe):
            assert scored.fte_to_within == anytime.fte_to_within
        else:
            assert scored.fte_to_within >= replay.pick_from(recipe)
    assert replay.pick_from(recipe) == 11  # 8 FTE of search, then 3 for the pick


def test_the_committed_grid_is_what_todays_loop_trains() -> None:
    # diabetes at batch 32: 353 rows leave a last batch of one row, kept as it is for a
    # model without BatchNorm (the cache predates the BatchNorm rule, and must stay true)
    cache = GridCache(tasks.get("diabetes"))
    config = next(c for c in cache.task.configs() if tasks.key_of(c) == "cosine|b32|w0|lr0.01")
    cached = cache.run(tasks.key_of(config), 0).values
    assert oracle.train(cache.task, config, 0).values == pytest.approx(cached, rel=1e-4)


def test_replay_trainer_reports_like_the_training_loop(synthetic) -> None:
    class StopAfter:
        def __init__(self, n: int) -> None:
            self.n, self.seen = n, []

        def report(self, step, metrics) -> bool:
            self.seen.append((step, metrics["value"]))
            return len(self.seen) >= self.n

    trainer = replay.ReplayTrainer(synthetic, seed=0)
    config = TrialConfig(lr=0.09, schedule="constant", batch_size=64, optimizer="sgd")
    pruned = trainer(config, StopAfter(2))
    assert pruned.state == "pruned" and pruned.epochs_run == 2 and len(pruned.values) == 2
    full = trainer(config, StopAfter(99))
    assert full.state == "complete" and full.epochs_run == synthetic.task.epochs
    last = trainer(config, StopAfter(synthetic.task.epochs))  # a finished run is never pruned
    assert last.state == "complete"
    blown = StopAfter(99)
    diverged = trainer(TrialConfig(lr=0.8, batch_size=32, optimizer="sgd"), blown)
    assert diverged.state == "diverged" and math.isnan(blown.seen[-1][1])
    assert [e.key for e in trainer.events][0] == "constant|b64|w0|lr0.1"  # snapped
    key = "constant|b64|w0|lr0.1"
    seen_twice = trainer.seen[key][0]
    estimate = trainer.rerun(config, 1)  # seed 1's curve: the mean of the three seen
    assert estimate == pytest.approx((2 * seen_twice + synthetic.run(key, 1).values[-1]) / 3)
    assert trainer.events[-1].state == "rerun"


def test_pick_floor_is_the_best_config_on_the_seeds_replay_reads(synthetic) -> None:
    # the best config on the grid seeds diverges on a seed only the oracle's confirmation
    # trained it on: a perfect replayed pick recommends it, and pays for it
    means = synthetic.means()
    best = min(means, key=means.get)
    task = synthetic.task
    good = synthetic.runs[best][task.grid_seeds]
    synthetic.runs[best][task.grid_seeds] = Run((2.0,), "diverged", 1.0, 0.1)
    key, regret = replay.pick_floor(synthetic)
    assert key == best and regret > 0.5
    assert synthetic.oracle()[0] != best
    # when the other seeds agree with the grid seeds, the pick floor is the oracle
    synthetic.runs[best][task.grid_seeds] = good
    assert replay.pick_floor(synthetic) == (best, pytest.approx(0.0))


def test_pick_floor_keeps_the_margin_below_what_diverged_on_the_grid_seeds(synthetic) -> None:
    # cosine at the best lr and a larger batch diverged on grid seed 0: the perfect pick
    # keeps its margin below that lr, as autolr's does, and takes the best config away
    # from it
    best = "constant|b32|w0|lr0.1"
    assert replay.pick_floor(synthetic)[0] == best
    synthetic.runs["cosine|b64|w0|lr0.1"][0] = Run((2.0,), "diverged", 1.0, 0.1)
    key, regret = replay.pick_floor(synthetic)
    assert key.endswith("lr0.01") and regret > 0


def test_pick_floor_counts_a_setback_on_the_grid_seeds_as_a_divergence(synthetic) -> None:
    # cosine at the best lr and a larger batch finished, but its loss jumped back up to
    # where it started on grid seed 0: the margin keeps below it as below a divergence
    assert replay.pick_floor(synthetic)[0] == "constant|b32|w0|lr0.1"
    synthetic.runs["cosine|b64|w0|lr0.1"][0] = Run((2.0, 0.5, 1.9, 0.4), "complete", 4, 0.4)
    key, regret = replay.pick_floor(synthetic)
    assert key.endswith("lr0.01") and regret > 0


def test_an_autolr_sweep_leaves_its_picks_runs_out_of_its_budget() -> None:
    # one confirmation (2 extra seeds), one held-out seed, the step back; no pick: nothing
    assert accounting.pick_reserve(2) == 4 and accounting.pick_reserve(0) == 0


def test_snap_is_nearest_in_log_space() -> None:
    grid = tasks.get("tiny").grid
    assert grid.snap(TrialConfig(lr=0.031, batch_size=32)) == "constant|b32|w0|lr0.01"
    assert grid.snap(TrialConfig(lr=0.032, batch_size=32)) == "constant|b32|w0|lr0.1"
    with pytest.raises(ValueError, match="not on the grid"):
        grid.snap(TrialConfig(lr=0.1, batch_size=16))


# -- the plain loop and the LR finder ------------------------------------------------------

@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "one_cycle"])
@pytest.mark.parametrize("warmup", [0.0, 0.1])
def test_plain_loop_schedules_match_autolrs(schedule: str, warmup: float) -> None:
    total = 137
    config = TrialConfig(lr=0.3, schedule=schedule, warmup_fraction=warmup)
    expected = [0.3 * m for m in config.multipliers(total)]
    got = [plain_loop.lr_at(step, total, 0.3, schedule, warmup) for step in range(total)]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert schedule in schedules.names()


# -- end to end ------------------------------------------------------------------------------

def test_quick_mode_runs_end_to_end(tmp_path, capsys) -> None:
    assert main(["--quick", "--cache", str(tmp_path), "--quiet"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["replay"]["tiny"]["recipes"]) >= {"autolr", "optuna-tpe-median",
                                                         "autolr-budgeted"}
    assert set(results["live"]["tiny"]["sweeps"]) == {"autolr", "optuna-tpe-median", "random"}
    assert "default" in results["live"]["tiny"]["baselines"]
    started = results["start"]["tiny"]
    assert started["seeds"] == 4 and set(started["recipes"]) == set(start.RECIPE_NAMES)
    assert all(set(row) == {"1", "2", "3", "5", "7"} for row in started["recipes"]["autolr"])
    assert (tmp_path / "regret.html").exists() and (tmp_path / "tiny.json").exists()
    printed = capsys.readouterr().out
    assert "| autolr |" in printed and "regret @20 FTE" in printed
    assert "How the sweep starts" in printed and "| autolr-random-start |" in printed
    # the cached curves are what autolr's loop gives: retraining one reproduces it (the
    # cache keeps 5 significant digits)
    cache = GridCache(tasks.get("tiny"), tmp_path / "tiny.json")
    config = cache.task.configs()[0]
    cached = cache.run(tasks.key_of(config), 1).values
    assert oracle.train(cache.task, config, 1).values == pytest.approx(cached, rel=1e-4)


def test_live_resume_keeps_the_stored_sweeps_and_runs_only_the_seeds_not_scored(tmp_path) -> None:
    def live(seeds: int, *more: str, max_fte: str = "8") -> int:
        return main(["live", "--task", "tiny", "--contenders", "random", "--seeds", str(seeds),
                     "--max-fte", max_fte, "--cache", str(tmp_path), "--quiet", *more])

    def stored() -> list[dict]:
        return json.loads(path.read_text())["live"]["tiny"]["sweeps"]["random"]

    path = tmp_path / "results.json"
    assert live(1) == 0
    results = json.loads(path.read_text())
    first = results["live"]["tiny"]["sweeps"]["random"][0]
    first["wall"] = -1.0  # a marker no sweep can have: kept only if seed 0 is not re-run
    path.write_text(json.dumps(results))
    assert live(2, "--resume") == 0
    assert len(stored()) == 2 and stored()[0] == first and stored()[1]["wall"] >= 0
    # a sweep an older scorer stored without a metric runs again; the others are kept
    results = json.loads(path.read_text())
    second = results["live"]["tiny"]["sweeps"]["random"][1]
    del first["final_regret"]
    results["live"]["tiny"]["sweeps"]["random"] = [first, second]
    path.write_text(json.dumps(results))
    assert live(2, "--resume") == 0
    assert stored()[0]["wall"] >= 0 and "final_regret" in stored()[0]
    assert stored()[1] == second
    assert live(2) == 0  # without --resume every seed runs again
    assert stored()[0]["wall"] >= 0
    with pytest.raises(SystemExit, match="ran to 8.0 FTE, not 9"):
        live(3, "--resume", max_fte="9")


def test_the_live_table_says_which_rows_ran_on_fewer_seeds() -> None:
    from benchmarks.__main__ import _seed_counts

    lived = {"seeds": 10, "sweeps": {"autolr": [{}] * 10, "ray-asha": [{}] * 3,
                                     "random": [{}] * 3},
             "baselines": {"default": [{}] * 10}}
    assert _seed_counts(lived) == "10 seeds (3: ray-asha, random)"
    assert _seed_counts({"seeds": 3, "sweeps": {"autolr": [{}] * 3}}) == "3 seeds"


def test_rerun_diverged_trains_again_only_the_runs_that_diverged(tmp_path) -> None:
    # after a change to autolr's divergence rule the cached "diverged" runs are stale:
    # grid, off-grid and budgeted-rung runs alike are trained again; finished ones kept
    task = tasks.get("tiny")
    cache = GridCache(task, tmp_path / "tiny.json")
    config = next(c for c in task.configs() if c.lr == 0.01)
    key = tasks.key_of(config)
    stale = Run((2.0,), "diverged", 1.0, 0.1)
    kept = Run((0.5, 0.4), "complete", 2.0, 0.1)
    cache.runs[key] = {0: stale, 1: kept}
    off_grid = TrialConfig.from_dict({**config.to_dict(), "lr": 0.02})
    cache.extra[oracle._config_id(off_grid)] = {0: stale}
    cache.extra[oracle._config_id(off_grid) + "@fresh"] = {1000: stale}
    cache.rungs[1] = {key: {0: stale}}
    assert oracle.rerun_diverged(task, cache, log=lambda _: None) == 4
    assert cache.runs[key][1] is kept
    retrained = [cache.runs[key][0], cache.extra[oracle._config_id(off_grid)][0],
                 cache.extra[oracle._config_id(off_grid) + "@fresh"][1000], cache.rungs[1][key][0]]
    assert all(r.state == "complete" for r in retrained)
    assert retrained[0].values == pytest.approx(oracle.train(task, config, 0).values, rel=1e-6)
    assert len(retrained[3].values) == 1  # the rung's whole schedule in its 1 epoch
    assert GridCache(task, tmp_path / "tiny.json").runs[key][0].state == "complete"  # saved


def test_driver_pruning_benchmark_runs_and_both_sides_decide_alike(capsys) -> None:
    from benchmarks import driver_pruning

    trials = driver_pruning.sweep(40, seed=1)
    assert driver_pruning.on_the_driver(trials)[1] == driver_pruning.in_an_optuna_study(
        trials)[1]  # the same reports, so the same cuts
    driver_pruning.main(["--quick"])
    assert "| 40 |" in capsys.readouterr().out


def test_the_parallel_benchmark_times_the_same_work_in_autolr_and_its_ceiling() -> None:
    from benchmarks import parallel

    workload = parallel.sized(parallel.WORKLOADS["digits"], 3, 1)
    serial = parallel.child("serial", workload, "fixed")
    ceiling = parallel.child("ceiling", workload, "fixed")
    assert serial["trials"] == ceiling["trials"] == 3
    # no robust pick, no range test: only the trials' steps, as the ceiling trains
    assert serial["extra_epochs"] == 0 and serial["steps"] == ceiling["steps"]
    assert parallel.child("threads", workload, "fixed")["steps"] == ceiling["steps"]


def test_loop_overhead_benchmark_trains_autolr_and_the_bare_loop_on_the_same_batches() -> None:
    from benchmarks import loop_overhead

    case = loop_overhead.cases(quick=True)[0]
    assert loop_overhead.autolr_loop(case) == loop_overhead.bare_loop(case)


def test_batching_benchmark_contenders_cut_the_same_rows_into_batches(capsys) -> None:
    from benchmarks import batching

    X, y = torch.randn(70, 5), torch.arange(70)
    cut = {name: [b[1].tolist() for b in batches(X, y, 16, torch.Generator().manual_seed(1))]
           for name, batches in batching.CONTENDERS.items()}
    for name, rows in cut.items():  # every row once, in batches of 16 and a last of 6
        assert [len(b) for b in rows] == [16] * 4 + [6], name
        assert sorted(sum(rows, [])) == list(range(70)), name
    assert cut["epoch copy"] == cut["per batch"] == cut["autolr"]  # one permutation
    batching.main(["--quick"])
    assert capsys.readouterr().out.count("| CIFAR 50000x3072 | ") == 1


def test_a_live_autolr_sweep_whose_trials_all_fail_stops_with_the_first_reason(monkeypatch) -> None:
    from types import SimpleNamespace

    from autolr.result import TrialRecord
    from benchmarks import live

    calls = []

    def failing_tune(*args, n_trials: int, **kwargs):  # every trial fails before training
        calls.append(n_trials)
        return SimpleNamespace(records=[
            TrialRecord(number=i, state="failed", reason="ModuleNotFoundError: no 'models'")
            for i in range(n_trials)])

    monkeypatch.setattr(live.autolr, "tune", failing_tune)
    with pytest.raises(RuntimeError, match="trained nothing; first failure: "
                                           "ModuleNotFoundError: no 'models'"):
        live.run("autolr", tasks.get("tiny"), 0, 8.0)
    assert calls == [live.CHUNK]  # one chunk, not a loop that never ends


def test_two_trials_at_once_is_a_live_contender_run_only_when_named(tmp_path,
                                                                   monkeypatch) -> None:
    from benchmarks import live

    real_tune, asked = live.autolr.tune, []

    def tune(*args, **kwargs):  # the real sweep, and what it was asked for
        asked.append(kwargs.get("n_jobs"))
        return real_tune(*args, **kwargs)

    monkeypatch.setattr(live.autolr, "tune", tune)
    assert main(["live", "--task", "tiny", "--contenders", "autolr-jobs2", "--seeds", "1",
                 "--max-fte", "8", "--cache", str(tmp_path), "--quiet"]) == 0
    row, = json.loads((tmp_path / "results.json").read_text())["live"]["tiny"]["sweeps"][
        "autolr-jobs2"]
    assert row["fte"] >= 8 - accounting.pick_reserve(2) and row["trials"] >= 8
    assert math.isfinite(row["final_regret"])
    assert asked and set(asked) == {live.AT_ONCE}  # every chunk ran two trials at once
    by_default = _live_contenders("digits", None, log=lambda _: None)
    assert "autolr" in by_default and not set(live.ON_REQUEST) & set(by_default)
    assert _live_contenders("tiny", "autolr-jobs2,autolr", log=print) == ["autolr-jobs2", "autolr"]


def test_an_unknown_contender_is_refused_before_any_grid_is_built(tmp_path) -> None:
    # replay raised a bare KeyError, after building a missing grid
    for step in ("replay", "live"):
        with pytest.raises(SystemExit, match=f"unknown {step} contender 'autolr-checked'"):
            main([step, "--task", "tiny", "--contenders", "autolr-checked", "--seeds", "1",
                  "--cache", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []
