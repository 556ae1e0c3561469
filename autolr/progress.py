"""Live progress of a sweep: one tqdm bar fed by polling the finished trials.

Polling (rather than a per-trial callback) works the same for in-process trials and for
worker processes writing to a shared storage. The bar shows trials finished of the total,
how they ended, the best value so far, elapsed time and the estimate of what remains.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Sequence

from autolr.result import TrialRecord

_POLL_SECONDS = 0.5


def describe(records: Sequence[TrialRecord], direction: str) -> str:
    """'12 complete · 3 pruned · 1 diverged · 0 failed · best 0.0812'"""
    counts = {state: 0 for state in ("complete", "pruned", "diverged", "failed")}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    finals = [r.final_value for r in records if r.state == "complete"
              and r.final_value is not None and math.isfinite(r.final_value)]
    text = " · ".join(f"{n} {state}" for state, n in counts.items())
    if finals:
        text += f" · best {(min if direction == 'minimize' else max)(finals):.4g}"
    return text


class SweepProgress:
    """A context manager drawing a progress bar while `fetch()` returns the finished trials.

    >>> with SweepProgress(lambda: [], total=3, direction="minimize", enabled=False):
    ...     pass
    """

    def __init__(self, fetch: Callable[[], Sequence[TrialRecord]], *, total: int,
                 direction: str, enabled: bool = True) -> None:
        self.fetch, self.total, self.direction, self.enabled = fetch, total, direction, enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None
        self._last = ""
        self._interactive = sys.stderr.isatty()

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, unit="trial", file=sys.stderr,
                             dynamic_ncols=True, desc="autolr")
            self._thread = threading.Thread(target=self._poll, name="autolr-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is None:
            return
        self._stop.set()
        self._thread.join()
        self._update()  # the final state, whatever the last poll saw
        self._bar.close()

    def _poll(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            try:
                self._update()
            except Exception:  # a storage hiccup must never break the sweep itself
                pass

    def _update(self) -> None:
        records = self.fetch()
        text = describe(records, self.direction)
        # On a terminal, redraw every poll (the clock moves); into a log file, only when
        # something changed, so the log is not a wall of identical lines.
        if text == self._last and not self._interactive:
            return
        self._last = text
        self._bar.n = min(len(records), self.total)
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.refresh()
