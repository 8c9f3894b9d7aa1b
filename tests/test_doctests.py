"""The examples in the public API's docstrings run (item 6 of the library issue): build, points, analyze, compare,
export, predict, the package docstring, and the formatters."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["playground", "playground.build", "playground.analyze", "playground.compare", "playground.export",
           "playground.predict", "playground.units", "playground.choices", "playground.report",
           "playground.stats", "playground.compute", "playground.budgets", "playground.workers.activity",
           "playground.lean", "playground.sweep", "playground.sweep.spec", "playground.sweep.pareto",
           "playground.sweep.constraints", "playground.sweep.results", "playground.sweep.run",
           "playground.ui.history"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (run with -s)"
    if name not in ("playground.report",):
        assert result.attempted > 0, f"{name}: no examples found"
