"""The written HTML file: one offline page, every section, user strings escaped."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import plotly.offline
import pytest

import autolr
from autolr.reporting import write_report
from autolr.reporting.sample import synthetic_result
from autolr.result import TrialRecord, TuneResult

ALL_FIGURES = {"lr_sensitivity", "family_spread", "best_schedule", "learning_curves",
               "best_losses", "metric_vs_compute", "batch_scaling", "importance", "range_test"}
XSS = "<script>alert(1)</script>"


def figures_in(page: str) -> set[str]:
    return set(re.findall(r'<div class="figure" data-figure="([a-z_]+)">', page))


def outside_plotlyjs(page: str) -> str:
    """The page without the embedded plotly.js bundle (which names URLs in its code)."""
    return page.replace(plotly.offline.get_plotlyjs(), "")


def test_full_report_is_one_offline_file(tmp_path: Path) -> None:
    path = write_report(synthetic_result(), tmp_path / "sub" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert page.count(plotly.offline.get_plotlyjs()) == 1  # embedded once, inline
    rest = outside_plotlyjs(page)
    assert "<script src" not in rest and "<link" not in rest
    assert "http://" not in rest and "https://" not in rest
    assert "default-src 'none'" in rest  # the page itself forbids any request
    assert figures_in(page) == ALL_FIGURES
    for anchor in ("summary", "lr", "finder", "schedules", "curves", "batch", "importance",
                   "code"):
        assert f'<section id="{anchor}">' in page
    assert "within 10% of the best" in page and "square-root" in page
    assert "LambdaLR(optimizer, lr_factor)" in page  # the "use it" code
    assert path.stat().st_size < 10_000_000


def test_study_name_and_reasons_are_text_not_markup(tmp_path: Path) -> None:
    result = synthetic_result(study_name=XSS)
    evil = TrialRecord(99, "failed", {}, reason='<img src=x onerror="alert(2)">')
    result = TuneResult([*result.records, evil], metric=result.metric, epochs=result.epochs,
                        study_name=XSS)
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    rest = outside_plotlyjs(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest
    assert "<script>alert" not in rest and "<img" not in rest
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in rest
    # plotly's JSON escapes '<' too: the script blocks hold no raw tag from the user
    for script in re.findall(r"<script[^>]*>(.*?)</script>", rest, flags=re.S):
        assert "alert(" not in script


def test_metric_name_is_escaped(tmp_path: Path) -> None:
    base = synthetic_result()
    result = TuneResult(base.records, metric="<b>f1</b>", direction="maximize", epochs=10)
    rest = outside_plotlyjs(write_report(result, tmp_path / "r.html").read_text("utf-8"))
    assert "<b>f1</b>" not in rest and "&lt;b&gt;f1&lt;/b&gt;" in rest


def test_single_family_single_batch_no_divergence(tmp_path: Path) -> None:
    result = synthetic_result(families=("cosine",), batch_sizes=(32,), lr_range=(1e-4, 0.05),
                              n_failed=0)
    assert result.counts()["diverged"] == 0
    page = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Only one schedule family (cosine) was tried" in page
    assert "only one batch size (32) has complete trials" in page
    assert "no trial diverged, so the boundary lies above" in page
    assert "batch_scaling" not in figures_in(page)
    assert {"lr_sensitivity", "best_schedule", "learning_curves"} <= figures_in(page)


def test_all_trials_diverged(tmp_path: Path) -> None:
    records = [TrialRecord(i, "diverged", {"lr": 0.5 + i, "schedule": "constant",
                                           "schedule_params": {}, "warmup_fraction": 0.0,
                                           "batch_size": 32, "optimizer": "adamw",
                                           "weight_decay": 0.0},
                           reason="loss became nan at step 3", epochs_run=0.1, steps_run=4)
               for i in range(3)]
    page = write_report(TuneResult(records, epochs=5), tmp_path / "r.html").read_text("utf-8")
    assert "Every trial diverged" in page and "no trial completed" in page
    assert "no safe learning-rate band" in page and "No parameter importance" in page
    assert "there is no code to show" in page
    assert figures_in(page) == {"lr_sensitivity"}  # the diverged strip still shows them


def test_summary_names_the_trial_the_pick_passed_over(tmp_path: Path) -> None:
    def record(number, state, lr, value):
        return TrialRecord(number, state, {"lr": lr, "schedule": "cosine", "schedule_params": {},
                                           "warmup_fraction": 0.0, "batch_size": 32,
                                           "optimizer": "adamw", "weight_decay": 0.0},
                           values=(1.0, value), epochs_run=2.0, steps_run=20)

    # trial 1 (lr 0.18, the best value) sits just below lr 0.2, which diverged
    records = [record(0, "complete", 0.05, 0.3), record(1, "complete", 0.18, 0.2),
               record(2, "diverged", 0.2, float("nan"))]
    page = write_report(TuneResult(records, epochs=2), tmp_path / "r.html").read_text("utf-8")
    assert ("Passed over: trial 1 (val_loss 0.2) sits on the edge of divergence: lr 0.18 is "
            "within 1.5x of lr 0.2, which diverged for cosine, batch 32, adamw." in page)
    plain = write_report(TuneResult(records[:2], epochs=2), tmp_path / "p.html")
    assert "Passed over" not in plain.read_text("utf-8")


def test_compute_cards_give_every_part_at_one_precision(tmp_path: Path) -> None:
    def record(number, state, epochs_run, reason=""):
        return TrialRecord(number, state, {"lr": 1e-2 * (number + 1), "schedule": "cosine",
                                           "schedule_params": {}, "warmup_fraction": 0.0,
                                           "batch_size": 32, "optimizer": "adamw",
                                           "weight_decay": 0.0},
                           values=(1.0, 0.5), epochs_run=epochs_run,
                           steps_run=round(10 * epochs_run),
                           reason=reason)

    records = [record(0, "complete", 100.0), record(1, "complete", 100.0),
               record(2, "pruned", 3.2345, "stalled"), record(3, "diverged", 0.01)]
    page = write_report(TuneResult(records, epochs=100), tmp_path / "r.html").read_text("utf-8")
    # 96.8 + 99.99 saved: the total and its parts in tenths of an epoch, not 196.8 / 96.77
    assert "196.8 epochs" in page and "203.2 epochs" in page
    assert "96.8 by pruning (96.8 by stalls), 100.0 by stopping diverged trials" in page


def test_empty_result_still_writes(tmp_path: Path) -> None:
    failed = TrialRecord(0, "failed", {}, reason="TypeError: bad model")
    page = write_report(TuneResult([failed]), tmp_path / "r.html").read_text("utf-8")
    assert "TypeError: bad model" in page and figures_in(page) == set()
    assert "no trial trained at a learning rate, so nothing is known of it yet" in page
    assert "highest learning rate tried (n/a)" not in page


def test_trials_that_all_failed_after_sampling_still_write_a_report(tmp_path: Path) -> None:
    # each sampled a learning rate, none reported a metric or diverged: nothing to plot
    params = {"lr": 0.01, "schedule": "cosine", "schedule_params": {}, "warmup_fraction": 0.0,
              "batch_size": 32, "optimizer": "adamw", "weight_decay": 0.0}
    records = [TrialRecord(i, "failed", {**params, "lr": 0.01 * (i + 1)},
                           reason="RuntimeError: boom") for i in range(3)]
    page = write_report(TuneResult(records), tmp_path / "r.html").read_text("utf-8")
    assert "No trial reported a metric or diverged" in page and "RuntimeError: boom" in page
    assert "Filled dots" not in page  # no caption for a figure not drawn
    assert "lr_sensitivity" not in figures_in(page)


def test_report_from_a_stored_study(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    storage = str(tmp_path / "sweep.log")
    result = autolr.tune(torch.nn.Linear(64, 10), (X[:300] / 16, y[:300]), n_trials=4,
                         epochs=2, storage=storage, study_name="stored <study>", progress=False)
    direct = result.report(tmp_path / "direct.html").read_text(encoding="utf-8")
    stored = autolr.report(storage, "stored <study>", str(tmp_path / "stored.html"))
    page = Path(stored).read_text(encoding="utf-8")
    assert "autolr report: stored &lt;study&gt;" in page and "stored <study>" not in page
    assert figures_in(page) == figures_in(direct)
    # saved as JSON and loaded again: the same report data
    result.save(tmp_path / "r.json")
    again = TuneResult.load(tmp_path / "r.json").report(tmp_path / "again.html")
    assert figures_in(again.read_text(encoding="utf-8")) == figures_in(direct)


def test_diverged_values_draw_no_empty_metric_panel_and_failed_families_no_crosses() -> None:
    from autolr.reporting.data import extract
    from autolr.reporting.figures import lr_sensitivity

    def params(schedule: str) -> dict:
        return {"lr": 0.5, "schedule": schedule, "schedule_params": {},
                "warmup_fraction": 0.0, "batch_size": 32, "optimizer": "adamw",
                "weight_decay": 0.0}

    records = [TrialRecord(0, "diverged", params("constant"), values=(2.3, 1.9),
                           reason="loss became nan at step 30", epochs_run=2.0, steps_run=30),
               TrialRecord(1, "failed", params("linear"), reason="OOM")]
    fig = lr_sensitivity(extract(TuneResult(records, epochs=5)))
    # the diverged trial's values before it blew up are not a result: only the strip
    assert "yaxis2" not in fig.layout and fig.layout.yaxis.ticktext == ("diverged",)
    named = {trace.name for trace in fig.data if trace.showlegend is not False}
    assert "constant" in named and "linear" not in named  # nothing of linear is drawn


def test_log_axes_label_their_ticks_in_full_and_one_value_once() -> None:
    from autolr.reporting.figures import log_axis

    wide = log_axis([1e-5, 0.3])
    assert wide["ticktext"] == ["1e-5", "1e-4", "0.001", "0.01", "0.1"]
    medium = log_axis([0.001, 0.1])
    assert medium["ticktext"][:3] == ["0.001", "0.002", "0.005"]
    # a sweep of one trial: plotly's own ticks all read "0.001" at this precision
    assert log_axis([0.001, 0.001])["ticktext"] == ["0.001"]


def test_a_default_that_is_the_best_trial_is_not_called_0_percent_worse(tmp_path: Path) -> None:
    only = TrialRecord(0, "complete", autolr.TrialConfig(1e-3).to_dict(), values=(1.0, 0.5),
                       is_baseline=True)
    page = write_report(TuneResult([only], epochs=2), tmp_path / "r.html").read_text("utf-8")
    assert "trial 0, complete; it is the best trial" in page
    assert "0% better" not in page and "0% worse" not in page


def test_the_default_card_says_a_score_improvement_in_its_error(tmp_path: Path) -> None:
    def trial(number: int, lr: float, accuracy: float) -> TrialRecord:
        return TrialRecord(number, "complete", autolr.TrialConfig(lr).to_dict(),
                           values=(0.5, accuracy), is_baseline=number == 0)
    page = write_report(TuneResult([trial(0, 1e-3, 0.92), trial(1, 1e-2, 0.956)],
                                   metric="accuracy", direction="maximize", epochs=2),
                        tmp_path / "r.html").read_text("utf-8")
    assert "the best has 45% less error (1 - accuracy)" in page


def test_a_sweep_without_the_default_config_says_why_there_is_no_comparison(
        tmp_path: Path) -> None:
    other = TrialRecord(0, "complete", autolr.TrialConfig(3e-3).to_dict(), values=(1.0, 0.5))
    page = write_report(TuneResult([other], epochs=2), tmp_path / "r.html").read_text("utf-8")
    assert "No trial trained the default config" in page
    assert "No trial trained the default config" not in write_report(
        synthetic_result(), tmp_path / "full.html").read_text("utf-8")


def test_a_single_run_that_looks_better_than_the_held_out_value_is_explained(
        tmp_path: Path) -> None:
    # the page showed trial 0 (one run, 0.115) below the recommended star (held out 0.13)
    # with no word on why it was not the pick
    config = autolr.TrialConfig(3e-3).to_dict()
    picked = TrialRecord(1, "complete", config, values=(0.5, 0.10),
                         seed_values=(0.10, 0.11, 0.12), holdout_values=(0.13,))
    lucky = TrialRecord(0, "complete", autolr.TrialConfig(1e-2).to_dict(), values=(0.5, 0.115))
    page = write_report(TuneResult([lucky, picked], epochs=2), tmp_path / "r.html").read_text(
        "utf-8")
    assert page.count("Trial(s) 0 look better so, but lost to it on the seeds") == 2
    behind = dataclasses.replace(lucky, values=(0.5, 0.2))
    page = write_report(TuneResult([behind, picked], epochs=2), tmp_path / "s.html").read_text(
        "utf-8")
    assert "look better so" not in page


def test_the_best_trials_losses_say_they_are_its_run_in_the_sweep(tmp_path: Path) -> None:
    # its val loss 0.1274 stood beside the held-out 0.1311 with no word of which run it was
    losses = {"train_losses": (0.5, 0.1), "val_losses": (0.6, 0.1274)}
    held = TrialRecord(0, "complete", autolr.TrialConfig(3e-3).to_dict(), values=(0.6, 0.1274),
                       seed_values=(0.1274, 0.13, 0.12), holdout_values=(0.1311,), **losses)
    page = write_report(TuneResult([held], epochs=2), tmp_path / "r.html").read_text("utf-8")
    assert "0.1274 on its run in the sweep (the summary's value is from a seed held out" in page
    one = TrialRecord(0, "complete", autolr.TrialConfig(3e-3).to_dict(), values=(0.6, 0.1274),
                      **losses)
    page = write_report(TuneResult([one], epochs=2), tmp_path / "s.html").read_text("utf-8")
    assert "validation loss 0.1274 (validation / training" in page


# the "LR finder vs the sweep" section: why the range test stopped, what it cost, what it
# could not judge, and a range test from another setup than the best trial's


def finder_text(result: TuneResult) -> str:
    """The finder section's text, tags and the figure left out."""
    from autolr.reporting import sections
    from autolr.reporting.data import extract

    section = sections.finder(extract(result), {"range_test": ""})
    return re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", section)).replace("&#x27;", "'")


