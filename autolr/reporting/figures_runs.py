"""More plotly figures: learning curves, losses, compute, batch-size scaling, importance.

Same conventions as figures.py (shared styling, user strings through `text()`).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

from autolr.reporting.data import ReportData
from autolr.reporting.figures import (
    BASELINE_COLOR,
    BEST_COLOR,
    STATE_STYLE,
    better,
    log_axis,
    style,
    text,
    value_axis,
)
from autolr.reporting.stats import RULES


def learning_curves(data: ReportData) -> go.Figure | None:
    """The metric of every trial per evaluation; pruned/diverged dashed, the best bold."""
    if not data.curves:
        return None
    fig = go.Figure()
    shown: set[str] = set()
    # the best and the default last, so they are drawn on top
    for c in sorted(data.curves, key=lambda c: (c.is_best, c.is_baseline)):
        hover = (f"trial {c.number} ({c.state}), {text(c.schedule)}, lr {c.lr:.3g}<br>"
                 f"epoch %{{x:g}}: {text(data.metric)} %{{y:.4g}}<extra></extra>")
        if c.is_best or c.is_baseline:
            name = (f"best trial ({c.number})" if c.is_best
                    else f"default (trial {c.number}, {c.state})")
            fig.add_trace(go.Scatter(
                x=list(c.epochs), y=list(c.values), mode="lines+markers", name=name,
                line={"color": BEST_COLOR if c.is_best else BASELINE_COLOR,
                      "width": 3.5 if c.is_best else 2, "dash": "solid" if c.is_best
                      else "longdash"}, marker={"size": 5}, hovertemplate=hover))
            continue
        color, _, dash = STATE_STYLE[c.state]
        fig.add_trace(go.Scatter(  # a one-evaluation curve (cut at its first) is a dot
            x=list(c.epochs), y=list(c.values), mode="lines" if len(c.values) > 1
            else "markers", name=c.state, legendgroup=c.state,
            showlegend=c.state not in shown, marker={"color": color, "size": 6},
            line={"color": color, "width": 1.3, "dash": dash}, opacity=0.55,
            hovertemplate=hover))
        shown.add(c.state)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    values = [v for c in data.curves for v in c.values]
    fig.update_yaxes(title_text=f"{text(data.metric)} ({better(data)})",
                     **value_axis(values))
    return style(fig, "Learning curves of all trials", height=480)


def best_losses(data: ReportData) -> go.Figure | None:
    """The best trial's training and validation loss side by side."""
    losses = data.best_losses
    if losses is None:
        return None
    fig = go.Figure()
    for name, values, color, dash in (("training loss (mean between evaluations)", losses.train,
                                       "#4c78a8", "solid"),
                                      ("validation loss", losses.val, "#e45756", "solid")):
        if values:
            fig.add_trace(go.Scatter(
                x=list(losses.epochs[:len(values)]), y=list(values), mode="lines+markers",
                name=name, line={"color": color, "dash": dash, "width": 2},
                hovertemplate="epoch %{x:g}: %{y:.4g}<extra>" + name.split(" ")[0]
                              + "</extra>"))
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(title_text="loss", **value_axis(losses.train + losses.val))
    fig.update_layout(legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1,
                              "xanchor": "right"})
    return style(fig, f"Best trial ({losses.number}): training vs validation loss")


