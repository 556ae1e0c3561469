"""Step two of the report: plotly figures drawn from `ReportData` (no HTML here).

Each function returns a figure, or None when its section has no data (html.py then says
why). Plotly renders `<b>`-style tags in any text, so every string that came from the
user goes through `text()` first.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autolr import schedules
from autolr.reporting.data import ReportData, TrialPoint
from autolr.reporting.stats import SafeBand
from autolr.result import percent

# Families get colours in registry order; red and grey stay free for states.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#393b79", "#637939", "#7b4173", "#3182bd", "#e6550d", "#31a354")
STATE_STYLE = {  # colour, marker symbol, line dash
    "complete": ("#4c78a8", "circle", "solid"),
    "pruned": ("#f58518", "circle-open", "dash"),
    "diverged": ("#d62728", "x", "dot"),
    "failed": ("#7f7f7f", "square-open", "dot"),
}
BEST_COLOR, BASELINE_COLOR, BAND_COLOR = "#111111", "#555555", "#2ca02c"
CHANCE_COLOR = "#8a8a8a"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def text(value: object) -> str:
    """A user-given string made safe for plotly's pseudo-HTML text."""
    return html.escape(str(value), quote=False)


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def family_colors(names: Iterable[str]) -> dict[str, str]:
    """A colour per family, in registry order so 'cosine' keeps its colour when it can."""
    order = {name: i for i, name in enumerate(schedules.names())}
    present = sorted(set(names), key=lambda n: (order.get(n, len(order)), n))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(present)}


def use_log(values: Sequence[float]) -> bool:
    """A log axis for positive values spanning more than a factor of 10 (losses do)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def tick_label(value: float) -> str:
    """1e-05 -> '1e-5', 0.002 -> '0.002': short, unambiguous labels for log axes."""
    if value < 1e-3 or value >= 1e4:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def log_axis(values: Sequence[float] = ()) -> dict:
    """Log-axis settings with full tick labels (0.02, 0.05, 0.1), not plotly's bare '2 5':
    decades only over a wide range, 1-2-5 steps over a medium one, plotly's own below."""
    values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    axis = {"type": "log", "tickformat": ".2~g"}
    if not values:
        return axis
    if min(values) == max(values):  # one value: plotly's ticks would all read the same
        return {**axis, "tickvals": [values[0]], "ticktext": [tick_label(values[0])]}
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    span = math.log10(max(values) / min(values))
    steps = (1,) if span > 3 else (1, 2, 5) if span > 1 else ()
    ticks = [m * 10.0**e for e in range(low, high + 1) for m in steps]
    ticks = [t for t in ticks if min(values) / 1.5 <= t <= max(values) * 1.5]
    if len(ticks) >= 3:
        axis.update(tickvals=ticks, ticktext=[tick_label(t) for t in ticks])
    return axis


def value_axis(values: Sequence[float]) -> dict:
    """A metric axis: log when the values span more than a factor of 10."""
    return log_axis(values) if use_log(values) else {"type": "linear"}


def better(data: ReportData) -> str:
    return "lower is better" if data.direction == "minimize" else "higher is better"


def style(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        template="plotly_white", height=height, title={"text": title, "x": 0.01},
        font={"family": FONT, "size": 13}, margin={"l": 70, "r": 20, "t": 60, "b": 60},
        legend={"bgcolor": "rgba(255,255,255,0.85)", "borderwidth": 0},
        hoverlabel={"align": "left"})
    return fig


def _hover(p: TrialPoint, metric: str) -> str:
    lines = [f"trial {p.number} ({p.state}{', default' if p.is_baseline else ''})",
             f"lr {p.lr:.3g}, {text(p.schedule)}, batch {p.batch_size}, "
             f"warmup {percent(p.warmup_fraction)}",
             f"{text(metric)} {num(p.value)} after {p.epochs_run:g} epochs"]
    if p.reason and p.state != "complete":
        lines.append(text(p.reason[:120]))
    return "<br>".join(lines)