def with_test(**changes) -> TuneResult:
    result = synthetic_result()
    result.range_test = dataclasses.replace(result.range_test, **changes)
    return result


def test_finder_words_why_the_range_test_stopped_from_what_it_recorded() -> None:
    lr = synthetic_result().range_test.lrs[-1]
    assert f"passed 4× its best at lr {lr:.3g}" in finder_text(with_test(cause="factor",
                                                                           stop_lr=lr))
    below = finder_text(with_test(cause="size", stop_lr=lr))
    assert "4× its best" not in below and "3× the loss's typical size" in below
    assert "went below zero" in below
    assert "its loss was not finite (NaN or infinite) at lr 0.2" in finder_text(
        with_test(cause="not_finite", stop_lr=0.2))
    assert "without blowing up" in finder_text(with_test(cause="end", stopped="end"))
    # saved before the cause was recorded: both ways it can have stopped
    assert "blew up (passed 4× its best) or was not finite" in finder_text(
        with_test(cause=None, stop_lr=None))


def test_a_steepest_slope_at_the_first_judged_point_is_called_a_bound() -> None:
    lrs = tuple(10 ** (-6 + 7 * i / 99) for i in range(100))
    # falling fastest from the start, flattening towards a minimum near 1e-2
    falling = tuple(1.0 + (math.log10(lr) + 2) ** 2 * (lr < 1e-2) for lr in lrs)
    early = with_test(lrs=lrs, losses=falling)
    assert early.range_test.steepest_at_start()
    assert "read that suggestion as a bound" in finder_text(early)
    assert not synthetic_result().range_test.steepest_at_start()
    assert "as a bound" not in finder_text(synthetic_result())


