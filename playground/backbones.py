"""Backbones: any timm model, plus the project's own models (registered into timm's registry on import).

Also the head-norm table (`head_norm: layernorm` puts a norm before the classifier, seed 000's tip 2) and
the creation of a backbone with the spec's constructor arguments.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import timm
from torch import nn

from . import models as _project_models  # noqa: F401  registers spectformer_*, cifar_metaformer_*
from .errors import SpecError, close_matches, first_line

__all__ = ["all_backbones", "curated_backbones", "check_backbone", "check_head_norm", "default_img_size",
           "create_kwargs", "create", "classifier_path", "HEAD_NORMS"]

# Families shown first in the UI: the seeds' models and the classics.
CURATED = (
    "efficientnet_lite0", "resnet50", "seresnet50", "ecaresnet50d", "resnet18",
    "vit_tiny_patch16_224", "vit_base_patch16_224", "swin_tiny_patch4_window7_224",
    "fasternet_t0", "poolformer_s12", "convnext_atto", "mobilenetv3_small_100",
    "spectformer_s", "cifar_metaformer_pool", "cifar_metaformer_attn", "cifar_metaformer_hybrid",
)

HEAD_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "layernorm": nn.LayerNorm,
    "batchnorm": nn.BatchNorm1d,
    "groupnorm": lambda c: nn.GroupNorm(1, c),  # GroupNorm(1, C) as in seed 000's MetaFormer head
}


@lru_cache(maxsize=1)
def all_backbones() -> tuple[str, ...]:
    return tuple(timm.list_models())


def curated_backbones() -> list[str]:
    return [n for n in CURATED if timm.is_model(n)]


def check_backbone(name: str) -> str:
    if not timm.is_model(name):
        raise SpecError(f"backbone: unknown model {name!r}{close_matches(name, all_backbones())}; "
                        f"any timm model name is allowed (python -m playground points --list to see them)")
    return name


def check_head_norm(name: str | None) -> str | None:
    if name is not None and name not in HEAD_NORMS:
        raise SpecError(f"head_norm: {name!r} is not one of {', '.join(HEAD_NORMS)}, or null")
    return name


def default_img_size(name: str) -> int:
    """The backbone's default square input size from its pretrained config."""
    cfg = timm.models.get_pretrained_cfg(name) or {}
    size = getattr(cfg, "input_size", None) or (cfg.get("input_size") if isinstance(cfg, dict) else None)
    return int(size[-1]) if size else 224


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

    timm constructors reject unknown keyword arguments with a TypeError; that becomes a one-line SpecError.
    `exact_size`: always pass img_size, and return None when the constructor takes none (a convnet).
    """
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