def _legend_marker(fig: go.Figure, name: str, symbol: str, color: str, **where: int) -> None:
    """A legend-only entry explaining a marker (no data point)."""
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                             marker={"symbol": symbol, "color": color, "size": 10,
                                     "line": {"color": color, "width": 2}}), **where)


def _plotted(point: TrialPoint) -> bool:
    """Is the trial a dot in the metric panel? Complete and pruned ones with a value; a
    diverged one's last value before it blew up is not its result."""
    return point.state in ("complete", "pruned") and point.value is not None


def _lr_panels(data: ReportData) -> tuple[go.Figure, dict[str, int]]:
    """A diverged strip on top (when any diverged) over the metric panel (when any trial
    has a metric), sharing the learning-rate axis; returns the figure and panel rows."""
    panels = (["strip"] if data.boundary.blowups else []) + (
        ["main"] if any(_plotted(p) for p in data.points) else [])
    heights = {"strip": 0.13, "main": 0.87}
    total = sum(heights[name] for name in panels)
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[heights[name] / total for name in panels])
    return fig, {name: i + 1 for i, name in enumerate(panels)}


def band_span(band: SafeBand) -> tuple[float, float]:
    """Where to shade a safe band: its learning rates, a single-trial band a visible
    sliver around its one."""
    return (band.low, band.high) if band.decades > 0.02 else (band.low / 1.05, band.high * 1.05)


def _band_and_boundary(fig: go.Figure, data: ReportData, main: int, y_log: bool) -> None:
    """Shade the safe band, draw its tolerance line, the divergence boundary, and the
    metric of a model that learned nothing where trials reach it."""
    band, axis = data.band, "" if main == 1 else str(main)
    if band is not None:
        low, high = band_span(band)
        fig.add_vrect(x0=low, x1=high, fillcolor=BAND_COLOR, opacity=0.12, line_width=0,
                      row=main, col=1)
        fig.add_hline(y=band.threshold, line={"color": BAND_COLOR, "dash": "dash", "width": 1},
                      row=main, col=1)
        # placed by hand: plotly puts add_hline's own label at the wrong height on log axes
        fig.add_annotation(
            x=0, xref=f"x{axis} domain", xanchor="left", yanchor="bottom", showarrow=False,
            y=math.log10(band.threshold) if y_log else band.threshold, yref=f"y{axis}",
            text=f"within {band.tolerance:.0%} of the best",
            font={"color": BAND_COLOR, "size": 12})
    values = [p.value for p in data.points if _plotted(p)]
    if data.chance is not None and values and min(values) <= data.chance <= max(values):
        # only among the trials: drawn beyond them it would stretch the axis to say that
        # every run learned something
        fig.add_hline(y=data.chance, line={"color": CHANCE_COLOR, "dash": "dot", "width": 1.5},
                      row=main, col=1)
        fig.add_annotation(
            x=1, xref=f"x{axis} domain", xanchor="right", yanchor="bottom", showarrow=False,
            y=math.log10(data.chance) if y_log else data.chance, yref=f"y{axis}",
            text="a constant prediction (learned nothing)",
            font={"color": CHANCE_COLOR, "size": 12})
    if data.boundary.lowest_lr is not None:
        red = STATE_STYLE["diverged"][0]
        fig.add_vline(x=data.boundary.lowest_lr, line={"color": red, "dash": "dash",
                                                       "width": 1.5})
        fig.add_annotation(x=math.log10(data.boundary.lowest_lr), y=1, yref="paper",
                           text=f"lowest diverged lr {data.boundary.lowest_lr:.3g}",
                           showarrow=False, xanchor="right", yanchor="bottom",
                           font={"color": red, "size": 12})