def test_finder_on_an_empty_curve_names_the_lr_and_small_costs_in_ms() -> None:
    empty = finder_text(with_test(lrs=(), losses=(), cause="not_finite", stop_lr=1e-7))
    assert "n/a" not in empty and "None" not in empty
    assert "not finite (NaN or infinite) at lr 1e-07" in empty
    assert "does not train even at the lowest learning rate it tried (1e-07)" in empty
    old = finder_text(with_test(lrs=(), losses=(), cause=None, stop_lr=None))
    assert "n/a" not in old and "even at the lowest learning rate it tried" in old
    assert "(12 ms)" in finder_text(with_test(seconds=0.012))
    assert "(2.5 s)" in finder_text(with_test(seconds=2.5))


def test_finder_says_which_suggestions_a_short_curve_cannot_judge() -> None:
    test = synthetic_result().range_test
    text = finder_text(with_test(lrs=test.lrs[:20], losses=test.losses[:20]))
    assert ("No suggestion: steepest slope, valley, minimum / 10, as the curve has 20 "
            "points, too few to judge") in text
    assert "× the tuned lr" not in text  # no table of suggestions


def test_finder_notes_a_range_test_run_at_another_optimizer_or_weight_decay() -> None:
    result = synthetic_result()
    best = result.best_record.params
    other = finder_text(with_test(optimizer="sgd"))
    assert (f"the best trial now uses batch {best['batch_size']} with adamw (weight decay 0),"
            " so its suggestions are for another optimizer") in other
    assert "× above the tuned" not in other and "× below the tuned" not in other
    decayed = finder_text(with_test(weight_decay=0.01))
    assert "ran at batch" in decayed and "compare across weight decays" in decayed
    assert "the best trial's setup when it ran" not in finder_text(result)


