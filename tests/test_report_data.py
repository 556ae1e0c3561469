"""The report's extracted data, on synthetic trial tables (no training, no browser)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from autolr import schedules
from autolr.errors import AutoLRError
from autolr.reporting import stats
from autolr.reporting.data import BAND_TOLERANCES, extract
from autolr.reporting.sections import batch as batch_section
from autolr.reporting.sections import sensitivity
from autolr.result import TrialRecord, TuneResult
from autolr.space import TrialConfig

PER_EPOCH = 10  # optimizer steps per epoch at batch size 32 in these tables
EPOCHS = 10


def rec(number: int, state: str, lr: float, value: float | None = None, *,
        schedule: str = "constant", batch: int = 32, epochs_run: float | None = None,
        warmup: float = 0.0, baseline: bool = False, schedule_params: dict | None = None,
        values: tuple[float, ...] | None = None, steps_run: int | None = None,
        seconds: float = 1.0) -> TrialRecord:
    """One trial; complete trials run all epochs, others 3 unless told."""
    ran = epochs_run if epochs_run is not None else (EPOCHS if state == "complete" else 3.0)
    per_epoch = PER_EPOCH * 32 // batch
    if values is None:
        values = () if value is None else (value * 2, value)
    return TrialRecord(
        number, state, {"lr": lr, "schedule": schedule, "schedule_params": schedule_params or {},
                        "warmup_fraction": warmup, "batch_size": batch, "optimizer": "adamw",
                        "weight_decay": 0.0},
        reason=None if state == "complete" else f"{state} for a reason", values=values,
        train_losses=values, val_losses=values, epochs_run=ran,
        steps_run=steps_run if steps_run is not None else round(ran * per_epoch),
        seconds=seconds, is_baseline=baseline)


def result(records: list[TrialRecord], direction: str = "minimize") -> TuneResult:
    return TuneResult(records, metric="val_loss" if direction == "minimize" else "accuracy",
                      direction=direction, epochs=EPOCHS, study_name="t")


def bowl() -> list[TrialRecord]:
    """Complete trials around a best at lr 1e-2, plus a pruned one that looks better."""
    return [rec(0, "complete", 1e-3, 0.20), rec(1, "complete", 3e-3, 0.105),
            rec(2, "complete", 1e-2, 0.10), rec(3, "complete", 3e-2, 0.108),
            rec(4, "complete", 1e-1, 0.30), rec(5, "pruned", 1.0, 0.09)]


def test_safe_band_edges_and_width() -> None:
    band = extract(result(bowl())).band
    assert band.tolerance == 0.10
    assert band.best_value == 0.10 and band.threshold == pytest.approx(0.11)
    # the pruned trial at lr 1.0 looks better but is not final: it does not count
    assert (band.low, band.high) == (3e-3, 3e-2)
    assert band.decades == pytest.approx(1.0)
    assert band.numbers == (1, 2, 3) and band.misses_inside == 0


def test_safe_band_counts_misses_inside_and_other_tolerances() -> None:
    data = extract(result([*bowl(), rec(6, "complete", 5e-3, 0.5)]), tolerance=0.05)
    # within 5%: 0.105 at 3e-3 just makes it; trial 6 (5e-3, 0.5) lies inside and misses
    assert data.band.tolerance == 0.05 and data.band.numbers == (1, 2)
    assert (data.band.low, data.band.high) == (3e-3, 1e-2) and data.band.misses_inside == 1
    wide = {b.tolerance: b for b in data.bands}
    assert set(wide) == {0.05, 0.10, 0.25, 0.50}
    assert wide[0.10].misses_inside == 1  # trial 6 sits at 5e-3, inside 3e-3..3e-2
    assert wide[0.10].numbers == (1, 2, 3)


def test_safe_band_maximize_and_zero_tolerance() -> None:
    records = [rec(0, "complete", 1e-3, 0.82), rec(1, "complete", 1e-2, 0.90),
               rec(2, "complete", 1e-1, 0.85)]
    # a score of one's own (no known perfect score): 10% of the best value
    own = TuneResult(records, metric="f1ish", direction="maximize", epochs=EPOCHS)
    band = extract(own).band
    assert band.threshold == pytest.approx(0.81) and (band.low, band.high) == (1e-3, 1e-1)
    assert band.decades == pytest.approx(2.0)
    # accuracy: 10% more error than the best (1 - 0.90), not 10% less accuracy, which
    # took in 3x the best's error rate at 96.5%
    band = extract(result(records, "maximize")).band
    assert band.threshold == pytest.approx(0.89) and band.numbers == (1,)
    assert extract(result(records, "maximize")).bands[-1].threshold == pytest.approx(
        0.90 - max(BAND_TOLERANCES) * 0.10)
    single = stats.safe_band(extract(result(records, "maximize")).points[1:2], "maximize", 0.0)
    assert single.decades == 0.0 and single.numbers == (1,)
    # at chance (accuracy 0.1 on 10 classes) a wide tolerance reaches no further than an
    # accuracy of 0 (it said -0.35): every run, as before
    chance = [rec(0, "complete", 1e-3, 0.10), rec(1, "complete", 1e-2, 0.10)]
    wide = extract(result(chance, "maximize")).bands
    assert [b.threshold for b in wide] == pytest.approx(
        [max(0.0, 0.10 - t * 0.90) for t in sorted(BAND_TOLERANCES)])
    assert min(b.threshold for b in wide) == 0.0 and wide[-1].numbers == (0, 1)


def test_the_safe_band_is_measured_from_the_recommended_configs_value() -> None:
    # the pick re-ran trial 2 (seeds 0.10, 0.11, 0.12; held out 0.125): its value is the
    # held-out one; a one-seed trial's luckier 0.09 must not move the band off it
    picked = dataclasses.replace(rec(2, "complete", 1e-2, 0.10), seed_values=(0.10, 0.11, 0.12),
                                 holdout_values=(0.125,))
    records = [rec(0, "complete", 1e-3, 0.30), rec(1, "complete", 3e-1, 0.09), picked]
    data = extract(result(records))
    assert result(records).best_record.number == 2
    assert data.band.best_value == pytest.approx(0.125)
    assert data.band.low <= 1e-2 <= data.band.high and 2 in data.band.numbers
    assert 1 in data.band.numbers  # better than the recommended: inside too
    assert "within 10% of the best trial's, the recommended config's val_loss 0.125" in \
        sensitivity(data, {})


def test_tolerance_is_validated() -> None:
    with pytest.raises(AutoLRError, match="tolerance"):
        extract(result(bowl()), tolerance=1.5)


def test_divergence_boundary_overall_and_per_batch() -> None:
    records = [*bowl(), rec(10, "diverged", 0.5, epochs_run=0.5),
               rec(11, "diverged", 0.2, batch=64, epochs_run=0.4),
               rec(12, "diverged", 1.0, epochs_run=0.1), rec(13, "complete", 0.3, 0.5, batch=64),
               rec(14, "complete", 1e-3, 0.3, batch=16)]
    boundary = extract(result(records)).boundary
    assert boundary.lowest_lr == 0.2
    assert boundary.highest_complete_lr == 0.3
    assert boundary.n_complete_above == 1  # trial 13, lr 0.3 at batch 64, completed
    per_batch = {b.batch_size: b for b in boundary.per_batch}
    assert per_batch[32].lowest_diverged_lr == 0.5 and per_batch[32].n_diverged == 2
    assert per_batch[64].lowest_diverged_lr == 0.2 and per_batch[64].highest_complete_lr == 0.3
    assert per_batch[16].lowest_diverged_lr is None and per_batch[16].n_diverged == 0
    assert sorted(b.number for b in boundary.blowups) == [10, 11, 12]


def test_blowup_lr_comes_from_the_training_schedule() -> None:
    # 10 steps per epoch x 10 epochs; 10% warmup = 10 steps; blew up at step 5 (index 4)
    diverged = rec(7, "diverged", 0.4, warmup=0.1, steps_run=5, epochs_run=0.5)
    blowup = extract(result([*bowl(), diverged])).boundary.blowups[0]
    config = TrialConfig.from_dict(diverged.params)
    assert blowup.lr_at_blowup == pytest.approx(0.4 * config.multipliers(100)[4])
    assert blowup.lr_at_blowup == pytest.approx(0.4 * 5 / 11)
    assert blowup.step == 4  # as the loop's reason says it: 'to step 4'


def test_blowup_step_is_where_the_loss_went_above_not_where_the_rule_fired() -> None:
    # the 20-step rule fires 20 steps on: there a warmup had the lr many times higher
    # (trial 7 of a QA sweep: 'lr at blow-up 7.81' for a blow-up at 1.05)
    stayed = rec(7, "diverged", 0.4, warmup=0.3, steps_run=25, epochs_run=2.5)
    stayed = dataclasses.replace(stayed, reason="smoothed loss 9.1 stayed above 4x its best "
                                               "2.3 for 20 steps, to step 24")
    at_end = rec(8, "diverged", 0.4, warmup=0.3, steps_run=100, epochs_run=10)
    at_end = dataclasses.replace(at_end, reason="smoothed loss 9.1 was still above 4x its "
                                               "best 2.3 when the run ended, 7 steps on")
    blowups = {b.number: b for b in extract(result([*bowl(), stayed, at_end])).boundary.blowups}
    factors = TrialConfig.from_dict(stayed.params).multipliers(100)
    assert blowups[7].step == 5 and blowups[7].lr_at_blowup == pytest.approx(0.4 * factors[5])
    assert blowups[8].step == 93 and blowups[8].lr_at_blowup == pytest.approx(0.4 * factors[93])


def test_a_trial_the_pick_marked_diverged_is_not_given_a_blow_up_step() -> None:
    # its own run finished (step 100 of 100); the second extra seed nearly diverged
    marked = rec(7, "complete", 0.05, 0.1, values=(0.3, 0.1))
    marked = dataclasses.replace(marked, state="diverged", seed_values=(0.1, 0.12),
                                 reason="nearly diverged on extra seed 2: its validation loss "
                                        "jumped back from 0.2 to 0.4 (it had come down from "
                                        "0.5), after finishing at 0.1 on the sweep's seed")
    data = extract(result([*bowl(), marked]))
    blowup = data.boundary.blowups[0]
    assert blowup.on_another_seed and blowup.lr_at_blowup is None
    assert blowup.where == "nearly diverged on extra seed 2"
    html = sensitivity(data, blocks={})
    assert ("(trial 7, constant, batch 32; it finished on the sweep's seed, then nearly "
            "diverged on extra seed 2)") in html
    assert "scheduled lr at the blow-up" not in html


def test_no_diverged_trials() -> None:
    boundary = extract(result(bowl())).boundary
    assert boundary.lowest_lr is None and boundary.blowups == ()
    assert boundary.n_complete_above == 0


def test_all_diverged_still_extracts() -> None:
    data = extract(result([rec(i, "diverged", 0.1 * (i + 1), epochs_run=0.2)
                           for i in range(4)]))
    assert data.summary.best is None and "no trial completed" in data.summary.no_best
    assert data.band is None and data.bands == ()
    assert data.boundary.lowest_lr == 0.1
    assert data.scaling.slope is None and "no trial completed" in data.scaling.reason
    assert data.importance.params == () and data.importance.reason
    assert data.code is None and data.best_schedule is None and data.schedule_note
    assert data.summary.epochs_saved_divergence == pytest.approx(4 * 9.8)


def test_family_bests_and_spread() -> None:
    records = [rec(0, "complete", 1e-2, 0.30, schedule="cosine"),
               rec(1, "complete", 2e-2, 0.10, schedule="cosine"),
               rec(2, "complete", 3e-2, 0.20, schedule="cosine"),
               rec(3, "pruned", 1e-1, 0.05, schedule="cosine"),
               rec(4, "complete", 1e-2, 0.15, schedule="linear"),
               rec(5, "diverged", 1.0, schedule="step", epochs_run=0.5)]
    families = extract(result(records)).families
    assert [f.name for f in families] == ["cosine", "linear", "step"]
    cosine = families[0]
    assert (cosine.n_trials, cosine.n_complete, cosine.n_pruned) == (4, 3, 1)
    assert cosine.best_value == 0.10 and cosine.best_number == 1 and cosine.best_lr == 2e-2
    assert cosine.median == pytest.approx(0.20) and cosine.worst == 0.30
    assert cosine.values == (0.10, 0.20, 0.30)
    assert (cosine.q1, cosine.q3) == (pytest.approx(0.15), pytest.approx(0.25))
    assert families[2].best_value is None and families[2].n_diverged == 1


@pytest.mark.parametrize(("exponent", "rule"), [(1.0, "linear"), (0.5, "square-root"),
                                                 (0.0, "flat"), (-0.2, "flat"),
                                                 (-1.0, "falling")])
def test_scaling_fit_recovers_the_rule(exponent: float, rule: str) -> None:
    records, number = [], 0
    for batch in (16, 32, 64, 128, 256):
        best = 1e-3 * (batch / 16) ** exponent
        for lr, value in ((best, 0.1), (best * 3, 0.2), (best / 3, 0.25)):
            records.append(rec(number, "complete", lr, value, batch=batch))
            number += 1
    data = extract(result(records))
    fit = data.scaling
    assert "closest to " in batch_section(data, {})  # each rule has its words
    assert [p.batch_size for p in fit.points] == [16, 32, 64, 128, 256]
    assert fit.points[0].lr == pytest.approx(1e-3) and fit.points[0].n_complete == 3
    assert fit.slope == pytest.approx(exponent, abs=1e-9) and fit.rule == rule
    assert 10 ** fit.intercept * 16**exponent == pytest.approx(1e-3)


def test_scaling_fit_needs_two_batch_sizes() -> None:
    fit = extract(result(bowl())).scaling
    assert fit.slope is None and fit.rule is None
    assert "only one batch size (32)" in fit.reason and len(fit.points) == 1


def test_summary_counts_and_compute() -> None:
    records = [rec(0, "complete", 1e-3, 0.2, baseline=True), rec(1, "complete", 1e-2, 0.1),
               rec(2, "pruned", 1e-4, 0.9, epochs_run=3),
               rec(3, "diverged", 1.0, epochs_run=0.5),
               TrialRecord(4, "failed", {}, reason="ValueError: boom")]
    data = extract(result(records))
    s = data.summary
    assert s.counts == {"complete": 2, "pruned": 1, "diverged": 1, "failed": 1}
    assert s.n_trials == 5 and len(data.points) == 4  # the failed one sampled nothing
    assert s.epochs_per_trial == 10 and s.epochs_budget == 40
    assert s.epochs_spent == pytest.approx(23.5)
    assert s.epochs_saved_pruning == 7 and s.epochs_saved_divergence == 9.5
    assert s.best.number == 1 and s.baseline.number == 0
    assert s.improvement == pytest.approx(0.5)  # 0.2 -> 0.1 is 50% lower
    assert s.seconds_spent == pytest.approx(4.0)
    assert data.failures == ((4, "ValueError: boom"),)


def test_a_score_improvement_is_measured_in_its_error() -> None:
    # accuracy 0.92 -> 0.956: 45% of the error gone, which "4% better" hid
    records = [rec(0, "complete", 1e-3, 0.92, baseline=True), rec(1, "complete", 1e-2, 0.956)]
    assert extract(result(records, "maximize")).summary.improvement == pytest.approx(0.45)


def test_compute_saved_by_each_pruning_rule() -> None:
    def cut(number: int, epochs_run: float, reason: str) -> TrialRecord:
        return dataclasses.replace(rec(number, "pruned", 1e-3, 0.5, epochs_run=epochs_run),
                                   reason=reason)

    records = [rec(0, "complete", 1e-2, 0.1),
               cut(1, 1, "outside the best 1/4 at the rung at evaluation 1 (checked halving)"),
               cut(2, 2, "outside the best 1/4 at the rung at evaluation 2 (checked halving)"),
               cut(3, 4, "behind the median of 5 finished trials with as much decay ahead, "
                         "at evaluation 4"),
               cut(4, 6, "stalled"), cut(5, 5, "pruned by MedianPruner"),
               cut(6, 8, "stalled: not 0.001 (relative) better than its best before for 3 "
                         "evaluations, to evaluation 8")]  # a stall's reason today, above of old
    s = extract(result(records)).summary
    assert s.saved_by_rule == (("halving", 17.0), ("the median rule", 6.0),
                               ("stalls", 6.0), ("other rules", 5.0))
    assert sum(epochs for _, epochs in s.saved_by_rule) == s.epochs_saved_pruning


def test_budgeted_rungs_cuts_are_theirs_and_their_reruns_come_off_the_saving() -> None:
    from autolr.reporting.sections import summary

    rung = ("behind the others after its whole schedule in 3 epochs (budgeted rung 2 of 3)")
    records = [rec(0, "complete", 1e-2, 0.1, epochs_run=14.0),  # 1 + 3 + 10 epochs
               dataclasses.replace(rec(1, "pruned", 1e-3, 0.5, epochs_run=4.0), reason=rung),
               dataclasses.replace(rec(2, "complete", 1e-2, 0.2), extra_epochs=20.0)]
    data = extract(result(records))
    s = data.summary
    assert s.saved_by_rule == (("budgeted rungs", 6.0),) and s.epochs_rung_reruns == 4.0
    page = summary(data, {})
    assert "2.0 epochs" in page and "less 4.0 training schedules again at budgeted rungs" in page
    # 28 epochs of sweep (the pick's 20 on top) of a 30-epoch budget
    assert "the sweep: 93% of running every trial to the end" in page


def test_best_schedule_is_the_training_table() -> None:
    best = rec(0, "complete", 0.05, 0.1, schedule="cosine", warmup=0.1)
    curve = extract(result([best])).best_schedule
    expected = [0.05 * m for m in TrialConfig.from_dict(best.params).multipliers(100)]
    assert curve.total_steps == 100 and curve.steps == tuple(range(100))
    assert curve.lrs == pytest.approx(expected)
    assert curve.warmup_steps == 10 and curve.steps_per_epoch == 10


def test_a_budgeted_best_draws_its_last_rungs_run_not_every_rungs_steps_added() -> None:
    # budgeted rungs: steps_run adds up every rung's run (1 + 3 + 10 epochs here)
    best = dataclasses.replace(rec(0, "complete", 0.05, 0.1, schedule="cosine", warmup=0.1),
                               steps_run=140, epochs_run=14.0, rung_epochs=10, rung_steps=100)
    curve = extract(result([best])).best_schedule
    assert curve.total_steps == 100 and curve.warmup_steps == 10
    assert curve.steps_per_epoch == 10


def test_long_schedules_are_downsampled_keeping_the_drops() -> None:
    best = rec(0, "complete", 0.1, 0.1, schedule="step", steps_run=30_000,
               schedule_params={"step_fraction": 0.3, "gamma": 0.1})
    curve = extract(result([best])).best_schedule
    assert len(curve.steps) < 2100 and curve.steps[-1] == 29_999
    table = [0.1 * m for m in TrialConfig.from_dict(best.params).multipliers(30_000)]
    drops = [i for i in range(1, 30_000) if table[i] < table[i - 1]]
    assert drops == [9000, 18000, 27000]
    for i in drops:  # both sides of every drop are drawn, so it stays vertical
        assert i in curve.steps and i - 1 in curve.steps
    assert all(curve.lrs[k] == pytest.approx(table[s]) for k, s in enumerate(curve.steps))


def test_learning_curves_and_best_losses() -> None:
    records = [rec(0, "complete", 1e-2, values=(1.0, 0.5, 0.2, 0.1)),
               rec(1, "pruned", 1e-3, values=(1.0, 0.9), epochs_run=1.0),
               rec(2, "diverged", 1.0, values=(1.0, math.nan), epochs_run=1.0)]
    records[0] = TrialRecord(**{**records[0].__dict__, "epochs_run": 2.0, "steps_run": 20})
    data = extract(result(records))
    curves = {c.number: c for c in data.curves}
    # two evaluations per epoch (4 values in 2 epochs): x is in epochs
    assert curves[0].epochs == (0.5, 1.0, 1.5, 2.0) and curves[0].is_best
    assert curves[1].epochs == (0.5, 1.0) and not curves[1].is_best
    assert curves[2].values == (1.0,)  # the non-finite evaluation is dropped
    assert data.best_losses.number == 0 and data.best_losses.val == (1.0, 0.5, 0.2, 0.1)


def test_trend_per_family_needs_three_points() -> None:
    data = extract(result([*bowl(), rec(6, "complete", 1e-2, 0.2, schedule="linear")]))
    assert [t.family for t in data.trends] == ["constant"]
    lrs, values = stats.smooth([1e-3, 1e-2, 1e-1], [0.5, 0.5, 0.5])
    assert values == pytest.approx([0.5] * len(values))
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-1)
    # no line where no trial is near: 2.5 decades between two trials leave a gap, not a dip
    lrs, values = stats.smooth([1e-3, 0.33, 0.85], [1.46, 0.5, 2.34])
    gap = [lr for lr, v in zip(lrs, values, strict=True) if v is None]
    assert gap and 1e-3 < min(gap) and max(gap) < 0.33
    assert values[0] is not None and values[-1] is not None


def test_importance_ranks_searched_parameters() -> None:
    records = [rec(i, "complete", 10 ** (-4 + i / 3), 0.1 + abs(i - 6) / 10,
                   schedule=("cosine", "linear")[i % 2]) for i in range(12)]
    found = extract(result(records)).importance
    assert found.reason is None and found.n_trials == 12
    assert {name for name, _ in found.params} == {"lr", "schedule"}
    assert sum(v for _, v in found.params) == pytest.approx(1.0)
    assert found.params[0][0] == "lr"  # the metric follows lr only


def test_importance_of_a_big_sweep_is_taken_on_a_seeded_sample(monkeypatch) -> None:
    # fANOVA's time grows faster than the trials: 27 s of CPU for a 750-trial report
    monkeypatch.setattr(stats, "MAX_IMPORTANCE_TRIALS", 10)
    records = [rec(i, "complete", 10 ** (-4 + i / 8), 0.1 + abs(i - 12) / 10,
                   schedule=("cosine", "linear")[i % 2]) for i in range(24)]
    found = extract(result(records)).importance
    assert found.n_trials == 10 and found.params[0][0] == "lr"
    assert "on a seeded sample of 10 of the 24 complete trials" in found.evaluator
    assert extract(result(records)).importance == found  # the same sample each time


def test_importance_explains_why_it_is_empty() -> None:
    assert "needs at least" in extract(result(bowl()[:3])).importance.reason
    same = [rec(i, "complete", 1e-2, 0.1 + i / 100) for i in range(6)]
    assert "nothing varied" in extract(result(same)).importance.reason


def test_user_schedule_registered_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    def halve_midway(step: int, total_steps: int) -> float:
        return 1.0 if step < total_steps // 2 else 0.5

    # register into a copy of the registry, so later tests see the built-ins only
    monkeypatch.setattr(schedules, "_REGISTRY", dict(schedules._REGISTRY))
    schedules.register("report_test_halve", halve_midway, overwrite=True)
    data = extract(result([rec(0, "complete", 0.1, 0.1, schedule="report_test_halve")]))
    assert data.best_schedule.lrs[0] == 0.1 and data.best_schedule.lrs[-1] == 0.05
    assert "report_test_halve" in data.code
    # a stored study read in a session where the user's schedule is not registered
    unknown = extract(result([rec(0, "complete", 0.1, 0.1, schedule="not_registered_here")]))
    assert unknown.best_schedule is None and "register" in unknown.schedule_note
    assert unknown.code is None and unknown.families[0].name == "not_registered_here"


def halve_at_midpoint(step: int, total_steps: int) -> float:  # a module's, as a script's
    return 1.0 if step < total_steps // 2 else 0.5


def test_a_built_in_name_overwritten_in_one_session_and_not_the_other_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    def halve_midway(step: int, total_steps: int) -> float:
        return 1.0 if step < total_steps // 2 else 0.5

    # a sweep that trained its own "cosine", read back where "cosine" is autolr's: the
    # code, scheduler and drawn schedule would be another schedule than the one trained
    own = {"cosine": "tests.test_report_data.halve_midway"}
    swept = TuneResult([rec(0, "complete", 0.1, 0.1, schedule="cosine"),
                        rec(1, "diverged", 1.0, schedule="cosine"),
                        rec(2, "diverged", 2.0)], epochs=EPOCHS, own_schedules=own)
    loaded = TuneResult.load(swept.save(tmp_path / "r.json"))
    assert loaded.own_schedules == own
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    for call in (loaded.code, lambda: loaded.make_scheduler(optimizer, 10, 2)):
        with pytest.raises(AutoLRError, match=r"as your own function tests.test_report_data."
                                              r"halve_midway.*register\('cosine', function, "
                                              r"overwrite=True\)"):
            call()
    data = extract(loaded)
    assert data.best_schedule is None and data.code is None
    assert data.schedule_note.startswith("The sweep trained schedule 'cosine' as your own")
    # nor is the lr at a blow-up worked out with autolr's cosine; a constant's still is
    at_blowup = {b.number: b.lr_at_blowup for b in data.boundary.blowups}
    assert at_blowup[1] is None and at_blowup[2] == pytest.approx(2.0)
    # the converse: a sweep of autolr's cosine, read where "cosine" was overwritten
    monkeypatch.setattr(schedules, "_REGISTRY", dict(schedules._REGISTRY))
    schedules.register("cosine", halve_midway, overwrite=True)
    builtin = TuneResult([rec(0, "complete", 0.1, 0.1, schedule="cosine")], epochs=EPOCHS,
                         own_schedules={})
    with pytest.raises(AutoLRError, match="trained autolr's built-in schedule 'cosine'"):
        builtin.code()
    # the sweep's own function, imported from the script that ran it: the same function
    # (it was __main__.halve_midway there), so the result hands it out
    schedules.register("halve", halve_at_midpoint)
    imported = TuneResult([rec(0, "complete", 0.1, 0.1, schedule="halve")], epochs=EPOCHS,
                          own_schedules={"halve": "__main__.halve_at_midpoint"})
    assert "lambda_lr(optimizer, 'halve'" in imported.code()
    renamed = TuneResult([rec(0, "complete", 0.1, 0.1, schedule="halve")], epochs=EPOCHS,
                         own_schedules={"halve": "__main__.halve_late"})
    with pytest.raises(AutoLRError, match="registers .*halve_at_midpoint under that name"):
        renamed.code()
    # an older sweep, whose schedules are not known, is read as before
    assert "lambda_lr" in TuneResult([rec(0, "complete", 0.1, 0.1, schedule="cosine")],
                                     epochs=EPOCHS).code()


def test_the_safe_band_leaves_out_a_best_run_on_the_edge_of_divergence() -> None:
    # the best run (lr 0.015) sits within 1.5x of lr 0.02, which diverged: the robust pick
    # passes it over, so calling its learning rate "safe" would contradict the report
    records = [rec(0, "diverged", 0.02), rec(1, "complete", 0.015, 0.10),
               rec(2, "complete", 5e-3, 0.12), rec(3, "complete", 3e-3, 0.125),
               rec(4, "complete", 1e-4, 0.40)]
    data = extract(result(records))
    assert data.band.best_value == 0.12 and data.band.numbers == (2, 3)
    assert (data.band.low, data.band.high) == (3e-3, 5e-3)
    assert data.band_left_out == (1,)
    assert all(1 not in b.numbers for b in data.bands)
    page = sensitivity(data, blocks={})
    assert "Left out, as the robust pick leaves them: trial(s) 1, on the edge" in page
    # nothing near an edge: nothing is left out, and the page says nothing of it
    calm = extract(result(records[1:]))
    assert calm.band.numbers == (1,) and calm.band_left_out == ()
    assert "Left out" not in sensitivity(calm, blocks={})


def test_the_trials_table_says_how_a_re_run_trials_value_was_measured() -> None:
    from autolr.reporting.sections import trials

    picked = dataclasses.replace(rec(2, "complete", 1e-2, 0.10), seed_values=(0.10, 0.12),
                                 holdout_values=(0.125,))
    confirmed = dataclasses.replace(rec(3, "complete", 3e-2, 0.2), seed_values=(0.2, 0.3))
    table = trials(extract(result([rec(0, "complete", 1e-3, 0.3), picked, confirmed])), {})
    assert "0.125 (held out)" in table and "0.25 (mean of 2 seeds)" in table
    assert "<td>0.3</td>" in table  # one seed: its last value, as it is