def lr_sensitivity(data: ReportData) -> go.Figure | None:
    """Final metric vs learning rate per family, diverged trials in a strip on top; None
    when no trial has a metric and none diverged (e.g. every trial failed)."""
    if not data.boundary.blowups and not any(_plotted(p) for p in data.points):
        return None
    colors = family_colors(p.schedule for p in data.points)
    fig, rows = _lr_panels(data)
    main, strip = rows.get("main"), rows.get("strip")
    by_number = {p.number: p for p in data.points}
    values = [p.value for p in data.points if _plotted(p)]
    for family, color in colors.items():
        legend = True  # one legend entry per family, whichever of its traces comes first
        for state, size, opacity in (("complete", 9, 0.9), ("pruned", 8, 0.6)):
            mine = [p for p in data.points if p.schedule == family and p.state == state
                    and p.value is not None]
            if not mine:
                continue
            fig.add_trace(go.Scatter(
                x=[p.lr for p in mine], y=[p.value for p in mine], mode="markers",
                name=text(family), legendgroup=family, showlegend=legend,
                marker={"color": color, "symbol": STATE_STYLE[state][1], "size": size,
                        "opacity": opacity, "line": {"width": 1.5, "color": color}},
                text=[_hover(p, data.metric) for p in mine],
                hovertemplate="%{text}<extra></extra>"), row=main, col=1)
            legend = False
        if legend and any(b.schedule == family for b in data.boundary.blowups):
            # only diverged trials: still name the colour of their crosses
            _legend_marker(fig, text(family), "x", color, row=main or strip, col=1)
    for trend in data.trends:
        fig.add_trace(go.Scatter(
            x=trend.lrs, y=trend.values, mode="lines", legendgroup=trend.family,
            showlegend=False, line={"color": colors[trend.family], "width": 2},
            opacity=0.7, hoverinfo="skip"), row=main, col=1)
    blowups = data.boundary.blowups
    if strip:
        fig.add_trace(go.Scatter(
            x=[b.lr for b in blowups], y=[0] * len(blowups), mode="markers",
            showlegend=False, marker={"symbol": "x", "size": 11,
                                      "color": [colors[b.schedule] for b in blowups]},
            text=[(f"trial {b.number} finished, then {text(b.where)}<br>lr {b.lr:.3g} "
                   f"({text(b.schedule)}, batch {b.batch_size})" if b.on_another_seed else
                   f"trial {b.number} diverged at step {b.step}<br>lr {b.lr:.3g} "
                   f"({text(b.schedule)}, batch {b.batch_size}); scheduled lr at blow-up "
                   f"{num(b.lr_at_blowup)}") + f"<br>{text((b.reason or '')[:120])}"
                  for b in blowups], hovertemplate="%{text}<extra></extra>"), row=strip, col=1)
    for number, symbol, color, name in (
            (data.summary.best.number if data.summary.best else None, "star", BEST_COLOR,
             "best trial"),
            (data.summary.baseline.number if data.summary.baseline else None, "diamond-open",
             BASELINE_COLOR, "default (AdamW 1e-3, constant, batch 32)")):
        point = by_number.get(number)
        if main and point is not None and point.value is not None:
            fig.add_trace(go.Scatter(
                x=[point.lr], y=[point.value], mode="markers", name=name,
                marker={"symbol": symbol, "size": 16, "color": color,
                        "line": {"width": 2, "color": color}},
                text=[_hover(point, data.metric)], hovertemplate="%{text}<extra></extra>"),
                row=main, col=1)
    if any(p.state == "pruned" and p.value is not None for p in data.points):
        _legend_marker(fig, "pruned (metric when stopped)", "circle-open", "#666",
                       row=main, col=1)
    if strip:
        _legend_marker(fig, "diverged (top strip)", "x", "#666", row=main or strip, col=1)
    y_axis = value_axis(values)
    off_scale = 0
    if y_axis["type"] == "linear":
        y_axis, off_scale = _fit_to_complete(y_axis, values, [
            p.value for p in data.points if p.state == "complete" and _plotted(p)])
    if main:
        _band_and_boundary(fig, data, main, y_axis["type"] == "log")
        fig.update_yaxes(title_text=f"final {text(data.metric)} ({better(data)})"
                         + (f"; {off_scale} stopped trial(s) off the scale" if off_scale else ""),
                         **y_axis, row=main, col=1)
    elif data.boundary.lowest_lr is not None:
        _band_and_boundary(fig, data, strip, False)
    x_axis = log_axis([p.lr for p in data.points])
    last = len(rows)
    for row in range(1, last + 1):
        fig.update_xaxes(**x_axis, row=row, col=1, showticklabels=row == last)
    fig.update_xaxes(title_text="learning rate (base lr of the schedule, log scale)",
                     row=last, col=1)
    if strip:
        # numeric, not categorical: legend-only traces on this axis must not reset it
        fig.update_yaxes(row=strip, col=1, showgrid=False, fixedrange=True, zeroline=False,
                         range=[-1, 1], tickvals=[0], ticktext=["diverged"])
    return style(fig, "Final metric vs learning rate, by schedule family",
                 height=560 if main else 260)