def test_finder_says_a_one_trial_safe_band_cannot_hold_a_suggestion() -> None:
    from autolr.range_test import RangeTest

    records = [TrialRecord(n, "complete", autolr.TrialConfig(lr).to_dict(), values=(1.0, v))
               for n, (lr, v) in enumerate([(1e-3, 0.1), (1e-2, 0.5), (1e-4, 0.9)])]
    lrs = tuple(10 ** (-6 + i / 10) for i in range(40))
    losses = tuple(3.0 - 0.05 * i if i < 30 else 1.5 + i - 30 for i in range(40))
    test = RangeTest(lrs, losses, 32, "adamw", 1.0, 0.1, "diverged")
    text = finder_text(TuneResult(records, epochs=2, range_test=test))
    assert "of 3 suggestions fall inside the sweep's safe LR band (the band is a single " \
           "learning rate, 0.001, from one trial" in text


@pytest.mark.parametrize("points", [2, 5, 9, 12, 20])
def test_a_range_test_that_stopped_after_a_few_points_still_draws(points, tmp_path) -> None:
    # the skipped ends were looked up at points 10 and n - 5: a test that stopped after 2
    # to 9 points (a model already at its optimum, whose batch noise passed 4x its best)
    # crashed the whole report with an IndexError
    from autolr.reporting import figures_finder
    from autolr.reporting.data import extract

    test = synthetic_result().range_test
    short = with_test(lrs=test.lrs[:points], losses=test.losses[:points], cause="factor")
    figure = figures_finder.range_test(extract(short))
    shaded = [shape for shape in figure.layout.shapes if shape.fillcolor == "#7f7f7f"]
    assert [(s.x0, s.x1) for s in shaded] == [(test.lrs[0], test.lrs[points - 1])]
    assert write_report(short, tmp_path / "short.html").stat().st_size > 0


