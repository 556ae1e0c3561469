"""The report in a real browser: headless Debian Chromium, file:// URL, network blocked.

Needs `playwright` (the Python package only: its own browser download is never used) and
/usr/bin/chromium (`apt-get install chromium`; or set AUTOLR_CHROMIUM). Without them the
tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autolr.reporting import write_report
from autolr.reporting.sample import synthetic_result
from autolr.result import TrialRecord, TuneResult

CHROMIUM = os.environ.get("AUTOLR_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LEAD_SCREENSHOT = Path(tempfile.gettempdir()) / "autolr-report-screenshot.png"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


# every plot is no wider than its frame
FITTED = """() => [...document.querySelectorAll("div.figure")].every(figure => {
  const svg = figure.querySelector(".main-svg");
  return svg && svg.getBoundingClientRect().width <= figure.getBoundingClientRect().width + 1;
})"""


class Opened:
    """A report opened with every non-file request aborted; what went wrong is kept."""

    def __init__(self, browser: Any, path: Path, width: int = 1400) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        started = time.perf_counter()
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.n_figures = self.page.locator("div.figure").count()
        # rendered = every figure container holds plotly's graph div and its SVG
        self.page.wait_for_function(
            "n => document.querySelectorAll('div.figure .js-plotly-plot .main-svg').length"
            " >= n", arg=self.n_figures, timeout=30_000)
        self.seconds = time.perf_counter() - started
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(PlaywrightTimeout):  # plotly's resize waits 100 ms;
            # check_clean says which plot does not fit, if one still does not
            self.page.wait_for_function(FITTED, timeout=5_000)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def check_clean(self) -> None:
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.requests == [], f"network requests: {self.requests}"
        assert self.dialogs == [], f"dialogs opened: {self.dialogs}"
        for figure in self.page.locator("div.figure").all():
            assert figure.locator(".js-plotly-plot").count() == 1
            assert figure.locator(".main-svg").count() >= 1
            # no "Share chart..." (upload to Plotly Cloud) button on a report
            titles = figure.locator(".modebar-btn").evaluate_all(
                "buttons => buttons.map(b => b.getAttribute('data-title'))")
            assert "Download plot as a PNG" in titles
            assert not any("Share" in (t or "") for t in titles)
            box = figure.bounding_box()
            assert box is not None and box["height"] > 100 and box["width"] > 300
            # the plot fits its frame: the first of two side by side was drawn before its
            # neighbour existed, twice too wide, its legend under the other plot
            drawn = figure.locator(".main-svg").first.bounding_box()
            assert drawn is not None and drawn["width"] <= box["width"] + 1, \
                f"{figure.get_attribute('data-figure')}: {drawn['width']} > {box['width']}"


def test_full_report_renders_offline(browser: Any, tmp_path: Path) -> None:
    path = write_report(synthetic_result(), tmp_path / "report.html")
    opened = Opened(browser, path)
    opened.check_clean()
    assert opened.n_figures == 9
    # each figure's plot has its data drawn (points or lines), not just empty axes
    assert opened.page.locator("div.figure .scatterlayer .trace, div.figure .boxlayer .trace,"
                               " div.figure .barlayer .trace").count() > 9
    # the range test's curve is drawn, and the tuned lr marked on it
    assert opened.page.locator("#figure-range_test .scatterlayer .trace").count() >= 5
    assert "tuned lr" in opened.page.locator("#figure-range_test .legend").text_content()
    # hovering a trial shows its label (plotly's event code runs under the page's CSP)
    opened.page.locator("#figure-lr_sensitivity .scatterlayer .point").first.hover(force=True)
    opened.page.wait_for_selector("#figure-lr_sensitivity .hoverlayer .hovertext")
    assert "trial" in opened.page.locator(".hoverlayer .hovertext").first.text_content()
    assert opened.errors == []
    opened.page.screenshot(path=tmp_path / "report.png", full_page=True)
    shutil.copy(tmp_path / "report.png", LEAD_SCREENSHOT)
    opened.page.close()


def test_hostile_names_and_empty_sections(browser: Any, tmp_path: Path) -> None:
    xss = "<script>alert(1)</script>"
    diverged = [TrialRecord(i, "diverged", {"lr": 0.5 + i, "schedule": "constant",
                                            "schedule_params": {}, "warmup_fraction": 0.0,
                                            "batch_size": 32, "optimizer": "adamw",
                                            "weight_decay": 0.0},
                            reason=f"<img src=x onerror=alert({i})>", epochs_run=0.1,
                            steps_run=4) for i in range(3)]
    path = write_report(TuneResult(diverged, epochs=5, study_name=xss), tmp_path / "r.html")
    opened = Opened(browser, path)
    opened.check_clean()  # no alert() ran: the names are text
    assert xss in opened.page.locator("h1").inner_text()
    assert "Every trial diverged" in opened.page.locator("#lr").inner_text()
    opened.page.screenshot(path=tmp_path / "diverged.png", full_page=True)
    opened.page.close()


def test_on_a_phone_the_page_does_not_scroll_sideways_and_legends_go_below(
        browser: Any, tmp_path: Path) -> None:
    path = write_report(synthetic_result(study_name="x" * 300), tmp_path / "report.html")
    legend = "document.getElementById('figure-lr_sensitivity').layout.legend.orientation"
    phone = Opened(browser, path, width=390)
    phone.check_clean()
    # a legend at the right covered the plot; tables and a long name widened the page
    assert phone.page.evaluate(legend) == "h"
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 391
    assert phone.page.evaluate("getComputedStyle(document.querySelector('nav')).position") \
        == "static"  # a wrapped nav would hide every heading clicked in it
    phone.page.close()
    desktop = Opened(browser, path)
    assert desktop.page.evaluate(legend) != "h"
    assert desktop.page.evaluate("document.documentElement.scrollWidth") <= 1401
    desktop.page.close()


@pytest.mark.slow
def test_digits_sweep_report_size_and_load_time(browser: Any, tmp_path: Path) -> None:
    """A real 40-trial sweep: the report is under 10 MB and renders in under 3 s."""
    import torch
    from sklearn.datasets import load_digits

    import autolr

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))
    result = autolr.tune(model, (X / 16, y), n_trials=40, epochs=10, progress=False,
                         study_name="digits")
    path = result.report(tmp_path / "digits.html")
    size = path.stat().st_size
    floor = _one_figure_page(tmp_path / "floor.html")
    # best of five loads, interleaved with a page holding plotly.js and one small figure
    # (what any offline plotly page costs): one load on a shared 2-core machine is at the
    # mercy of its neighbours; each counts from navigation until every figure rendered
    loads, floors = [], []
    for _ in range(5):
        for target, times in ((floor, floors), (path, loads)):
            opened = Opened(browser, target)
            if target == path:
                opened.check_clean()
                n_figures = opened.n_figures
            times.append(opened.seconds)
            opened.page.close()
    ratio = min(loads) / min(floors)
    print(f"\ndigits report: {size / 1e6:.2f} MB, rendered in "
          f"{', '.join(f'{s:.2f}' for s in loads)} s; one-figure page "
          f"{', '.join(f'{s:.2f}' for s in floors)} s; ratio {ratio:.2f}; "
          f"{n_figures} figures")
    assert size < 10_000_000
    # under 3 s; where even the one-figure page is slow (a busy or slower machine: it
    # measured 2.3-2.6 s here on 2026-12-01, parsing plotly.js), the report's own work
    # beyond that page, timed beside it, must stay under 0.2 s per figure drawn (each
    # plotly figure costs ~0.1-0.15 s here; measured for 9 figures: 1.1 s)
    assert n_figures == 9
    assert min(loads) < 3.0 or min(loads) - min(floors) < 0.2 * n_figures


def _one_figure_page(path: Path) -> Path:
    import plotly.graph_objects as go

    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2]))
    body = figure.to_html(include_plotlyjs=True, full_html=False)
    path.write_text(f'<html><body><div class="figure">{body}</div></body></html>',
                    encoding="utf-8")
    return path
