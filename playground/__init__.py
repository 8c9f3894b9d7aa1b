"""Architecture Playground: stitch modules into timm backbones and see what it does.

    >>> import playground as pg
    >>> built = pg.build({"backbone": "resnet50", "insert": [{"at": "layer*.*.bn3", "module": "se"}]})
    >>> report = pg.analyze(built)

Public names are imported lazily so that `python -m playground --help` and the app start fast.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import SpecError

__all__ = ["SpecError", "Spec", "load_spec", "build", "Built", "points", "analyze", "Report"]

_LAZY = {
    "Spec": "spec", "load_spec": "spec",
    "build": "build", "Built": "build", "points": "build",
    "analyze": "analyze", "Report": "analyze",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'playground' has no attribute {name!r}")
