"""Live progress: what the bar says, and that it follows the trials as they finish."""

from __future__ import annotations

import time

from autolr.progress import SweepProgress, describe
from autolr.result import TrialRecord


def records(*states_values):
    return [TrialRecord(number=i, state=s, values=(v,) if v is not None else ())
            for i, (s, v) in enumerate(states_values)]


def test_describe_counts_every_state_and_the_best_so_far():
    table = records(("complete", 0.5), ("complete", 0.3), ("pruned", 0.9), ("diverged", None),
                    ("failed", None))
    assert describe(table, "minimize") == (
        "2 complete · 1 pruned · 1 diverged · 1 failed · best 0.3")
    assert describe(table, "maximize").endswith("best 0.5")
    assert "best" not in describe(records(("diverged", None)), "minimize")


def test_the_bar_follows_finished_trials_and_ends_on_the_final_count(capsys):
    done = []
    with SweepProgress(lambda: list(done), total=3, direction="minimize"):
        for record in records(("complete", 0.4), ("pruned", 0.8), ("complete", 0.2)):
            done.append(record)
            time.sleep(0.6)  # one poll
    err = capsys.readouterr().err
    assert "3/3" in err and "2 complete · 1 pruned · 0 diverged · 0 failed · best 0.2" in err


def test_disabled_progress_prints_nothing(capsys):
    with SweepProgress(lambda: records(("complete", 1.0)), total=1, direction="minimize",
                       enabled=False):
        pass
    assert capsys.readouterr().err == ""
