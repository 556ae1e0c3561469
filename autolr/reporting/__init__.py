"""The HTML report: data.py extracts plain data, figures*.py draw it, html.py writes it.

>>> import autolr  # doctest: +SKIP
>>> autolr.TuneResult.load("sweep.json").report("report.html")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autolr.result import TuneResult


def write_report(result: TuneResult, path: str | Path, *, tolerance: float = 0.10) -> Path:
    """Write the one-file offline report of `result` to `path`; returns the path.

    `tolerance`: the safe LR band holds learning rates whose final metric is within this
    fraction of the best.
    """
    from autolr.reporting import data, html

    return html.write(data.extract(result, tolerance=tolerance), path)