def test_a_range_test_of_another_optimizer_draws_no_tuned_lr_and_summary_no_ratio() -> None:
    from autolr.reporting import figures_finder
    from autolr.reporting.data import extract

    other = with_test(optimizer="sgd")
    names = [trace.name or "" for trace in figures_finder.range_test(extract(other)).data]
    assert not any(name.startswith(("tuned lr", "safe LR band")) for name in names)
    summary = other.summary()
    assert "range test, batch" in summary and ", sgd) would pick" in summary
    assert "the tuned lr)" not in summary and "(not adamw, the tuned config's optimizer" \
        in summary


def test_a_curve_holding_a_loss_that_is_not_finite_suggests_nothing() -> None:
    test = synthetic_result().range_test
    losses = list(test.losses)
    losses[12] = math.nan
    broken = dataclasses.replace(test, losses=tuple(losses))
    assert broken.suggestions() == {}
    assert broken.why_not("valley") == "the curve holds a loss that is not finite"


def test_the_sweep_near_a_suggestion_takes_trials_at_a_weight_decay_within_3x() -> None:
    # a searched weight decay is drawn on a log scale: no other trial has the range test's
    # very value, and the column said "no complete trial" beside several near the lr
    from autolr.range_test import RangeTest
    from autolr.reporting.data import extract

    def trial(number: int, lr: float, decay: float, value: float) -> TrialRecord:
        params = autolr.TrialConfig(lr, weight_decay=decay).to_dict()
        return TrialRecord(number, "complete", params, values=(1.0, value))

    lrs = tuple(10 ** (-6 + i / 10) for i in range(40))
    losses = tuple(3.0 - 0.05 * i if i < 30 else 1.5 + i - 30 for i in range(40))
    test = RangeTest(lrs, losses, 32, "adamw", 1.0, 0.1, "diverged", weight_decay=1.3e-4)
    picks = {p.name: p for p in extract(TuneResult(
        [trial(0, 1e-3, 1.3e-4, 0.1), trial(1, test.valley(), 9e-5, 0.4),
         trial(2, test.steepest(), 5e-3, 0.3)], epochs=2, range_test=test)).finder_picks}
    assert picks["valley"].nearest.number == 1  # 9e-5 is within 3x of 1.3e-4
    assert picks["steepest"].nearest is None or picks["steepest"].nearest.number != 2


