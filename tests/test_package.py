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
