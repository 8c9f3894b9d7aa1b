"""Sweeps: a base spec and axes of values, every combination analysed, as a table with its Pareto front (issue 15).

    >>> import playground as pg
    >>> r = pg.sweep({"base": {"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage4", "module": "se"}]},
    ...               "axes": {"insert[0].module": ["se", "eca"], "insert[0].at": ["stage3", "stage4"]}},
    ...              cache=False)
    >>> r.count, [row.label for row in r.rows][:2], [r.rows[i].label for i in r.front]
    (4, ['module=se · at=stage3', 'module=se · at=stage4'], ['module=eca · at=stage3'])

One idea per module: `spec` (the sweep spec: axes, zip, count and limit, variants), `runners` (in this process,
worker processes, Ray), `cache` (on disk, by a hash of the normalised spec), `results` (typed rows read from each
Report by a table of columns; CSV and JSON), `constraints` ("gmacs <= 4.5", parsed, never evaluated), `pareto`
(the front), `presets` (sweep presets) and `run` (`sweep()`, which ties them together). Importing it imports no
torch: the web server tabulates and plots rows that its workers computed.
"""
from __future__ import annotations

from .constraints import parse_constraints
from .pareto import front_of, pareto_front
from .presets import list_sweep_presets, load_sweep_preset, resolve_sweep, sweep_preset_files
from .results import COLUMNS, SweepResult, SweepRow, SweepStats
from .run import sweep
from .runners import RUNNERS, Outcome, Runner
from .spec import SweepSpec, Variant, load_sweep

__all__ = ["sweep", "load_sweep", "SweepSpec", "Variant", "SweepResult", "SweepRow", "SweepStats", "COLUMNS",
           "pareto_front", "front_of", "parse_constraints", "RUNNERS", "Runner", "Outcome", "list_sweep_presets",
           "load_sweep_preset", "resolve_sweep", "sweep_preset_files"]
