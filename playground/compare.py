"""compare(spec_a, spec_b, ...) -> Comparison: two to four specs side by side, for the CLI, the page and Python.

Each spec is analysed as `analyze` does (same caches); the Comparison puts their totals, per-stage params and MACs,
feature-map shapes, latency (clear or within noise) and predictions next to each other, against the first spec
("A").

    >>> c = compare({"backbone": "resnet18", "img_size": 64},
    ...             {"backbone": "resnet18", "img_size": 64, "insert": [{"at": "stage4", "module": "se"}]})
    >>> [s.params for s in c.sides], c.shapes[-1].same
    ([11689512, 11722824], True)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .report import Latency, PlainData, Report
from .spec import Spec
from .stats import difference

__all__ = ["compare", "named_specs", "Comparison", "Side", "StageRow", "ShapeRow", "LatencyDelta", "PredictionRow",
           "NAMES"]

NAMES = ("A", "B", "C", "D")


@dataclass
class Side:
    """One spec's totals. `params_vs_base` / `macs_vs_base` are against its own unmodified backbone."""
    name: str
    title: str
    backbone: str
    img_size: int
    params: int
    params_vs_base: int
    macs: int
    macs_vs_base: int
    stitched: int
    pretrained: bool
    final_shape: list[int] | None = None
    latency: Latency | None = None
    activations: int | None = None  # fvcore's activations (timm's infer_macts), one image


@dataclass
class StageRow:
    """Params and MACs of one part (stem, stage<i>, head) for each side (None where a side has no such part)."""
    part: str
    params: list[int | None]
    macs: list[int | None]


@dataclass
class ShapeRow:
    """The feature-map shape at one stage point for each side; `same` when every side has the same."""
    point: str
    shapes: list[list[int] | None]
    same: bool


@dataclass
class LatencyDelta:
    """A side's median latency against A's: `delta_ms` (side - A) and `ratio` (side / A). `clear` when the two
    medians' 95% intervals (`Latency.median_ci_ms`) do not overlap; otherwise the difference is within noise
    (`playground.latency.difference`)."""
    side: str
    delta_ms: float
    ratio: float
    clear: bool


@dataclass
class PredictionRow:
    """One image: each side's top-1 label, whether it agrees with A's, and the overlap of its top-k with A's."""
    image: str
    top1: list[str]
    agrees_with_a: list[bool]
    topk_overlap_with_a: list[float]


@dataclass
class Comparison(PlainData):
    sides: list[Side]
    stages: list[StageRow]
    shapes: list[ShapeRow]
    latency: list[LatencyDelta] = field(default_factory=list)
    predictions: list[PredictionRow] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


def _side(name: str, r: Report) -> Side:
    final = r.shape_at("final")
    return Side(name=name, title=r.title, backbone=r.backbone, img_size=r.img_size, params=r.params.total,
                params_vs_base=r.params.delta, macs=r.macs.total, macs_vs_base=r.macs.delta,
                stitched=len(r.params.by_insert), pretrained=r.pretrained,
                final_shape=final.shape if final else None, latency=r.latency, activations=r.activations.total)


