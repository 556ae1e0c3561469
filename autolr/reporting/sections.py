"""The text of each report section: numbers, tables and the notes for empty sections.

Each writer takes the report data and the section's rendered figures (name -> HTML; a
missing name means that figure had no data) and returns HTML. Every value is escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from autolr.cliff import EDGE_MARGIN
from autolr.metrics import PERFECT_SCORES
from autolr.range_test import SKIP_END, SKIP_START, SUGGESTIONS, RangeTest
from autolr.reporting.data import ReportData, TrialPoint
from autolr.result import UNCONFIRMED, UNENDED, percent, times

Blocks = dict[str, str]
#: a range test whose smoothed loss fell less than this share over its judged part is
#: called nearly flat in the report
FLAT_FALL = 0.1


def esc(value: object) -> str:
    return html.escape(str(value))


def g(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def epochs(value: float) -> str:
    """Epochs at one precision, so the parts of a card add up to its total on sight."""
    return "<0.1" if 0 < value < 0.05 else f"{value:,.1f}"


def note(message: str, kind: str = "note") -> str:
    """An already-escaped message in a highlighted box."""
    return f'<p class="{kind}">{message}</p>'


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Cells are escaped; numbers right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if isinstance(c, (int, float))
                         else f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def card(label: str, value: str, sub: str = "") -> str:
    return (f'<div class="card"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div><div class="sub">{esc(sub)}</div></div>')


def _describe_schedule(params: dict) -> str:
    extra = ", ".join(f"{k}={g(v)}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in (params.get("schedule_params") or {}).items())
    return f"{params.get('schedule')}" + (f" ({extra})" if extra else "")


def _improvement_words(improvement: float, metric: str) -> str:
    """The best against the default: "40% better" for a loss or an error (perfect at 0);
    for a score perfect elsewhere, in its error (accuracy 0.92 -> 0.956 is 45% less)."""
    perfect = PERFECT_SCORES.get(metric)
    if perfect is None:
        return f"the best is {abs(improvement):.0%} " + ("better" if improvement >= 0
                                                          else "worse")
    return (f"the best has {abs(improvement):.0%} " + ("less" if improvement >= 0 else "more")
            + f" error ({perfect:g} - {metric})")


def summary(data: ReportData, blocks: Blocks) -> str:
    s, metric = data.summary, data.metric
    parts = []
    if data.ended is False:
        parts.append(note(esc(UNENDED[0].upper() + UNENDED[1:]), "warn"))
    if data.cut_short:
        parts.append(note(esc(data.cut_short[0].upper() + data.cut_short[1:] + "."), "warn"))
    if s.best is None:
        parts.append(note(esc(s.no_best or "No trial completed."), "warn"))
    elif data.ended is not False and not s.best.seed_note:  # one run: the sweep's luckiest
        parts.append(note(esc("The best value below is " + UNCONFIRMED), "warn"))
    for warning in (data.learned_nothing, data.range_edge):
        if warning:
            parts.append(note(esc(warning[0].upper() + warning[1:]), "warn"))
    counts = s.counts
    cards = []
    if s.best is not None:
        cards.append(card(f"best {metric}", g(s.best.value, 4),
                          f"trial {s.best.number}" + (f", {s.best.seed_note}"
                                                      if s.best.seed_note else "")))
    if s.baseline is not None:
        sub = f"trial {s.baseline.number}, {s.baseline.state}"
        if s.best is not None and s.baseline.number == s.best.number:
            sub += "; it is the best trial"
        elif s.improvement is not None:
            sub += "; " + _improvement_words(s.improvement, metric)
        cards.append(card(f"default (AdamW 1e-3, constant, batch 32): {metric}",
                          g(s.baseline.value, 4), sub))
    cards.append(card("trials", str(s.n_trials),
                      ", ".join(f"{counts[k]} {k}" for k in counts)))
    sweep_spent = s.epochs_spent - s.epochs_confirming  # the pick's runs are on top
    share = f" (the sweep: {sweep_spent / s.epochs_budget:.0%} of running every trial to " \
        "the end)" if s.epochs_budget else ""
    cards.append(card("compute spent", f"{epochs(s.epochs_spent)} epochs",
                      f"{s.seconds_spent:.3g} s of training{share}" + (
                          f"; {epochs(s.epochs_confirming)} epochs re-training the leader "
                          "on more seeds (robust pick)" if s.epochs_confirming else "")))
    by_rule = ", ".join(f"{epochs(spared)} by {rule}" for rule, spared in s.saved_by_rule)
    saved = s.epochs_saved_pruning + s.epochs_saved_divergence - s.epochs_rung_reruns
    cards.append(card(
        "compute saved", f"{epochs(saved)} epochs",
        f"{epochs(s.epochs_saved_pruning)} by pruning"
        + (f" ({by_rule})" if by_rule else "")
        + f", {epochs(s.epochs_saved_divergence)} by stopping diverged trials"
        + (f", less {epochs(s.epochs_rung_reruns)} training schedules again at budgeted rungs"
           if s.epochs_rung_reruns else "")))
    parts.append(f'<div class="cards">{"".join(cards)}</div>')
    if s.baseline is None and s.best is not None:  # else a card silently missing
        parts.append(note("No trial trained the default config (AdamW, lr 1e-3, constant, "
                          "batch 32, no warmup or weight decay), so there is no comparison "
                          "with it: the search space does not hold it, baseline=False, or the "
                          "sweep ended before its turn (trial 10)."))
    if s.passed_over:  # else a reader of the trials table wonders why it was not picked
        parts.append(note(esc(s.passed_over[0].upper() + s.passed_over[1:]) + "."))
    if s.best_params is not None:
        columns = [("best", s.best_params, s.best.value)]
        if s.baseline is not None and s.baseline_params is not None:
            columns.append(("default", s.baseline_params, s.baseline.value))
        rows = [["learning rate", *(g(p["lr"]) for _, p, _ in columns)],
                ["schedule", *(_describe_schedule(p) for _, p, _ in columns)],
                ["warmup", *(f"{percent(p['warmup_fraction'])} of training"
                             for _, p, _ in columns)],
                ["batch size", *(str(p["batch_size"]) for _, p, _ in columns)],
                ["optimizer", *(str(p["optimizer"]) for _, p, _ in columns)],
                ["weight decay", *(g(p.get("weight_decay", 0.0)) for _, p, _ in columns)],
                [f"final {metric}", *(g(v, 4) for _, _, v in columns)]]
        parts.append(table(["", *(name for name, _, _ in columns)], rows))
    if data.failures:
        parts.append(f"<h3>Failed trials ({len(data.failures)})</h3>")
        parts.append(table(["trial", "error"], [[n, reason] for n, reason in data.failures]))
    return "".join(parts)


def _two_kinds_of_value(data: ReportData) -> str:
    """A caption where a trial on one run looks better than the recommended config's
    held-out value: the two numbers are not alike (one run was in the race, the
    held-out one was not), and the page ranks on both."""
    best = data.summary.best
    if best is None or best.value is None or "held-out" not in best.seed_note:
        return ""
    sign = 1.0 if data.direction == "minimize" else -1.0
    ahead = [p.number for p in data.points if p.state == "complete" and p.value is not None
             and p.number != best.number and sign * p.value < sign * best.value]
    if not ahead:
        return ""
    return ('<p class="caption">The recommended config (trial '
            f"{best.number}) is shown at its value on a held-out seed, what retraining it "
            "gives; every other trial at its one run in the sweep, the luckier kind of "
            f"number. Trial(s) {', '.join(map(str, ahead[:8]))}{' …' * (len(ahead) > 8)} "
            "look better so, but lost to it on the seeds that chose it, or were passed over "
            "(summary).</p>")


def sensitivity(data: ReportData, blocks: Blocks) -> str:
    parts, band, b = [], data.band, data.boundary
    parts.append(_two_kinds_of_value(data))
    if data.learned_nothing and band is not None:  # else a wide band reads as robustness
        parts.append(note("The best config cannot be told from a constant prediction (see the "
                          "summary): the band below spans learning rates that all learned "
                          "about as little, not a safe range to train in.", "warn"))
    if band is None:
        parts.append(note("No trial completed, so there is no safe learning-rate band."))
    else:
        word = "≤" if data.direction == "minimize" else "≥"
        perfect = PERFECT_SCORES.get(data.metric)
        measured = (f"error (1 − {esc(data.metric)})" if perfect == 1.0
                    else f"final {esc(data.metric)}")
        parts.append(
            f"<p><b>Safe LR band</b> (complete trials whose {measured} is within "
            f"{band.tolerance:.0%} of the best trial's, the recommended config's "
            f"{esc(data.metric)} {g(band.best_value, 4)}, i.e. {esc(data.metric)} {word} "
            f"{g(band.threshold, 4)}): "
            f"<b>{g(band.low)} – {g(band.high)}</b>, {band.decades:.2f} decades, "
            f"{len(band.numbers)} trial(s).")
        if data.band_left_out:
            parts.append(f" Left out, as the robust pick leaves them: trial(s) "
                         f"{', '.join(map(str, data.band_left_out))}, on the edge of "
                         f"divergence (within {EDGE_MARGIN:g}x of, or above, a learning "
                         "rate that diverged) or that nearly diverged once (a setback).")
        if len(band.numbers) == 1:
            parts.append(" Only the best trial itself is that close: the band is a single "
                         "point here; the wider tolerances below show how fast it falls off.")
        if band.misses_inside:
            parts.append(f" {band.misses_inside} other complete trial(s) inside that range "
                         "missed the tolerance: other settings (schedule, warmup, batch size) "
                         "matter there too.")
        parts.append("</p>")
        parts.append(table(["tolerance", f"{data.metric} threshold", "lowest lr",
                            "highest lr", "width (decades)", "trials"],
                           [[f"{x.tolerance:.0%}", g(x.threshold, 4), g(x.low), g(x.high),
                             round(x.decades, 2), len(x.numbers)] for x in data.bands]))
    tried = [p.lr for p in data.points]
    if not tried:
        parts.append("<p><b>Divergence boundary:</b> no trial trained at a learning rate, "
                     "so nothing is known of it yet.</p>")
    elif b.lowest_lr is None:
        parts.append(f"<p><b>Divergence boundary:</b> {_no_divergence(data.points)}</p>")
    else:
        first = min(b.blowups, key=lambda x: x.lr)
        where = (f"it finished on the sweep's seed, then {esc(first.where)}"
                 if first.on_another_seed else f"the scheduled lr at the blow-up, step "
                 f"{first.step}, was {g(first.lr_at_blowup)}")
        parts.append(
            f"<p><b>Divergence boundary:</b> the lowest learning rate that diverged is "
            f"<b>{g(b.lowest_lr)}</b> (trial {first.number}, {esc(first.schedule)}, batch "
            f"{first.batch_size}; {where}). " + (
                f"The highest learning rate that trained to the end is "
                f"{g(b.highest_complete_lr)}." if b.highest_complete_lr is not None
                else "No trial trained to the end."))
        if len(b.blowups) == len(data.points):
            parts.append(" Every trial diverged: search lower learning rates.")
        elif b.n_complete_above:
            parts.append(f" {b.n_complete_above} trial(s) at or above it still completed "
                         "(with another schedule, warmup or batch size): the edge is not sharp.")
        parts.append("</p>")
    if len(b.per_batch) > 1 or b.blowups:
        parts.append(table(["batch size", "trials", "diverged", "lowest diverged lr",
                            "highest complete lr"],
                           [[x.batch_size, x.n_trials, x.n_diverged, g(x.lowest_diverged_lr),
                             g(x.highest_complete_lr)] for x in b.per_batch]))
    if "lr_sensitivity" not in blocks:
        parts.append(note(
            "No trial sampled a learning rate." if not data.points else
            "No trial reported a metric or diverged (they failed before their first "
            "evaluation: the summary lists why), so there is nothing to plot against the "
            "learning rate."))
        return "".join(parts)
    parts.append(blocks["lr_sensitivity"])
    parts.append('<p class="caption">Filled dots: complete trials (final metric); open dots: '
                 "pruned trials (metric when stopped); crosses in the top strip: diverged "
                 "trials at their base lr. Lines: smoothed trend per family (Gaussian kernel "
                 "over log lr, families with 3 or more complete trials). Green: the safe band "
                 "and its tolerance; red dashed: the lowest lr that diverged. Click a family in "
                 "the legend to hide it.</p>")
    return "".join(parts)


FINDER_LABELS = {"steepest": "steepest slope", "valley": "valley", "min_tenth": "minimum / 10"}


def _range_stop(test: RangeTest) -> str:
    """Why the range test stopped, in words, from what it recorded (`RangeTest.cause`)."""
    at = test.stop_lr if test.stop_lr is not None else (test.lrs[-1] if test.lrs else None)
    where = f" at lr {g(at)}" if at is not None else ""
    if test.cause == "factor":
        return f"its smoothed loss passed {test.factor:g}× its best{where}"
    if test.cause == "size":
        return (f"its smoothed loss rose above its best by more than {test.factor - 1:g}× the "
                f"loss's typical size{where} (the loss went below zero, where a multiple "
                "of its best means nothing)")
    if test.cause == "not_finite":
        return f"its loss was not finite (NaN or infinite){where}"
    if test.cause == "padding":
        return "a whole epoch of its batches was padding only (labels -100): nothing to learn"
    if test.cause == "end" or test.stopped != "diverged":
        return f"it reached lr {g(at)} without blowing up"
    # saved before the cause was recorded: one of the first three
    return f"its loss blew up (passed {test.factor:g}× its best) or was not finite{where}"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _setup(batch: object, optimizer: object, weight_decay: float) -> str:
    """Where a range test or a trial ran, unescaped."""
    return f"batch {batch} with {optimizer} (weight decay {g(weight_decay)})"


def finder(data: ReportData, blocks: Blocks) -> str:
    test, best = data.range_test, data.summary.best
    if test is None or best is None:
        return note("No LR range test with this result: it runs at the end of a sweep with "
                    "a completed trial (autolr.tune(..., range_test=True), the default), so "
                    "a sweep stopped before its end, or run with range_test=False, has none.")
    if len(test.lrs) < 2:
        first = test.lrs[0] if test.lrs else test.stop_lr
        return note(f"The LR range test at batch {test.batch_size} ({esc(test.optimizer)}) "
                    f"stopped at its {'first' if not test.lrs else 'second'} step: "
                    f"{_range_stop(test)}, so it suggests nothing: the model does not train "
                    "even at the lowest learning rate it tried"
                    + (f" ({g(first)})." if first is not None else "."))
    params = data.summary.best_params or {}
    best_optimizer = params.get("optimizer", test.optimizer)
    best_decay = float(params.get("weight_decay") or 0.0)
    same_optimizer = best_optimizer == test.optimizer
    same_setup = (same_optimizer and test.batch_size == best.batch_size
                  and math.isclose(best_decay, test.weight_decay, rel_tol=1e-9, abs_tol=1e-12))
    here = _setup(test.batch_size, test.optimizer, test.weight_decay)
    skipped = (f" ({test.skipped} batches of padding only were skipped: they have no loss)"
               if test.skipped else "")
    parts = [f"<p>What an LR finder (Smith's range test, as Lightning, fastai and "
             f"torch-lr-finder run it) suggests for this model, beside what the sweep found. "
             f"The test trained {len(test.lrs)} steps at "
             f"{esc(here)} while the "
             f"learning rate grew from {g(test.lrs[0])}{skipped}; {_range_stop(test)}. It "
             f"cost {test.epochs:.2f} epochs ({_seconds(test.seconds)}). The tuned "
             f"learning rate is <b>{g(data.tuned_lr)}</b> (trial {best.number}, "
             f"{esc(best.schedule)}, "
             f"{esc(_setup(best.batch_size, best_optimizer, best_decay))}).</p>"]
    if not same_setup:
        changed = [what for what, differs in (
            ("batch sizes", test.batch_size != best.batch_size),
            ("weight decays", not math.isclose(best_decay, test.weight_decay, rel_tol=1e-9,
                                               abs_tol=1e-12))) if differs]
        parts.append(note(
            f"The range test ran at {esc(here)}, the best trial's setup when it ran; the "
            f"best trial now uses {esc(_setup(best.batch_size, best_optimizer, best_decay))}, "
            "so "
            + (f"the ratios below compare across {' and '.join(changed)}." if same_optimizer
               else "its suggestions are for another optimizer than the tuned learning rate's:"
               " no ratio to it is given.")))
    picks = data.finder_picks
    left_out = [(name, why) for name in SUGGESTIONS if (why := test.why_not(name))]
    if picks:
        rows = []
        for pick in picks:
            seen = pick.nearest
            rows.append([FINDER_LABELS[pick.name], g(pick.lr),
                         times(pick.ratio, "×") if same_optimizer else "n/a",
                         "n/a" if pick.in_band is None or not same_optimizer
                         else "yes" if pick.in_band else "no",
                         f"trial {seen.number} at lr {g(seen.lr)} ({seen.schedule}): "
                         f"{g(seen.value, 4)}" if seen is not None
                         else "no complete trial within a quarter decade at this setup"])
        parts.append(table(["suggestion", "lr", "× the tuned lr", "inside the safe band",
                            f"the sweep near it ({here}; {data.metric})"], rows))
    if left_out:
        reasons: dict[str, list[str]] = {}
        for name, why in left_out:
            reasons.setdefault(why, []).append(FINDER_LABELS[name])
        parts.append(f"<p>{'No suggestion' if not picks else 'Left out'}: " + "; ".join(
            f"{', '.join(names)}, as {esc(why)}" for why, names in reasons.items())
            + " (a suggestion is given only where the curve can judge it).</p>")
    if test.steepest_at_start():
        parts.append(note(
            f"The steepest slope is the first point the finders judge (lr "
            f"{g(test.steepest())}): the loss was already falling fastest where the judged "
            f"curve begins, so the steepest slope may lie lower still, among the first "
            f"{SKIP_START} points they skip; read that suggestion as a bound, not a point."))
    fall = test.fall()
    if picks and fall is not None and fall < FLAT_FALL:
        parts.append(note(f"The smoothed loss fell only {fall:.1%} over the judged part of "
                          "the curve: the suggestions rest on a nearly flat curve (a model "
                          "that starts near its optimum, or one that learns little in the "
                          "test's few steps), where batch noise can decide where they land."))
    if picks and same_optimizer:
        closest = min(picks, key=lambda p: abs(math.log10(p.ratio)))
        factor = max(closest.ratio, 1 / closest.ratio)
        inside = sum(bool(p.in_band) for p in picks)
        band = data.band
        one = band is not None and (len(band.numbers) == 1 or band.low == band.high)
        parts.append(
            f"<p>The closest suggestion ({FINDER_LABELS[closest.name]}) is "
            f"<b>{times(factor, '×')}</b> {'above' if closest.ratio > 1 else 'below'} the "
            f"tuned learning rate; {inside} of {len(picks)} suggestions fall inside the "
            "sweep's safe LR band"
            + (f" (the band is a single learning rate, {g(band.low)}, from "
               f"{'one trial' if len(band.numbers) == 1 else 'trials at one lr'}: a "
               "suggestion falls inside it only by matching it exactly, so this says "
               "nothing about the finder)" if one else "") + ".</p>")
    parts.append(blocks.get("range_test", ""))
    parts.append('<p class="caption">The range test ramps the learning rate on a constant '
                 "schedule from a fresh model, so it cannot see what warmup and decay allow; "
                 "the sweep trained every trial to the end (or pruned it). The suggestions "
                 f"skip the curve's first {SKIP_START} and last {SKIP_END} points, as fastai's "
                 "and torch-lr-finder's do; valley and minimum / 10 are fastai's, steepest is "
                 "taken up to the lowest loss. Green: the sweep's safe LR band over all batch "
                 "sizes and optimizers; grey: the points the suggestions skip.</p>")
    return "".join(parts)


def schedules(data: ReportData, blocks: Blocks) -> str:
    parts, families = [], data.families
    if len(families) == 1:
        parts.append(note(f"Only one schedule family ({esc(families[0].name)}) was tried: "
                          "there is no comparison between families."))
    if families:
        parts.append(table(
            ["family", "trials", "complete", "pruned", "diverged", "failed", "best",
             "median", "25–75%", "best trial's lr"],
            [[f.name, f.n_trials, f.n_complete, f.n_pruned, f.n_diverged, f.n_failed,
              g(f.best_value, 4), g(f.median, 4),
              f"{g(f.q1, 4)} – {g(f.q3, 4)}" if f.q1 is not None else "n/a", g(f.best_lr)]
             for f in families]))
        parts.append('<p class="caption">Best first; best, median and the 25–75% range are '
                     f"over complete trials' final {esc(data.metric)}.</p>")
        parts.append(_two_kinds_of_value(data))
        missing = [f.name for f in families if not f.values]
        if missing and len(missing) < len(families):
            parts.append(f'<p class="caption">Not in the plot (no complete trial): '
                         f"{esc(', '.join(missing))}.</p>")
    parts.append(blocks.get("family_spread",
                            note("No trial completed: there is no spread to show.")))
    if "best_schedule" in blocks:
        parts.append(blocks["best_schedule"])
        parts.append('<p class="caption">Drawn from the same schedule function the training '
                     "loop applied, step by step (warmup shaded).</p>")
        if data.schedule_note:  # drawn, with a caveat (a schedule of one's own edited since)
            parts.append(note(esc(data.schedule_note)))
    else:
        parts.append(note(esc(data.schedule_note or "No schedule to draw.")))
    return "".join(parts)


def _no_divergence(points: Sequence[TrialPoint]) -> str:
    """What a sweep without a diverged trial tells of the boundary: a run stopped first
    by another rule (pruned at a rung of a few steps, say) was never judged for it."""
    top = max(p.lr for p in points)
    trained = [p.lr for p in points if p.state == "complete"]
    stopped = [p for p in points if p.state != "complete"
               and (not trained or p.lr > max(trained))]
    if not stopped:
        return (f"no trial diverged, so the boundary lies above the highest learning rate "
                f"tried ({g(top)}).")
    reach = (f"the highest that trained to the end is {g(max(trained))}; "
             if trained else "none trained to the end; ")
    return (f"no trial was recorded as diverged: {reach}{len(stopped)} trial(s) above it "
            f"(up to {g(top)}) were stopped first by another rule, before the divergence "
            "rule could judge them, so the boundary may lie anywhere above "
            f"{g(max(trained)) if trained else 'the lowest learning rate tried'}.")


def curves(data: ReportData, blocks: Blocks) -> str:
    parts = [blocks.get("learning_curves", note("No trial reached an evaluation."))]
    if data.rungs:
        parts.append(note(
            "Budgeted rungs: each trial trained its whole schedule in "
            f"{', '.join(map(str, data.rungs))} epochs in turn until it fell behind; its curve "
            "here is its last rung's, so a short curve is a complete, compressed schedule, "
            "not the start of a long run. Its compute counts every rung."))
    losses = data.best_losses
    if losses is not None and losses.train and losses.val:
        train, val = losses.train[-1], losses.val[-1]
        ratio = g(val / train if train else None)
        best = data.summary.best
        # its losses are its run in the sweep's: the summary's value may be another seed's
        run = (" on its run in the sweep (the summary's value is from a seed held out of "
               "choosing it)" if best is not None and "held-out" in best.seed_note else "")
        parts.append(f"<p>The best trial ends with training loss {g(train, 4)} and validation "
                     f"loss {g(val, 4)}{run} (validation / training = {ratio}): a ratio far "
                     "above 1 means the gains show on training data more than on "
                     "validation data.</p>")
    side = [blocks[name] for name in ("best_losses", "metric_vs_compute") if name in blocks]
    if side:
        parts.append(f'<div class="grid2">{"".join(side)}</div>')
    if "best_losses" not in blocks:
        parts.append(note("There is no best trial with recorded losses."))
    return "".join(parts)


def batch(data: ReportData, blocks: Blocks) -> str:
    fit, parts = data.scaling, []
    if fit.slope is None:
        parts.append(note(f"No scaling fit: {esc(fit.reason)}"))
    else:
        meaning = {"linear": "the linear rule (double the batch, double the lr)",
                   "square-root": "the square-root rule (double the batch, lr × 1.41)",
                   "flat": "neither rule: the best lr barely depends on the batch size",
                   "falling": "neither rule: the best lr falls as the batch grows, against "
                              "both (often a batch size whose trials barely trained: see "
                              "the table)"}
        parts.append(f"<p>Fitted slope of log(best lr) vs log(batch size): <b>{fit.slope:.2f}"
                     f"</b> over {len(fit.points)} batch sizes, closest to "
                     f"{meaning[fit.rule]}. The linear rule has slope 1, the square-root rule "
                     "0.5. Each best lr is one trial's, with other settings varying: with few "
                     "complete trials per batch size, read the slope as a hint.</p>")
    if fit.points:
        parts.append(table(["batch size", "best lr", f"its {data.metric}", "trial",
                            "complete trials"],
                           [[b.batch_size, g(b.lr), g(b.value, 4), b.number, b.n_complete]
                            for b in fit.points]))
    if "batch_scaling" in blocks:
        parts.append(blocks["batch_scaling"])
    return "".join(parts)


def importance(data: ReportData, blocks: Blocks) -> str:
    found = data.importance
    if not found.params:
        return note(f"No parameter importance: {esc(found.reason)}")
    return (f"<p>How much of the variation of the final {esc(data.metric)} over "
            f"{found.n_trials} complete trials each parameter explains, by "
            f"{esc(found.evaluator)}. Only parameters that varied are listed; with few trials "
            "these shares are rough.</p>" + blocks.get("importance", ""))


def code(data: ReportData, blocks: Blocks) -> str:
    if data.code is None:
        return note("There is no best trial (or its schedule is not registered in this "
                    "session), so there is no code to show.")
    return ("<p>Plain PyTorch that recreates the best optimizer and schedule "
            "(<code>model</code> is your model):</p>"
            f"<pre><code>{esc(data.code)}</code></pre>")


def trials(data: ReportData, blocks: Blocks) -> str:
    rows = [[p.number, p.state + (" (default)" if p.is_baseline else ""), g(p.lr),
             p.schedule, p.batch_size, percent(p.warmup_fraction),
             g(p.value, 4) + (f" ({p.measured})" if p.measured else ""),
             p.epochs_run, round(p.seconds, 2), p.reason or ""] for p in data.points]
    return (f"<details><summary>Show the {len(rows)} trial{'' if len(rows) == 1 else 's'} "
            "that sampled a config</summary>"
            + table(["trial", "state", "lr", "schedule", "batch", "warmup",
                     f"{data.metric} at its end", "epochs", "seconds", "reason"], rows)
            + "</details>")
