"""The package's face: `import autolr` is cheap, and every public name resolves."""

import subprocess
import sys

import pytest

import autolr


def test_import_autolr_loads_no_torch_until_a_name_is_used():
    # the `autolr` command must answer Ctrl-C/SIGTERM at once, not after torch loads
    code = ("import sys, autolr\nassert 'torch' not in sys.modules\n"
            "autolr.tune\nassert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_resolves_and_unknown_ones_raise():
    assert sorted(autolr.__all__) == sorted([*autolr._WHERE, "schedules"])
    for name in autolr.__all__:
        assert getattr(autolr, name) is not None
    assert set(autolr.__all__) <= set(dir(autolr))
    with pytest.raises(AttributeError, match="no attribute 'tunee'"):
        autolr.tunee  # noqa: B018


def test_a_library_users_warnings_reach_stderr_without_logging_set_up():
    # a NullHandler on the "autolr" logger kept them from Python's last-resort handler:
    # a timeout that cut a sweep to one trial said nothing
    code = ("import autolr, torch\n"
            "from sklearn.datasets import load_digits\n"
            "X, y = load_digits(return_X_y=True)\n"
            "autolr.tune(torch.nn.Linear(64, 10), (X / 16, y), n_trials=500, epochs=1,\n"
            "            timeout=0.3, progress=False, confirm_seeds=0, range_test=False)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert "timeout (0.3 s): the sweep holds " in run.stderr and \
        "of its 500 trials" in run.stderr
