"""The HTML report: data.py extracts plain data, figures.py draws it, html.py writes it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autolr.result import TuneResult


def write_report(result: TuneResult, path: str | Path) -> Path:
    """Placeholder until the report lands: a minimal page with the summary."""
    import html

    path = Path(path)
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>autolr report</title>"
                    f"<pre>{html.escape(result.summary())}</pre>", encoding="utf-8")
    return path