#: how far beyond the complete trials' values a stopped trial's value may lie and still set
#: the linear axis: an r2 of -429 (a pruned blow-up) flattened every other point to a line
OFF_SCALE_SPANS = 3.0


def _fit_to_complete(axis: dict, values: Sequence[float], complete: Sequence[float]
                     ) -> tuple[dict, int]:
    """A linear axis ranged to the plotted values within OFF_SCALE_SPANS spans of the
    complete trials' values, and how many fall outside it (none: `axis` as it was)."""
    if not complete:
        return axis, 0
    low, high = min(complete), max(complete)
    # a span at least as wide as the values themselves: a pruned run a little worse
    # than close complete ones stays on the scale
    reach = OFF_SCALE_SPANS * max(high - low, abs(high), abs(low), 1e-12)
    kept = [v for v in values if low - reach <= v <= high + reach]
    if len(kept) == len(values):
        return axis, 0
    pad = 0.05 * max(max(kept) - min(kept), 1e-12)
    return {**axis, "range": [min(kept) - pad, max(kept) + pad]}, len(values) - len(kept)


def family_spread(data: ReportData) -> go.Figure | None:
    """Final metric per family (complete trials), best family first."""
    families = [f for f in data.families if f.values]
    if not families:
        return None
    colors = family_colors(f.name for f in data.families)
    fig = go.Figure()
    for f in families:
        label = f"{text(f.name)}<br>({f.n_complete}/{f.n_trials} complete)"
        fig.add_trace(go.Box(
            y=list(f.values), x=[label] * len(f.values), name=text(f.name), boxpoints="all",
            jitter=0.3, pointpos=0, marker={"color": colors[f.name], "size": 7},
            line={"color": colors[f.name]}, showlegend=False,
            hovertemplate=f"{text(f.name)}: %{{y:.4g}}<extra></extra>"))
    fig.update_xaxes(title_text="schedule family (complete trials / all trials)")
    all_values = [v for f in families for v in f.values]
    fig.update_yaxes(title_text=f"final {text(data.metric)} ({better(data)})",
                     **value_axis(all_values))
    return style(fig, "Best and spread of the final metric per schedule family")


def best_schedule(data: ReportData) -> go.Figure | None:
    """The best trial's learning rate at every optimizer step, warmup included."""
    curve = data.best_schedule
    if curve is None:
        return None
    fig = go.Figure(go.Scatter(
        x=list(curve.steps), y=list(curve.lrs), mode="lines", name="learning rate",
        line={"color": BEST_COLOR, "width": 2},
        customdata=[s / curve.steps_per_epoch for s in curve.steps],
        hovertemplate="step %{x} (epoch %{customdata:.2f})<br>lr %{y:.3g}<extra></extra>"))
    if curve.warmup_steps > 0:
        fig.add_vrect(x0=0, x1=curve.warmup_steps, fillcolor="#f58518", opacity=0.12,
                      line_width=0, annotation_text=f"warmup ({curve.warmup_steps} steps)",
                      annotation_position="top left")
    params = ", ".join(f"{text(k)}={v:.3g}" if isinstance(v, float) else f"{text(k)}={v}"
                       for k, v in curve.schedule_params.items())
    fig.update_xaxes(title_text=f"optimizer step ({curve.steps_per_epoch} per epoch, "
                                f"{curve.total_steps} in all)", rangemode="tozero")
    fig.update_yaxes(title_text="learning rate", rangemode="tozero", exponentformat="e")
    title = f"Best schedule: {text(curve.schedule)}" + (f" ({params})" if params else "")
    return style(fig, title + f", base lr {curve.lr:.3g}")
