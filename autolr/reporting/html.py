"""Step three of the report: one self-contained HTML file (plotly.js inline, no network).

Every value put into the page goes through `esc()`: study names, schedule names and
failure reasons come from the user.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Callable
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.offline

from autolr.output_file import check_output_file, write_output_file
from autolr.reporting import figures, figures_finder, figures_runs, sections
from autolr.reporting.data import ReportData

# plotly.js 4 shows a "Share chart" (upload to Plotly Cloud) button unless told not to:
# a report stays on the user's disk.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False,
               "modeBarButtonsToRemove": ["select2d", "lasso2d"],
               "toImageButtonOptions": {"format": "png", "scale": 2}}

# On a phone the legends at the right would cover the plots: put them below instead.
NARROW_SCREEN_JS = """
if (window.matchMedia("(max-width: 700px)").matches) {
  document.querySelectorAll(".js-plotly-plot").forEach(function (plot) {
    // smaller type too: at 400 px the axis titles ran over the ticks and past the edge
    Plotly.relayout(plot, {"legend.orientation": "h", "legend.x": 0, "legend.xanchor": "left",
                           "legend.y": -0.7, "legend.yanchor": "top", "margin.r": 10,
                           "font.size": 10, "title.font.size": 13});
  });
}"""

# A plot is drawn as the page is read: the first of two side by side, before its
# neighbour exists, takes the whole row (its legend then hides under the other plot).
# Once the page is there, each is fitted to its frame.
FIT_PLOTS_JS = """
window.addEventListener("load", function () {
  document.querySelectorAll(".js-plotly-plot").forEach(function (plot) {
    Plotly.Plots.resize(plot);
  });
});"""

# (anchor, heading, figures drawn in it, the section's text)
SECTIONS: list[tuple[str, str, list[tuple[str, Callable]], Callable]] = [
    ("summary", "1. Summary", [], sections.summary),
    ("lr", "2. Learning-rate sensitivity", [("lr_sensitivity", figures.lr_sensitivity)],
     sections.sensitivity),
    ("finder", "3. LR finder vs the sweep", [("range_test", figures_finder.range_test)],
     sections.finder),
    ("schedules", "4. Schedules", [("family_spread", figures.family_spread),
                                   ("best_schedule", figures.best_schedule)],
     sections.schedules),
    ("curves", "5. Learning curves and compute",
     [("learning_curves", figures_runs.learning_curves),
      ("best_losses", figures_runs.best_losses),
      ("metric_vs_compute", figures_runs.metric_vs_compute)], sections.curves),
    ("batch", "6. Batch size × learning rate", [("batch_scaling", figures_runs.batch_scaling)],
     sections.batch),
    ("importance", "7. Parameter importance", [("importance", figures_runs.importance)],
     sections.importance),
    ("code", "8. Use it", [], sections.code),
    ("trials", "All trials", [], sections.trials),
]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2330; background: #f5f6f8; line-height: 1.45; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 1.5em; font-weight: 600; overflow-wrap: anywhere; }
header p { margin: 0; color: #c9cfdb; }
nav { position: sticky; top: 0; z-index: 10; background: #fff; border-bottom: 1px solid #dde;
      padding: 8px 32px; font-size: .92em; }
nav a { margin-right: 16px; color: #1f5fa8; text-decoration: none; white-space: nowrap; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: #fff; border-radius: 8px; margin: 18px 0; padding: 6px 24px 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); scroll-margin-top: 80px; }
h2 { font-size: 1.25em; border-bottom: 2px solid #e8ebf0; padding-bottom: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
         gap: 12px; margin-bottom: 8px; }
.card { border: 1px solid #e2e5ea; border-radius: 6px; padding: 10px 14px; }
.card .label { color: #5b6475; font-size: .85em; }
.card .value { font-size: 1.35em; font-weight: 600; }
.card .sub { color: #5b6475; font-size: .85em; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(520px, 100%), 1fr));
         gap: 12px; }
.figure { min-width: 0; }
@media (max-width: 700px) {  /* a phone: the nav wraps to many lines; tables scroll */
  nav { position: static; }
  section { padding: 6px 12px 14px; }
  table { display: block; max-width: 100%; overflow-x: auto; }
  .figure { overflow: hidden; }  /* a plot's long title runs past its narrow frame */
  p, li, summary { overflow-wrap: anywhere; }  /* e.g. optuna.importance.Fanova... */
}
table { border-collapse: collapse; margin: 10px 0; font-size: .92em; }
th, td { border-bottom: 1px solid #e8ebf0; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e6; border-left: 4px solid #f0b429; padding: 8px 12px;
        margin: 10px 0; }
.warn { background: #fdecea; border-left: 4px solid #d62728; padding: 8px 12px;
        margin: 10px 0; }
.caption { color: #5b6475; font-size: .9em; }
pre { background: #1d2330; color: #e8ecf3; padding: 14px; border-radius: 6px;
      overflow-x: auto; font-size: .9em; }
details summary { cursor: pointer; color: #1f5fa8; }
footer { text-align: center; color: #7a8394; font-size: .85em; padding: 16px; }
"""


def esc(value: object) -> str:
    return html.escape(str(value))


def figure_html(name: str, fig: go.Figure) -> str:
    """One figure as a div + script; plotly.js itself is embedded once per page."""
    body = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG,
                       div_id=f"figure-{name}", default_width="100%",
                       default_height=f"{fig.layout.height or 450}px")
    return f'<div class="figure" data-figure="{esc(name)}">{body}</div>'


def render(data: ReportData) -> str:
    """The whole page as a string."""
    title = f"autolr report: {data.study_name}" if data.study_name else "autolr report"
    nav = " ".join(f'<a href="#{anchor}">{esc(heading)}</a>'
                   for anchor, heading, _, _ in SECTIONS)
    parts = []
    for anchor, heading, drawers, writer in SECTIONS:
        drawn = {name: fig for name, draw in drawers if (fig := draw(data)) is not None}
        blocks = {name: figure_html(name, fig) for name, fig in drawn.items()}
        parts.append(f'<section id="{anchor}"><h2>{esc(heading)}</h2>'
                     f"{writer(data, blocks)}</section>")
    counts = data.summary.counts
    n = data.summary.n_trials
    subtitle = (f"{n} trial{'' if n == 1 else 's'} ({counts['complete']} complete) · metric "
                f"{data.metric} ({data.direction}) · "
                f"{data.summary.epochs_per_trial or '?'} "
                f"epoch{'' if data.summary.epochs_per_trial == 1 else 's'} per full trial")
    generated = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # nothing on this page may reach the network: no CDN, no fonts, no images
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:\">",
        f"<title>{esc(title)}</title>", f"<style>{CSS}</style>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
        "</head><body>",
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>",
        f"<nav>{nav}</nav>", "<main>", *parts, "</main>",
        f"<footer>autolr report · generated {esc(generated)} · plotly.js "
        f"{esc(plotly.offline.get_plotlyjs_version())} embedded: this file works offline</footer>",
        f"<script>{NARROW_SCREEN_JS}{FIT_PLOTS_JS}</script>", "</body></html>"])


def write(data: ReportData, path: str | Path) -> Path:
    check_output_file(path, "report")  # before the page is drawn
    return write_output_file(path, "report", render(data))
