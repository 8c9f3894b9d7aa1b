"""Backbones: any timm model, plus the project's own models (registered into timm's registry on import).

Also the head-norm layers (`head_norm: layernorm` puts a norm before the classifier, seed 000's tip 2; the names
are in `playground.choices`, which the spec validator reads without torch) and the creation of a backbone with the
spec's constructor arguments.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import timm
from torch import nn

from . import models as _project_models  # noqa: F401  registers spectformer_*, cifar_metaformer_*
from .choices import CURATED_BACKBONES
from .errors import SpecError, close_matches, first_line

__all__ = ["all_backbones", "curated_backbones", "check_backbone", "default_img_size", "default_img_sizes",
           "create_kwargs", "create", "classifier_path", "HEAD_NORMS"]

HEAD_NORMS: dict[str, Callable[[int], nn.Module]] = {  # keyed by choices.HEAD_NORMS
    "layernorm": nn.LayerNorm,
    "batchnorm": nn.BatchNorm1d,
    "groupnorm": lambda c: nn.GroupNorm(1, c),  # GroupNorm(1, C) as in seed 000's MetaFormer head
}


@lru_cache(maxsize=1)
def all_backbones() -> tuple[str, ...]:
    return tuple(timm.list_models())


def curated_backbones() -> list[str]:
    return [n for n in CURATED_BACKBONES if timm.is_model(n)]


def check_backbone(name: str) -> str:
    if not timm.is_model(name):
        raise SpecError(f"backbone: unknown model {name!r}{close_matches(name, all_backbones())}; "
                        f"any timm model name is allowed (python -m playground points --list to see them)")
    arch, _, tag = name.partition(".")
    if tag:  # timm.is_model checks the architecture only; an unknown tag would fail later, in timm's words
        tags = [t.partition(".")[2] for t in timm.list_pretrained(f"{arch}.*")]
        if tag not in tags:
            listed = ", ".join(tags[:8]) + (", ..." if len(tags) > 8 else "")
            raise SpecError(f"backbone: {arch} has no pretrained tag {tag!r}{close_matches(tag, tags)}; "
                            + (f"its tags: {listed} (or drop the tag)" if tags else "it has no pretrained tags"))
    return name


def default_img_size(name: str) -> int:
    """The backbone's default square input size from its pretrained config."""
    cfg = timm.models.get_pretrained_cfg(name) or {}
    size = getattr(cfg, "input_size", None) or (cfg.get("input_size") if isinstance(cfg, dict) else None)
    return int(size[-1]) if size else 224


def default_img_sizes() -> dict[str, int]:
    """Every backbone name timm takes with its default input size, in the order of the web page's menu: the
    architectures (the curated ones first), then the pretrained tags (`resnet50.a1_in1k`), whose size may differ
    from their architecture's. Plain data for a server that imports no timm."""
    curated = curated_backbones()
    names = curated + [n for n in all_backbones() if n not in curated] + timm.list_pretrained()
    return {n: default_img_size(n) for n in names}


def create_kwargs(spec) -> dict[str, Any]:
    """Constructor arguments the spec asks of the backbone (each must be accepted by its constructor)."""
    kwargs: dict[str, Any] = {}
    if spec.num_classes is not None:
        kwargs["num_classes"] = spec.num_classes
    if spec.drop_path_rate is not None:
        kwargs["drop_path_rate"] = spec.drop_path_rate
    return kwargs


def create(name: str, create: Callable[..., nn.Module], img_size: int, exact_size: bool = False,
           **kwargs) -> nn.Module | None:
    """Create a backbone via `create(name, **kwargs)`, passing img_size only to models that take it (ViT, Swin).

    An unknown name, and an unknown keyword argument (timm constructors raise a TypeError), are one-line
    SpecErrors: this is where a spec's backbone name meets timm's registry (parsing a spec imports no timm).
    `exact_size`: always pass img_size, and return None when the constructor takes none (a convnet).
    """
    check_backbone(name)
    default = default_img_size(name)
    if img_size != default or exact_size:
        try:
            return create(name, img_size=img_size, **kwargs)
        except TypeError as e:
            if "img_size" not in str(e):
                raise _unsupported(name, e, kwargs) from None
            if exact_size:
                return None
    try:
        return create(name, **kwargs)
    except TypeError as e:
        raise _unsupported(name, e, kwargs) from None


def _unsupported(name: str, e: TypeError, kwargs: dict) -> SpecError:
    bad = next((k for k in kwargs if k in str(e)), None)
    if bad:
        return SpecError(f"{bad}: backbone {name!r} does not support {bad} (its constructor rejects it)")
    return SpecError(f"backbone: {name!r} cannot be created with {kwargs}: {first_line(e)}")


def classifier_path(model: nn.Module) -> str | None:
    """Module path of the final classifier (from the pretrained config, else get_classifier())."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    path = cfg.get("classifier") if isinstance(cfg, dict) else None
    if isinstance(path, (list, tuple)):
        path = path[0]
    modules = dict(model.named_modules())
    if path in modules:
        return path
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        return next((p for p, m in modules.items() if m is head and p), None)
    return None
