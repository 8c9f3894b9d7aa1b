"""What a worker process runs: named jobs over plain data (a Spec in, a Report out), as `playground.workers.serve`
calls them. Each is the library's own function; arguments and results cross the process boundary pickled."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..budgets import Estimate
from ..compare import Comparison
from ..export import ExportResult
from ..report import Report
from ..spec import Spec

__all__ = ["JOBS", "job"]

Progress = Callable[[float, str], None] | None
JOBS: dict[str, Callable[..., Any]] = {}


def job(fn: Callable[..., Any]) -> Callable[..., Any]:
    JOBS[fn.__name__] = fn
    return fn


@job
def analyze(spec: Spec, latency: dict | None = None, images: list | None = None, topk: int = 5,
            image_names: list[str] | None = None, memory: dict | None = None, progress: Progress = None) -> Report:
    from ..analyze import analyze
    return analyze(spec, latency=latency, images=images, topk=topk, image_names=image_names, memory=memory,
                   progress=progress)


@job
def compare(specs: list[Spec], latency: dict | None = None, images: list | None = None,
            progress: Progress = None) -> Comparison:
    from ..compare import compare
    return compare(*specs, latency=latency, images=images, progress=progress)


@job
def points(spec: Spec, progress: Progress = None) -> list[dict]:
    """The insertion points of the spec's backbone after its stem change (stitching aside), as plain dicts."""
    from ..analyze import cached_build
    from ..build import points
    if spec.stem.is_default():
        return [p.to_dict() for p in points(spec.backbone, spec.img_size)]
    stem_changed = Spec(backbone=spec.backbone, img_size=spec.img_size, stem=spec.stem)
    return [p.to_dict() for p in cached_build(stem_changed, lean=True).points]  # shapes only: no initialisation


@job
def export(spec: Spec, fmt: str, path: str, progress: Progress = None) -> ExportResult:
    from ..export import export
    return export(spec, fmt, path, progress)


@job
def estimate(spec: Spec, max_params: float | None = None, progress: Progress = None) -> Estimate:
    from ..budgets import estimate
    return estimate(spec, max_params)


@job
def backbones(progress: Progress = None) -> dict[str, int]:
    """Every backbone name timm takes with its default input size (`playground.backbones.default_img_sizes`)."""
    from ..backbones import default_img_sizes
    return default_img_sizes()


@job
def pretrained_unavailable(backbone: str, progress: Progress = None) -> str | None:
    """Why `pretrained: true` cannot load weights for `backbone` here, in one line; None when it can."""
    from ..weights import pretrained_unavailable
    return pretrained_unavailable(backbone)


@job
def warm(spec: Spec, progress: Progress = None) -> None:
    """Build and analyse a spec once (imports, weight conversion, caches), so a user's first request is quick."""
    analyze(spec)
    points(spec)
