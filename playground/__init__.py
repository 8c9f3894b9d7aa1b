"""Architecture Playground: stitch modules into timm backbones and see what it does.

    >>> import playground as pg
    >>> built = pg.build({"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]})
    >>> [p.name for p in pg.points("resnet50")][:3]
    ['input', 'stem', 'stage1.block1']

    >>> report = pg.analyze(built.spec)
    >>> report.params.total, report.macs.total
    (28088024, 4114027520)

Note: `playground.build`, `playground.analyze` and `playground.compare` are the functions; import their modules'
other names with `from playground.build import Built`.
"""
from __future__ import annotations

from .analyze import analyze
from .build import Built, build, points
from .compare import Comparison, compare
from .errors import SpecError
from .report import Report
from .spec import Spec, load_spec

__all__ = ["SpecError", "Spec", "load_spec", "build", "Built", "points", "analyze", "Report", "compare", "Comparison"]