def metric_vs_compute(data: ReportData) -> go.Figure | None:
    """Final (or last) metric vs wall-clock seconds per trial."""
    points = [p for p in data.points if p.value is not None]
    if not points:
        return None
    fig = go.Figure()
    best = data.summary.best.number if data.summary.best else None
    for state, (color, symbol, _) in STATE_STYLE.items():
        mine = [p for p in points if p.state == state]
        if mine:
            fig.add_trace(go.Scatter(
                x=[p.seconds for p in mine], y=[p.value for p in mine], mode="markers",
                name=state, marker={"color": color, "symbol": symbol, "size": 9,
                                    "line": {"width": 1.5, "color": color}},
                text=[f"trial {p.number}: {text(p.schedule)}, lr {p.lr:.3g}, batch "
                      f"{p.batch_size}<br>{p.epochs_run:g} epochs in {p.seconds:.3g} s"
                      for p in mine], hovertemplate="%{text}<br>%{y:.4g}<extra></extra>"))
    top = next((p for p in points if p.number == best), None)
    if top is not None:
        fig.add_trace(go.Scatter(x=[top.seconds], y=[top.value], mode="markers",
                                 name="best trial", marker={"symbol": "star", "size": 16,
                                                            "color": BEST_COLOR},
                                 hoverinfo="skip"))
    fig.update_xaxes(title_text="wall-clock time of the trial (seconds)", rangemode="tozero")
    fig.update_yaxes(title_text=f"final {text(data.metric)} ({better(data)})",
                     **value_axis([p.value for p in points]))
    return style(fig, "Metric vs compute per trial")


def batch_scaling(data: ReportData) -> go.Figure | None:
    """Complete trials' lr per batch size, the best at each, the fit and the two rules."""
    fit = data.scaling
    if len(fit.points) < 2:
        return None
    complete = [p for p in data.points if p.state == "complete" and p.value is not None]
    fig = go.Figure(go.Scatter(
        x=[p.batch_size for p in complete], y=[p.lr for p in complete], mode="markers",
        name="complete trial", marker={"color": "#9ecae1", "size": 7},
        text=[f"trial {p.number}: {text(data.metric)} {p.value:.4g}" for p in complete],
        hovertemplate="batch %{x}, lr %{y:.3g}<br>%{text}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[b.batch_size for b in fit.points], y=[b.lr for b in fit.points],
        mode="markers", name="best lr at this batch size",
        marker={"color": "#08519c", "size": 13, "symbol": "diamond"},
        text=[f"trial {b.number}: {text(data.metric)} {b.value:.4g} (best of {b.n_complete})"
              for b in fit.points],
        hovertemplate="batch %{x}, lr %{y:.3g}<br>%{text}<extra></extra>"))
    sizes = [b.batch_size for b in fit.points]
    ends = [min(sizes), max(sizes)]
    # reference rules pass through the geometric mean of the best points
    cx = sum(math.log10(b) for b in sizes) / len(sizes)
    cy = sum(math.log10(b.lr) for b in fit.points) / len(sizes)
    lines = [(f"fit: slope {fit.slope:.2f}", fit.slope, "#08519c", "solid")]
    lines += [(f"linear rule (slope {RULES['linear']:g})", RULES["linear"], "#e6550d", "dot"),
              (f"square-root rule (slope {RULES['square-root']:g})", RULES["square-root"],
               "#31a354", "dot")]
    for name, slope, color, dash in lines:
        fig.add_trace(go.Scatter(
            x=ends, y=[10 ** (cy + slope * (math.log10(b) - cx)) for b in ends],
            mode="lines", name=name, line={"color": color, "dash": dash, "width": 2},
            hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text="batch size (log scale)", tickvals=sizes,
                     ticktext=[str(s) for s in sizes])
    fig.update_yaxes(**log_axis([p.lr for p in complete]), title_text="learning rate (log scale)")
    return style(fig, "Best learning rate per batch size, with the fitted scaling")


def importance(data: ReportData) -> go.Figure | None:
    """Horizontal bars of parameter importance, the most important on top."""
    found = data.importance.params
    if not found:
        return None
    names = [text(name) for name, _ in found][::-1]
    values = [value for _, value in found][::-1]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker={"color": "#4c78a8"},
                           text=[f"{v:.0%}" for v in values], textposition="auto",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="share of the final metric's variance explained (fANOVA)",
                     range=[0, max(1e-9, max(values)) * 1.1], tickformat=".0%")
    fig.update_yaxes(title_text="parameter", ticksuffix="  ")
    return style(fig, "Parameter importance", height=140 + 45 * len(found))

