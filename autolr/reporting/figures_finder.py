"""The LR range test's curve, with the finders' suggestions and the tuned learning rate.

Same conventions as figures.py (shared styling, user strings through `text()`).
"""

from __future__ import annotations

import plotly.graph_objects as go

from autolr.range_test import MIN_POINTS
from autolr.reporting.data import ReportData
from autolr.reporting.figures import BEST_COLOR, band_span, log_axis, style, text

#: suggestion name -> (label, colour, dash)
PICK_STYLE = {
    "steepest": ("steepest slope", "#e6550d", "dash"),
    "valley": ("valley", "#756bb1", "dash"),
    "min_tenth": ("minimum / 10", "#636363", "dot"),
}


def range_test(data: ReportData) -> go.Figure | None:
    """Smoothed training loss against the ramped lr; vertical lines where the finder would
    pick and where the sweep found the best, the sweep's safe band shaded green and the
    points the suggestions skip (the first 10 and last 5) grey."""
    test = data.range_test
    if test is None or len(test.lrs) < 2:
        return None
    fig = go.Figure(go.Scatter(
        x=test.lrs, y=test.losses, mode="lines", name="range test (smoothed train loss)",
        line={"color": "#1f77b4", "width": 2},
        hovertemplate="lr %{x:.3g}<br>smoothed loss %{y:.4g}<extra></extra>"))
    low, high = min(test.losses), max(test.losses)
    first, stop = test.judged()
    last = len(test.lrs) - 1
    # the points the suggestions skip, as the finders skip them; all of a curve too short
    # to judge (its two skipped ends would overlap, or leave a gap that looks judged)
    skipped = ([(test.lrs[0], test.lrs[last])] if len(test.lrs) < MIN_POINTS else
               [(test.lrs[0], test.lrs[first]), (test.lrs[min(stop - 1, last)], test.lrs[last])])
    for x0, x1 in skipped:
        if x1 > x0:
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#7f7f7f", opacity=0.08, line_width=0,
                          layer="below")
    # the sweep's band and tuned lr are its best config's: drawn over a test of another
    # optimizer they would read as that optimizer's
    params = data.summary.best_params or {}
    same_optimizer = params.get("optimizer", test.optimizer) == test.optimizer
    if data.band is not None and same_optimizer:
        low_lr, high_lr = band_span(data.band)
        fig.add_vrect(x0=low_lr, x1=high_lr, fillcolor="#2ca02c", opacity=0.10,
                      line_width=0, layer="below")
        fig.add_trace(go.Scatter(  # a legend entry for the shaded band
            x=[None], y=[None], mode="markers", name=f"safe LR band "
            f"(sweep, within {data.band.tolerance:.0%})",
            marker={"color": "rgba(44,160,44,0.3)", "size": 12, "symbol": "square"}))
    lines = [(PICK_STYLE[p.name][0], p.lr, PICK_STYLE[p.name][1], PICK_STYLE[p.name][2])
             for p in data.finder_picks]
    if data.tuned_lr is not None and same_optimizer:
        lines.append(("tuned lr (the sweep's best)", data.tuned_lr, BEST_COLOR, "solid"))
    for label, lr, color, dash in lines:
        fig.add_trace(go.Scatter(
            x=[lr, lr], y=[low, max(high, test.losses[0])], mode="lines",
            name=f"{text(label)}: {lr:.3g}",
            line={"color": color, "dash": dash, "width": 3 if dash == "solid" else 2},
            hovertemplate=f"{text(label)}: lr {lr:.3g}<extra></extra>"))
    fig.update_xaxes(**log_axis([*test.lrs, *(lr for _, lr, _, _ in lines)]),
                     title_text="learning rate (log scale)")
    # the blow-up at the end would squash the part of the curve that matters: cut the axis
    # a little above where the test started
    top = min(high, test.losses[0] + 0.25 * abs(test.losses[0]))
    fig.update_yaxes(title_text="smoothed training loss",
                     range=[low - 0.05 * (top - low), top + 0.05 * (top - low)])
    return style(fig, f"LR range test at batch {test.batch_size} ({text(test.optimizer)}) "
                      "against the tuned learning rate")
