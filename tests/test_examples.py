"""Every example runs, in its quick mode, as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICK = {
    "quickstart.py": ["--quick", "--report", "{tmp}/report.html"],
    "mnist1d_cnn.py": ["--quick"],
    "diabetes_regression.py": ["--quick"],
    "custom_schedule.py": ["--quick"],
}


def test_every_example_has_a_quick_mode():
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - {"cli_model.py", "ray_cluster.py"}
    assert scripts == set(QUICK), "add the new example to QUICK"


@pytest.mark.parametrize("script", sorted(QUICK))
def test_example_runs(script, tmp_path):
    args = [a.format(tmp=tmp_path) for a in QUICK[script]]
    run = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trials:" in run.stdout  # the summary line


def test_the_cli_model_file_tunes(tmp_path):
    run = subprocess.run([sys.executable, "-m", "autolr", "tune", str(EXAMPLES / "cli_model.py"),
                          "--trials", "2", "--epochs", "1", "--quiet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "autolr.db").exists()
