"""The examples in autolr's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import autolr

# __main__ runs the command line when imported
MODULES = sorted(info.name for info in pkgutil.walk_packages(autolr.__path__, "autolr.")
                 if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_module_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_every_module_is_checked():
    assert {"autolr.cliff", "autolr.robust", "autolr.reporting.data"} <= set(MODULES)
