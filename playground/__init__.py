"""Architecture Playground: stitch modules into timm backbones and see what it does.

    >>> import playground as pg
    >>> built = pg.build({"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]})
    >>> [p.name for p in pg.points("resnet50")][:3]
    ['input', 'stem', 'stage1.block1']

Note: `playground.build` and `playground.points` are the functions; import their modules' other names with
`from playground.build import Built`.
"""
from __future__ import annotations

from .build import Built, build, points
from .errors import SpecError
from .spec import Spec, load_spec

__all__ = ["SpecError", "Spec", "load_spec", "build", "Built", "points"]
