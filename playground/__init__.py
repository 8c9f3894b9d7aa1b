"""Architecture Playground: stitch modules into timm backbones and see what it does.

    >>> import playground as pg
    >>> built = pg.build({"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]})
    >>> [p.name for p in pg.points("resnet50")][:3]
    ['input', 'stem', 'stage1.block1']

    >>> report = pg.analyze(built.spec)
    >>> report.params.total, report.macs.total
    (28088024, 4114027520)

Note: `playground.build`, `playground.analyze`, `playground.compare` and `playground.sweep` are the functions;
import their modules' other names with `from playground.build import Built`.

`import playground` imports no torch: the web server imports this package (for `playground.ui`) and runs every
model in worker processes. `build`, `Built`, `points` and `analyze` are imported with torch on first use; `sweep`
(every combination of a sweep's axes, `playground.sweep.run`) too, and it imports torch only when it runs a model.
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .compare import Comparison, compare
from .errors import SpecError
from .report import Report
from .spec import Spec, load_spec

if TYPE_CHECKING:
    from .analyze import analyze
    from .build import Built, build, points
    from .sweep import sweep

__all__ = ["SpecError", "Spec", "load_spec", "build", "Built", "points", "analyze", "Report", "compare", "Comparison",
           "sweep"]

# name -> submodule, imported on first use: the torch-bound ones, and `sweep` (a function named as its subpackage)
_WITH_TORCH = {"build": "build", "Built": "build", "points": "build", "analyze": "analyze", "sweep": "sweep"}


class _Package(ModuleType):
    """This package, with its torch-bound names imported on first use.

    `build`, `analyze` and `points` are the names of submodules too, and the import system sets a submodule as an
    attribute of its package when it first loads it (`from playground.build import Built`). Here such a
    submodule does not replace the function of the same name, so `playground.build` stays the function whatever
    was imported first, as when this package imported them all eagerly. (A module's class may be set to a
    ModuleType subclass to customise setting its attributes: Python reference, "Customizing module attribute
    access".)
    """

    def __getattr__(self, name: str) -> Any:
        if name not in _WITH_TORCH:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{self.__name__}.{_WITH_TORCH[name]}"), name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WITH_TORCH and isinstance(value, ModuleType):
            return  # the submodule is sys.modules["playground.<name>"]; the package's name is the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
