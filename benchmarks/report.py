"""Summaries of scored sweeps: a markdown table per task and mode, and an HTML plot of
median regret against compute.

Data first (`summarise` -> `Row`s of plain numbers), drawing second (`markdown`, `figure`).
Every number is a median over the sweep seeds; regret is relative to the oracle's seed
mean (+5% = 5% above it); inf (nothing recommended yet, or never within 5%) shows as a dash
or as "> the budget".
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.accounting import BUDGETS, CURVE, TOLERANCE, SweepMetrics, median


@dataclass(frozen=True)
class Row:
    """One contender on one task: medians over its sweeps."""

    name: str
    sweeps: int
    regret: dict[float, float]  # budget -> median regret
    fte_to_within: float
    fte_to_10: float
    seconds_to_within: float
    within_at_20: int  # sweeps within 5% at 20 FTE
    diverged_share: float
    kept_winner: float  # share of sweeps that completed a top-4 config
    reported_gap: float  # median of (pick's true mean / the value reported for it - 1)
    final_regret: float  # median regret of the recommendation each sweep ended with
    final_fte: float  # median compute at the end
    curve: dict[float, tuple[float, float, float]]  # budget -> (q1, median, q3) regret


def summarise(name: str, sweeps: Sequence[SweepMetrics]) -> Row:
    curve = {}
    for budget in CURVE:
        values = sorted(s.regret.get(float(budget), math.inf) for s in sweeps)
        curve[float(budget)] = (_quantile(values, 0.25), median(values),
                                _quantile(values, 0.75))
    return Row(
        name, len(sweeps),
        {float(b): median([s.regret.get(float(b), math.inf) for s in sweeps]) for b in BUDGETS},
        median([s.fte_to_within for s in sweeps]),
        median([s.fte_to_10 for s in sweeps]),
        median([s.seconds_to_within for s in sweeps]),
        sum(s.regret.get(20.0, math.inf) <= TOLERANCE for s in sweeps),
        median([s.diverged_share for s in sweeps]),
        statistics.fmean(s.kept_winner for s in sweeps) if sweeps else math.nan,
        median([s.reported_gap for s in sweeps if math.isfinite(s.reported_gap)]),
        median([s.final_regret for s in sweeps]),
        median([s.final_fte for s in sweeps if math.isfinite(s.final_fte)]),
        curve)


def markdown(rows: Sequence[Row], *, max_fte: float, descriptions: Mapping[str, str]
             | None = None, winners: bool = True) -> str:
    """A markdown table: regret at 2/5/10/20 FTE, FTE and seconds to within 5%, sweeps
    within 5% at 20 FTE, FTE to within 10%, share of compute in diverged trials, how much
    worse the pick's true mean is than the value the sweep reported for it at the end
    ("told vs got"), and the share of sweeps that completed one of the oracle's top-4
    configs."""
    head = (["contender"] + [f"regret @{b:g} FTE" for b in BUDGETS]
            + ["FTE to 5%", "s to 5%", "within 5% @20", "FTE to 10%", "diverged",
               "told vs got", "final pick (at FTE)"]
            + (["kept top-4"] if winners else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = ([row.name] + [_pct(row.regret[float(b)]) for b in BUDGETS]
                 + [_budget(row.fte_to_within, max_fte), _seconds(row.seconds_to_within),
                    f"{row.within_at_20}/{row.sweeps}", _budget(row.fte_to_10, max_fte),
                    f"{row.diverged_share:.0%}", _pct(row.reported_gap),
                    f"{_pct(row.final_regret)} ({row.final_fte:.1f})"
                    if math.isfinite(row.final_fte) else "—"]
                 + ([f"{row.kept_winner:.0%}"] if winners else []))
        lines.append("| " + " | ".join(cells) + " |")
    if descriptions:
        lines.append("")
        lines += [f"- **{row.name}**: {descriptions[row.name]}" for row in rows
                  if row.name in descriptions]
    return "\n".join(lines)


def figure(panels: Mapping[str, Mapping[str, Row]], title: str):
    """One panel per task: median regret (%) vs FTE, interquartile band, per contender."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(panels)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"]
    colours: dict[str, str] = {}
    for col, task in enumerate(names, 1):
        for label, row in panels[task].items():
            colour = colours.setdefault(label, palette[len(colours) % len(palette)])
            xs = [b for b, (_, m, _) in row.curve.items() if math.isfinite(m)]
            ys = [max(row.curve[b][1], 0.0) * 100 + 0.1 for b in xs]
            dash = "dash" if label.startswith("live") else "solid"
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=label,
                                     legendgroup=label, showlegend=col == 1,
                                     line={"color": colour, "dash": dash},
                                     hovertemplate=f"{label}<br>%{{x}} FTE: "
                                                   "%{customdata:.1f}%<extra></extra>",
                                     customdata=[row.curve[b][1] * 100 for b in xs]),
                          row=1, col=col)
    fig.update_xaxes(type="log", title_text="compute (FTE = epochs / full training)")
    fig.update_yaxes(type="log", title_text="median regret % (+0.1)", col=1)
    fig.add_hline(y=TOLERANCE * 100 + 0.1, line_dash="dot", line_color="grey")
    fig.update_layout(title=title, height=520, width=420 * len(names) + 200,
                      template="plotly_white")
    return fig


def write_html(fig, path: Path, *, offline: bool = False) -> Path:
    """The plot as one HTML file (plotly.js from its CDN unless `offline`: ~4 MB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True if offline else "cdn")
    return path


def load_results(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (inf allowed)."""
    if not values:
        return math.nan
    position = q * (len(values) - 1)
    low, fraction = math.floor(position), position - math.floor(position)
    if fraction == 0:
        return values[low]
    high = values[low + 1]
    return high if not math.isfinite(high) else values[low] + (high - values[low]) * fraction


def _pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:+.1%}"


def _budget(value: float, max_fte: float) -> str:
    return f"> {max_fte:g}" if not math.isfinite(value) else f"{value:.1f}"


def _seconds(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3g}"