def _union(keys: Sequence[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(k for ks in keys for k in ks))


def _part_order(part: str) -> tuple[int, int]:
    """input, stem, stage1, stage2, ..., final / head: the order of parts across backbones of different depth."""
    if part.startswith("stage") and part[5:].isdigit():
        return 1, int(part[5:])
    return {"input": (0, 0), "stem": (0, 1)}.get(part, (2, 0))


def _stage_shapes(r: Report) -> dict[str, list[int]]:
    return {p.name: p.shape for p in r.points if ".block" not in p.name}


def _latency(reports: Sequence[Report]) -> list[LatencyDelta]:
    a = reports[0].latency
    out = []
    for name, r in zip(NAMES[1:], reports[1:]):
        if a is None or r.latency is None:
            continue
        d = difference(a, r.latency)
        out.append(LatencyDelta(side=name, delta_ms=d.delta_ms, ratio=d.ratio, clear=d.clear))
    return out


def _predictions(reports: Sequence[Report]) -> list[PredictionRow]:
    rows = []
    for per_image in zip(*(r.predictions or [] for r in reports)):
        a = [t.index for t in per_image[0].top]
        tops = [[t.index for t in p.top] for p in per_image]
        rows.append(PredictionRow(image=per_image[0].image, top1=[p.top[0].label for p in per_image],
                                  agrees_with_a=[t[0] == a[0] for t in tops],
                                  topk_overlap_with_a=[len(set(t) & set(a)) / max(len(a), 1) for t in tops]))
    return rows


def _caveats(sides: Sequence[Side], with_images: bool) -> list[str]:
    random = [s.name for s in sides if not s.pretrained]
    out = []
    if with_images and random:
        out.append(f"spec{'s' if len(random) > 1 else ''} {', '.join(random)} ha{'ve' if len(random) > 1 else 's'} "
                   f"random weights (pretrained: false): their predictions, and agreement with them, mean nothing")
    if len({s.img_size for s in sides}) > 1:
        out.append("the specs run at different image sizes: MACs and latency scale with the pixels")
    return out


def named_specs(items: Sequence[Any], load: Callable[[Any], Spec]) -> list[Spec]:
    """`load` applied to two to four items; a bad one raises its SpecError prefixed with its name ("spec B: ...")."""
    if not 2 <= len(items) <= len(NAMES):
        raise SpecError(f"compare: {len(items)} specs given; compare takes 2 to {len(NAMES)}")
    specs = []
    for name, item in zip(NAMES, items):
        try:
            specs.append(load(item))
        except SpecError as e:
            raise SpecError(f"spec {name}: {e}") from None
    return specs


def compare(*specs: Any, latency: None | bool | dict = None, images: list | None = None, topk: int = 5,
            image_names: list[str] | None = None,
            progress: Callable[[float, str], None] | None = None) -> Comparison:
    """Two to four specs side by side, against the first.

    Args:
        *specs: two to four specs (Spec, dict, YAML/JSON text or a preset's Spec), named A, B, C, D.
        latency: as `analyze`'s: None/False to skip, True or `measure_latency` options to time each spec (one
            after the other, never overlapping).
        images: photos to predict with every spec (paths, bytes, PIL images or arrays).
        topk: classes per prediction.
        image_names: display names of `images`.
        progress: optional `progress(fraction, message)` callback.

    Returns:
        A Comparison: `sides` (totals), `stages` (params and MACs per part), `shapes` (per stage point),
        `latency` (each side against A, clear or within noise), `predictions` and `caveats`. A bad spec raises a
        one-line SpecError naming it ("spec B: ...").
    """
    from .analyze import analyze
    from .spec import load_spec
    step = progress or (lambda f, m: None)
    loaded = named_specs(specs, load_spec)
    reports = []
    n = len(loaded)
    for k, (name, spec) in enumerate(zip(NAMES, loaded)):
        try:
            reports.append(analyze(spec, latency=latency, images=images, topk=topk, image_names=image_names,
                                   progress=lambda f, m, k=k, name=name: step((k + f) / n, f"{name}: {m}")))
        except SpecError as e:
            raise SpecError(f"spec {name}: {e}") from None
    sides = [_side(name, r) for name, r in zip(NAMES, reports)]
    parts = sorted(_union([list(r.params.by_stage) for r in reports]), key=_part_order)
    stages = [StageRow(part=p, params=[r.params.by_stage.get(p) for r in reports],
                       macs=[r.macs.by_stage.get(p) for r in reports]) for p in parts]
    shape_maps = [_stage_shapes(r) for r in reports]
    shapes = []
    for point in sorted(_union([list(m) for m in shape_maps]), key=_part_order):
        row = [m.get(point) for m in shape_maps]
        shapes.append(ShapeRow(point=point, shapes=row, same=all(s == row[0] for s in row)))
    return Comparison(sides=sides, stages=stages, shapes=shapes, latency=_latency(reports),
                      predictions=_predictions(reports), caveats=_caveats(sides, bool(images)))
