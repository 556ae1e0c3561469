"""The README's quickstart runs as printed (on a shorter sweep)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autolr import TrialConfig, schedules

README = Path(__file__).resolve().parent.parent / "README.md"


def quickstart() -> str:
    text = README.read_text("utf-8")
    section = text[text.index("## Quickstart"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_quickstart_runs_and_its_scheduler_spans_the_training(tmp_path, monkeypatch):
    code = quickstart()
    assert "n_trials=40, epochs=20)" in code  # what the shortening below relies on
    short = code.replace("n_trials=40, epochs=20)", "n_trials=2, epochs=1, progress=False, "
                         "range_test=False, confirm_seeds=0)")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(short, namespace)  # noqa: S102 - the README's own code
    assert (tmp_path / "report.html").is_file()
    result, loader, scheduler = namespace["result"], namespace["loader"], namespace["scheduler"]
    assert loader.batch_size == result.best_config["batch_size"]
    # the schedule spans 20 epochs of the loader's batches: it ends where the training does
    config = TrialConfig.from_dict(result.best_config)
    total = 20 * len(loader)
    expected = schedules.multipliers(config.schedule, total,
                                     warmup_steps=config.warmup_steps(total),
                                     **config.schedule_params)
    assert [scheduler.lr_lambdas[0](step) for step in range(total)] == pytest.approx(expected)