def test_a_pruned_run_above_every_complete_one_leaves_the_boundary_open(tmp_path: Path) -> None:
    # it said "no trial diverged, so the boundary lies above the highest lr tried" of a
    # sweep whose highest lr was pruned at a 6-step rung with its loss at 370x its start
    from tests.test_report_data import rec

    records = [rec(0, "complete", 0.01, 0.30), rec(1, "complete", 0.05, 0.25),
               rec(2, "pruned", 0.8, 371.6), rec(3, "pruned", 0.02, 0.9)]
    page = write_report(TuneResult(records, epochs=10), tmp_path / "r.html").read_text("utf-8")
    assert ("no trial was recorded as diverged: the highest that trained to the end is "
            "0.05; 1 trial(s) above it (up to 0.8) were stopped first by another rule") in page
    assert "boundary lies above the highest" not in page


def test_a_stopped_trial_far_off_the_complete_ones_does_not_flatten_the_lr_plot() -> None:
    # an r2 of -429 (a pruned blow-up) set the linear axis from -450 to 0.4: every
    # complete trial, the best's star and the band sat on one flat line
    from autolr.reporting.data import extract
    from autolr.reporting.figures import lr_sensitivity
    from tests.test_report_data import rec

    records = [rec(0, "complete", 0.01, 0.30), rec(1, "complete", 0.05, 0.36),
               rec(2, "pruned", 0.8, -428.7), rec(3, "pruned", 0.02, 0.1)]
    fig = lr_sensitivity(extract(TuneResult(records, metric="r2", direction="maximize",
                                            epochs=10)))
    low, high = fig.layout.yaxis.range
    assert -1 < low < 0.1 and 0.36 < high < 0.5  # the pruned 0.1 still on the scale
    assert "1 stopped trial(s) off the scale" in fig.layout.yaxis.title.text
    # where every value is near the complete ones, plotly ranges the axis itself
    near = lr_sensitivity(extract(TuneResult(records[:2] + records[3:], metric="r2",
                                             direction="maximize", epochs=10)))
    assert near.layout.yaxis.range is None and "off the scale" not in near.layout.yaxis.title.text
